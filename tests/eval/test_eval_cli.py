"""The evaluation commands: finetune, benchmark, report, embed (and their one-line user errors)."""

from __future__ import annotations


import numpy as np
import pandas as pd
import pytest

from hadna.cli import main
from hadna.eval.results import RunRecord, SeedResult
from hadna.eval.options import MODES
from hadna.eval.tasks import get_task


@pytest.fixture(autouse=True)
def _fresh_log_handlers():
    """hadna's CLI installs its stderr log handler once; drop it so each test's captured stderr gets one."""
    import logging

    logger = logging.getLogger("hadna")
    for h in [h for h in logger.handlers if getattr(h, "_hadna", False)]:
        logger.removeHandler(h)
    yield


def write_task(tmp_path, n=60, length=20):
    rng = np.random.default_rng(0)
    seqs = ["".join(rng.choice(list("GC" if i % 2 else "AT"), length)) for i in range(n)]
    df = pd.DataFrame({"sequence": seqs, "label": np.arange(n) % 2})
    df.iloc[: n * 3 // 4].to_csv(tmp_path / "train.csv", index=False)
    df.iloc[n * 3 // 4:].to_csv(tmp_path / "test.csv", index=False)
    return tmp_path / "train.csv", tmp_path / "test.csv"


def one_line_error(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith("hadna: error:")]
    assert len(errors) == 1 and "Traceback" not in "\n".join(err), err
    return errors[0]


@pytest.mark.parametrize("argv,match", [
    (["finetune", "--model", "preset:had-tiny", "--task", "human_enhancer_cohn"], "unknown task 'human_enhancer_cohn'"),
    (["finetune", "--model", "preset:had-tiny", "--train-file", "{tmp}/nope.csv"], "train file not found"),
    (["finetune", "--model", "{tmp}/no-model", "--train-file", "{tmp}/train.csv"], "model checkpoint not found"),
    (["finetune", "--model", "preset:had-9t", "--train-file", "{tmp}/train.csv"], "unknown preset"),
    (["finetune", "--model", "preset:had-tiny", "--train-file", "{tmp}/train.csv", "--seeds", "1,1"], "duplicate seeds"),
    (["finetune", "--model", "preset:had-tiny", "--train-file", "{tmp}/train.csv", "--lr-grid", "fast"], "--lr-grid"),
    (["finetune", "--model", "preset:had-tiny", "--task", "H3", "--task", "H4"], "runs one task"),
    (["finetune", "--model", "preset:had-tiny", "--train-file", "{tmp}/train.csv", "--head-dropout", "1.5"],
     "head_dropout must be in [0, 1)"),
    (["benchmark", "--models", "preset:had-tiny"], "no tasks given"),
    (["benchmark", "--tasks", "gue_prom_core_all", "--models", "preset:had-tiny", "--modes", "zero-shot"], "zero-shot"),
    (["benchmark", "--config", "{tmp}/missing.yaml"], "config file not found"),
    (["report", "{tmp}/missing.json"], "run record not found"),
    (["report", "{tmp}/train.csv"], "not valid JSON"),
    (["embed", "--model", "preset:had-tiny", "--input", "{tmp}/nope.fa", "--out", "{tmp}/e.npy"], "input file not found"),
    (["embed", "--model", "preset:had-tiny", "--input", "{tmp}/train.csv", "--out", "{tmp}/e.txt"], "use .npy or .parquet"),
    (["tsne", "--model", "preset:had-tiny", "--task", "nope", "--out", "{tmp}/t"], "unknown task 'nope'"),
], ids=["unknown-task", "missing-train-file", "bad-model-path", "unknown-preset", "duplicate-seeds", "bad-grid",
        "two-tasks", "bad-head-dropout", "benchmark-no-tasks", "benchmark-bad-mode", "missing-config", "missing-run", "not-json",
        "embed-missing-input", "embed-bad-output", "tsne-unknown-task"])
def test_user_errors_are_one_line_with_exit_code_2(tmp_path, capsys, argv, match):
    write_task(tmp_path)
    line = one_line_error(capsys, [a.format(tmp=tmp_path) for a in argv])
    assert match in line


def test_finetune_command_probe_writes_json_and_tables(tmp_path, capsys):
    train, test = write_task(tmp_path)
    out = tmp_path / "runs"
    argv = ["finetune", "--model", "preset:had-tiny", "--train-file", str(train), "--test-file", str(test),
            "--task-name", "gc", "--mode", "probe", "--seeds", "2", "--output-dir", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    run = out / "gc" / "had-tiny_random_init.probe.json"
    rec = RunRecord.load(run)
    assert rec.done_seeds == [1, 2] and rec.mode == "probe" and rec.config["effective"]["evaluation"] == "test"
    assert (run.with_suffix(".md")).is_file() and (run.with_suffix(".csv")).is_file()
    assert "had-tiny (random init) / probe" in printed and "Protocol of each run" in printed
    csv = pd.read_csv(run.with_suffix(".csv"))
    assert {"had-tiny (random init) / probe mean", "had-tiny (random init) / probe sd",
            "had-tiny (random init) / probe range"} <= set(csv.columns)
    assert main(argv) == 0  # a rerun resumes: nothing left to do, same record
    assert RunRecord.load(run).results[0].metrics == rec.results[0].metrics


def test_benchmark_config_runs_every_task_model_mode(tmp_path, capsys):
    train, test = write_task(tmp_path)
    task = tmp_path / "gc.yaml"
    task.write_text(f"name: gc\nfiles: {{train: {train}, test: {test}}}\n")  # a custom task from YAML
    cfg = tmp_path / "bench.yaml"
    cfg.write_text(
        "# hadna benchmark --config bench.yaml\n"
        f"tasks: ['{task}']\nmodels: ['preset:had-tiny', 'b=preset:had-tiny']\nmodes: [probe, finetune]\n"
        f"output_dir: {tmp_path / 'bench'}\nseeds: 1\n"
        "protocol: {epochs: 1, lr: 0.003, batch_size: 16}\n"
        "mode_overrides: {probe: {probe_c_grid: [1.0]}}\n"
        "task_overrides: {gc: {max_train_samples: 40}}\n")
    dry = ["benchmark", "--config", str(cfg), "--set", "protocol.patience=2", "--dry-run"]
    capsys.readouterr()
    assert main(dry) == 0
    plan = capsys.readouterr().out
    assert not (tmp_path / "bench").exists()  # nothing ran, nothing was written
    rows = [line for line in plan.splitlines() if line.startswith("| gc |")]
    assert len(rows) == 4 and all("| 0 of 1 | 1 |" in r for r in rows)
    assert "| gc | b | finetune | 0 of 1 | 1 | train 800, eval " in plan  # 40 sequences x 20 nt x 1 epoch
    assert "4 of 4 runs have seeds to run" in plan and "No run with seeds to run has a finished seed" in plan
    assert main(["benchmark", "--config", str(cfg), "--set", "protocol.patience=2"]) == 0
    capsys.readouterr()
    assert main(dry) == 0
    plan = capsys.readouterr().out
    assert "0 of 4 runs have seeds to run" in plan and plan.count("| 1 of 1 | — |") == 4 and "| done |" in plan
    md = (tmp_path / "bench" / "results.md").read_text()
    for col in ("had-tiny (random init) / probe", "had-tiny (random init) / finetune", "b / probe", "b / finetune"):
        assert col in md
    assert len(list((tmp_path / "bench" / "gc").glob("*.json"))) == 4
    rec = RunRecord.load(tmp_path / "bench" / "gc" / "b.finetune.json")
    assert rec.config["protocol"]["patience"] == 2 and rec.config["effective"]["finetune"]["selection"] == "fixed"
    assert rec.config["protocol"]["max_train_samples"] == 40 and rec.results[0].extra["n_train"] == 40
    assert rec.results[0].extra["grid"][0]["history"][0]["train_nt_per_s"] > 0


def fake_run(path, task: str, model: str, values: list[float]) -> None:
    rec = RunRecord.for_task(get_task(task), model, "finetune", seeds=list(range(1, len(values) + 1)))
    for s, v in enumerate(values, start=1):
        rec.add(SeedResult(seed=s, metrics={"accuracy": v, "mcc": v / 2}, timings={"total": 60.0}, nt_per_s=1000.0,
                           epochs_run=2, extra={"n_train": 100, "n_val": 10, "n_test": 50, "lr": 1e-3,
                                                "batch_size": 32}))
    rec.save(path)


def test_report_merges_runs_with_a_published_column(tmp_path, capsys):
    fake_run(tmp_path / "a.json", "human_enhancers_cohn", "hadna-a", [0.70, 0.72, 0.74])
    fake_run(tmp_path / "b.json", "human_enhancers_cohn", "hadna-b", [0.60, 0.61])
    pub = tmp_path / "pub.csv"
    pub.write_text("benchmark,task,metric,model,params,value,source\n"
                   "genomic_benchmarks,human_enhancers_cohn,accuracy,CNN,264k,0.702,Some paper Table 1\n")
    out = tmp_path / "report.md"
    assert main(["report", str(tmp_path / "a.json"), str(tmp_path / "b.json"), "--published", str(pub),
                 "--out", str(out), "--csv", str(tmp_path / "report.csv")]) == 0
    md = out.read_text()
    header = md.splitlines()[0]
    assert "hadna-a / finetune" in header and "hadna-b / finetune" in header and "CNN (published)" in header
    row = next(line for line in md.splitlines() if line.startswith("| human_enhancers_cohn"))
    assert "0.720 ± 0.020 (range 0.040)" in row and "0.605 ± 0.007" in row and "0.702 [1]" in row
    assert "[1] Some paper Table 1" in md and "Published columns are numbers reported in the literature" in md
    csv = pd.read_csv(tmp_path / "report.csv")
    assert csv.loc[0, "CNN (published)"] == pytest.approx(0.702)


def test_embed_command(tmp_path, capsys):
    (tmp_path / "in.fa").write_text(">a\nACGTAC\n>b\nGGGTTTAA\n")
    assert main(["embed", "--model", "preset:had-tiny", "--input", str(tmp_path / "in.fa"),
                 "--out", str(tmp_path / "e.npy")]) == 0
    assert np.load(tmp_path / "e.npy").shape == (2, 32)
    assert "wrote 2 x 32 embeddings" in capsys.readouterr().out
    ids = (tmp_path / "e.npy.ids.tsv").read_text().splitlines()
    assert ids == ["index\tid\tlength", "0\ta\t6", "1\tb\t8"]


def test_shipped_benchmark_configs_are_valid():
    from pathlib import Path

    from hadna.config import from_dict, read_yaml
    from hadna.eval.runner import BenchmarkConfig

    configs = sorted((Path(__file__).resolve().parents[2] / "configs").glob("benchmark_*.yaml"))
    assert configs
    for path in configs:
        assert path.read_text().startswith(f"# hadna benchmark --config configs/{path.name}"), path
        bench = from_dict(BenchmarkConfig, read_yaml(path), str(path))
        bench.validate()  # tasks registered, modes and overrides valid (no data needed)
        for task in bench.tasks:
            for mode in MODES:  # the modes a --modes option may ask for too
                bench.protocol_for(task, mode, (1, 2, 3, 4, 5)).validate()


def test_benchmark_seeds_can_differ_per_mode():
    from hadna.eval.runner import BenchmarkConfig

    bench = BenchmarkConfig(tasks=["gue_prom_core_all"], models=["preset:had-tiny"], modes=["probe", "finetune"],
                            seeds=3, mode_overrides={"finetune": {"seeds": [7]}})
    bench.validate()
    assert bench.protocol_for("gue_prom_core_all", "probe", (1, 2, 3, 4, 5)).seeds == [1, 2, 3]
    assert bench.protocol_for("gue_prom_core_all", "finetune", (1, 2, 3, 4, 5)).seeds == [7]


def test_task_overrides_of_tasks_outside_the_run_are_unused_but_typos_fail():
    from hadna.config import ConfigError
    from hadna.eval.runner import BenchmarkConfig

    # --tasks narrowing a config's list keeps the config's overrides of the other (registered) tasks valid
    bench = BenchmarkConfig(tasks=["gue_prom_core_all"], models=["kmer"],
                            task_overrides={"human_enhancers_cohn_testcv": {"cv_folds": 5},
                                            "gue_prom_core_all": {"max_train_samples": 40}})
    bench.validate()
    assert bench.protocol_for("gue_prom_core_all", "probe", (1, 2, 3)).max_train_samples == 40
    bench.task_overrides["gue_prom_core_al"] = {"cv_folds": 5}
    with pytest.raises(ConfigError, match="gue_prom_core_al.*did you mean gue_prom_core_all"):
        bench.validate()


def test_command_line_protocol_options_win_over_every_level_of_the_config(tmp_path, capsys):
    from hadna.config import ConfigError
    from hadna.eval.runner import BenchmarkConfig

    bench = BenchmarkConfig(tasks=["gue_splice_reconstructed", "gue_prom_core_all"], models=["kmer"],
                            protocol={"lr_grid": [1e-3, 2e-3], "max_train_samples": 100},
                            mode_overrides={"finetune": {"epochs": 5, "patience": 2, "seeds": [4]}},
                            task_overrides={"gue_splice_reconstructed": {"epochs": 7, "finetune": {"epochs": 15}}})
    bench.override_everywhere({"epochs": 2, "lr": 0.01, "seeds": [9]})
    bench.validate()  # lr replaced the config's lr_grid, not joined it ("either lr or lr_grid")
    for task in ("gue_splice_reconstructed", "gue_prom_core_all"):
        cfg = bench.protocol_for(task, "finetune", (1, 2, 3))
        assert (cfg.epochs, cfg.lr, cfg.lr_grid, cfg.seeds, cfg.patience, cfg.max_train_samples) == \
            (2, 0.01, None, [9], 2, 100)  # what the options did not set stays the config's

    # a typo in an override fails at validation, whichever task or mode it is for
    bench.task_overrides["gue_prom_core_all"] = {"scratch": {"epoch": 3}}
    with pytest.raises(ConfigError, match=r"protocol of gue_prom_core_all/scratch.*\bepoch\b"):
        bench.validate()
    bench.task_overrides["gue_prom_core_all"] = {"finetun": {"epochs": 3}}
    with pytest.raises(ConfigError, match="gue_prom_core_all.finetun is neither a protocol setting nor a mode.*"
                                          "did you mean finetune"):
        bench.validate()
    for over in ({"finetune": {"mode": "probe"}}, {"mode": "probe"}):
        bench.task_overrides["gue_prom_core_all"] = over
        with pytest.raises(ConfigError, match="'mode' is not a setting"):
            bench.validate()

    # through the command line: --epochs beats a task's per-mode override (the dry run counts the nucleotides)
    train, test = write_task(tmp_path)
    (tmp_path / "gc.yaml").write_text(f"name: gc\nfiles: {{train: {train}, test: {test}}}\n")
    cfg = tmp_path / "bench.yaml"
    cfg.write_text(f"tasks: ['{tmp_path / 'gc.yaml'}']\nmodels: ['preset:had-tiny']\nmodes: [finetune]\nseeds: 1\n"
                   f"output_dir: {tmp_path / 'out'}\nprotocol: {{lr: 0.003, batch_size: 16, max_train_samples: 40}}\n"
                   "mode_overrides: {finetune: {epochs: 3}}\ntask_overrides: {gc: {finetune: {epochs: 4}}}\n")
    for extra, epochs in (([], 4), (["--epochs", "1"], 1)):
        capsys.readouterr()
        assert main(["benchmark", "--config", str(cfg), "--dry-run", *extra]) == 0
        out = capsys.readouterr().out
        assert f"| train {40 * 20 * epochs:,}, eval " in out  # 40 sequences x 20 nt x epochs
        assert f"- gc / had-tiny (random init) / finetune: the shortest fine-tuning run has at most {epochs * 3} " \
               "optimiser steps" in out


def test_task_overrides_per_mode_apply_to_that_mode_of_that_task_only():
    from hadna.config import ConfigError
    from hadna.eval.runner import BenchmarkConfig

    bench = BenchmarkConfig(tasks=["gue_splice_reconstructed", "gue_prom_core_all"], models=["kmer"],
                            mode_overrides={"finetune": {"epochs": 5, "patience": 2}},
                            task_overrides={"gue_splice_reconstructed": {"max_train_samples": 40,
                                                                         "finetune": {"epochs": 15}}})
    bench.validate()
    ft = bench.protocol_for("gue_splice_reconstructed", "finetune", (1, 2, 3))
    assert (ft.epochs, ft.patience, ft.max_train_samples) == (15, 2, 40)  # mode-in-task wins, the rest merges
    probe = bench.protocol_for("gue_splice_reconstructed", "probe", (1, 2, 3))
    assert (probe.epochs, probe.max_train_samples) == (None, 40)  # the probe's protocol is untouched
    other = bench.protocol_for("gue_prom_core_all", "finetune", (1, 2, 3))
    assert (other.epochs, other.max_train_samples) == (5, None)

    bench.task_overrides["gue_splice_reconstructed"]["finetune"] = 15
    with pytest.raises(ConfigError, match="gue_splice_reconstructed.finetune must map settings"):
        bench.validate()
    bench.task_overrides["gue_splice_reconstructed"]["finetune"] = {"epoch": 15}
    with pytest.raises(ConfigError, match="epoch"):
        bench.protocol_for("gue_splice_reconstructed", "finetune", (1, 2, 3))


def test_config_levels_replace_partner_settings_and_keep_rc_options_off_the_probe():
    """A later level's fixed lr drops an earlier lr_grid (and back); rc_augment given for every mode reaches
    fine-tuning only, and set for the probe itself it is refused, naming the task and mode."""
    from hadna.config import ConfigError
    from hadna.eval.runner import BenchmarkConfig

    bench = BenchmarkConfig(tasks=["gue_emp_H3", "gue_emp_H4"], models=["kmer", "preset:had-tiny"],
                            modes=["finetune", "probe"],
                            protocol={"lr_grid": [1e-3, 2e-3], "batch_size": 16},
                            mode_overrides={"finetune": {"batch_size_grid": [16, 32]}},
                            task_overrides={"gue_emp_H3": {"finetune": {"lr": 0.01}}, "gue_emp_H4": {"lr": 0.02}})
    bench.validate()
    h3, h4 = (bench.protocol_for(t, "finetune", (1,)) for t in ("gue_emp_H3", "gue_emp_H4"))
    assert (h3.lr, h3.lr_grid, h3.batch_size, h3.batch_size_grid) == (0.01, None, None, [16, 32])
    assert (h4.lr, h4.lr_grid) == (0.02, None)
    assert bench.protocol_for("gue_emp_H3", "probe", (1,)).batch_size == 16  # the probe's level kept it

    bench.override_everywhere({"rc_augment": True, "rc_test": True})  # --rc-augment --rc-test
    bench.task_overrides["gue_emp_H3"]["rc_test"] = True  # a task's setting for all its modes
    bench.validate()
    for task in ("gue_emp_H3", "gue_emp_H4"):
        ft, pr = (bench.protocol_for(task, m, (1,)) for m in ("finetune", "probe"))
        assert (ft.rc_augment, ft.rc_test, pr.rc_augment, pr.rc_test) == (True, True, False, False)
    bench.task_overrides["gue_emp_H4"]["probe"] = {"rc_test": True}
    with pytest.raises(ConfigError, match="protocol of gue_emp_H4/probe: rc_augment / rc_test apply to fine-tuning"):
        bench.validate()


def test_plan_markdown_totals_leave_out_runs_that_would_not_run():
    """A run held by another process or refusing to start is listed under Problems and counted nowhere else;
    the time line sums only the measured runs and says how many could not be timed."""
    from hadna.eval.protocol import RunPlan
    from hadna.eval.runner import plan_markdown

    def row(model, **plan):
        return {"task": "t", "model": model, "mode": "finetune", "path": f"t/{model}.finetune.json",
                "plan": RunPlan(**plan)}

    md = plan_markdown([
        row("done", seeds=[1], done=[1], cost={}, seconds_per_seed=60.0),
        row("busy", seeds=[1, 2], done=[1], cost={"train_nt": 1000, "eval_nt": 10}, seconds_per_seed=60.0,
            estimate_s=60.0, running="hadna pid 1 on h"),
        row("bad", seeds=[1], done=[], cost={"train_nt": 500, "eval_nt": 5}, problem="other weights"),
        row("timed", seeds=[1, 2, 3], done=[1], cost={"train_nt": 200, "eval_nt": 2}, seconds_per_seed=120.0,
            estimate_s=240.0, checkpoints={2: [3]}),
        row("fresh", seeds=[1], done=[], cost={"train_nt": 100, "eval_nt": 1}),
    ])
    cells = {line.split("|")[2].strip(): line for line in md.splitlines() if line.startswith("| t |")}
    assert "| running now |" in cells["busy"] and "| refuses |" in cells["bad"] and "| done |" in cells["done"]
    assert "| 4.0 min |" in cells["timed"] and "| 2: 3 |" in cells["timed"] and "| — |" in cells["fresh"]
    assert "2 of 5 runs have seeds to run; nucleotides to run: train 300, eval 3 " in md
    assert "at the pace of the seeds already finished in these run files (same machine and load assumed): " \
           "4.0 min, plus 1 run(s) with no finished seed" in md
    assert "- t / busy / finetune is running now (hadna pid 1 on h)" in md
    assert "- t / bad / finetune would not start: other weights" in md
