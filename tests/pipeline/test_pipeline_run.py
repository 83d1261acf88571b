"""``hadna run``: every stage's outputs on a tiny pipeline, resume after an interruption, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import yaml

from hadna.cli import main

REPO = Path(__file__).resolve().parents[2]


def write_soft_masked_genome(path: Path, n_records: int = 24, length: int = 1500, seed: int = 0) -> Path:
    """Random DNA with 100-bp blocks in lowercase ('repeats') and uppercase, like a soft-masked assembly."""
    rng = np.random.default_rng(seed)
    with open(path, "w") as fh:
        for r in range(n_records):
            blocks = []
            for b in range(length // 100):
                s = "".join(rng.choice(list("ACGT"), 100))
                blocks.append(s.lower() if (r + b) % 2 else s)
            fh.write(f">chr{r}\n{''.join(blocks)}\n")
    return path


def tiny_pipeline(tmp_path: Path) -> Path:
    fa = write_soft_masked_genome(tmp_path / "genome.fa")
    cache = tmp_path / "cache"
    common = [f"data.fasta=[{fa}]", "data.window_length=64", "data.num_val_windows=8", f"data.cache_dir={cache}",
              "train.batch_size=4", "train.log_every=1", "train.val_every=2", "train.save_every=2",
              "train.num_threads=1", "optim.warmup_steps=1"]
    cfg = {
        "recipe": "pipeline",
        "name": "tiny-test",
        "output_dir": str(tmp_path / "run"),
        "threads": 1,
        "note": "tiny test pipeline",
        "tasks": {"rep": {"build": "repeat", "fasta": str(fa), "window": 50, "test_fraction": 0.25,
                          "max_per_class": 30, "spec": {"seeds": [1], "epochs": 1}}},
        "teacher": {"config": str(REPO / "configs" / "teacher_tiny.yaml"),
                    "set": common + ["train.max_steps=3", "model.hidden_size=32", "model.num_layers=1",
                                     "model.intermediate_size=64", "model.num_heads=2"]},
        "students": {
            "HAD": {"config": str(REPO / "configs" / "tiny.yaml"), "set": common + ["train.max_steps=3"]},
            "MLM": {"config": str(REPO / "configs" / "tiny.yaml"),
                    "set": common + ["train.max_steps=3", "objective.mode=mlm"]},
        },
        "benchmark": {"tasks": ["rep"], "models": ["HAD=student:HAD", "MLM=student:MLM", "random=preset:had-tiny"],
                      "modes": ["probe"], "seeds": 1},
        "tsne": {"task": "rep", "models": ["HAD=student:HAD", "random=preset:had-tiny"], "max_samples": 24},
    }
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_pipeline_runs_every_stage_and_resumes_after_an_interruption(tmp_path, monkeypatch, capsys):
    cfg = tiny_pipeline(tmp_path)
    run = tmp_path / "run"

    # 1st invocation: interrupted inside the benchmark stage (after teacher and students finished).
    import hadna.eval.runner as runner

    real = runner.run_benchmark

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "run_benchmark", interrupted)
    assert main(["run", str(cfg)]) == 130
    for d in ("teacher/final", "students/HAD/final", "students/MLM/final"):
        assert (run / d / "training_summary.json").is_file(), d
    assert (run / "tasks" / "rep" / "task.yaml").is_file()
    assert not (run / "report.md").exists()
    state = json.loads((run / "pipeline.json").read_text())
    assert state["stages"]["benchmark"]["status"] == "running"
    mtimes = {d: (run / d / "final" / "model.safetensors").stat().st_mtime
              for d in ("teacher", "students/HAD", "students/MLM")}

    # 2nd invocation: finished stages are skipped, the rest runs, the report is written.
    monkeypatch.setattr(runner, "run_benchmark", real)
    assert main(["run", str(cfg)]) == 0
    for d, t in mtimes.items():
        assert (run / d / "final" / "model.safetensors").stat().st_mtime == t, f"{d} was retrained"
    state = json.loads((run / "pipeline.json").read_text())
    assert all(s["status"].startswith("done") for s in state["stages"].values()), state
    assert state["stages"]["teacher-train"]["status"] == "done"  # its time was recorded by the 1st run
    assert (run / "benchmark" / "results.md").is_file()
    assert {"png", "coordinates"} <= set(json.loads((run / "tsne" / "tsne.json").read_text())["files"])
    assert (run / "tsne" / "tsne.png").stat().st_size > 1000
    report = (run / "report.md").read_text()
    for needle in ("## Stages", "teacher-train", "pretrain:HAD", "pretrain:MLM", "## Pre-training",
                   "## Results", "HAD", "MLM", "random", "silhouette", "tsne/tsne.png", "tiny test pipeline"):
        assert needle in report, needle
    # the HAD student's validation losses are in the report, as numbers
    assert "recon_loss" in report and "distill_mse" in report

    # 3rd invocation: nothing left to do; every stage is skipped.
    assert main(["run", str(cfg)]) == 0
    assert "report:" in capsys.readouterr().out

    # 4th: a model added to the benchmark section runs that model only; the t-SNE stage, unchanged, is skipped.
    had_run = next((run / "benchmark" / "rep").glob("HAD.probe.json"))
    before = (had_run.stat().st_mtime, (run / "tsne" / "tsne.png").stat().st_mtime)
    assert main(["run", str(cfg), "benchmark.models=[HAD=student:HAD,MLM=student:MLM,random=preset:had-tiny,kmer]"]) == 0
    assert (had_run.stat().st_mtime, (run / "tsne" / "tsne.png").stat().st_mtime) == before
    assert "k-mer" in (run / "benchmark" / "results.md").read_text() and "k-mer" in (run / "report.md").read_text()


def test_paper_config_without_teacher_or_genome_is_a_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # no checkpoints/ or data/ here
    code = main(["run", str(REPO / "configs" / "had_1m_ntv2.yaml")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("hadna: error: ") and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert "not found" in err and ("hg38" in err or "nucleotide-transformer" in err)


def test_pipeline_config_mistakes_are_one_line_errors(tmp_path, capsys):
    bad = tmp_path / "p.yaml"
    bad.write_text("recipe: pipeline\nname: x\nstudents:\n  a: {config: nowhere.yaml}\n")
    assert main(["run", str(bad)]) == 2
    assert "recipe config not found: nowhere.yaml" in capsys.readouterr().err
    bad.write_text("recipe: pipeline\nname: x\nbenchmrk: {}\n")
    assert main(["run", str(bad)]) == 2
    assert "did you mean benchmark" in capsys.readouterr().err


def test_single_recipe_is_set_by_the_loader_only(tmp_path, capsys):
    from hadna.config import to_dict
    from hadna.pipeline import load_pipeline_config

    bad = tmp_path / "p.yaml"
    bad.write_text("recipe: pipeline\nname: x\nsingle_recipe: pretrain\n")
    assert main(["run", str(bad)]) == 2
    assert "unknown config key 'single_recipe'" in capsys.readouterr().err

    one = tmp_path / "one.yaml"
    one.write_text("recipe: pretrain\n")
    cfg = load_pipeline_config(one)
    assert cfg.single_recipe == "pretrain" and list(cfg.students) == ["one"]
    dumped = tmp_path / "dumped.yaml"  # what a run writes as <run_dir>/config.yaml reads back
    dumped.write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))
    again = load_pipeline_config(dumped)
    assert "single_recipe" not in to_dict(cfg) and again.single_recipe is None
    assert again.students["one"].inline == {"recipe": "pretrain"}
