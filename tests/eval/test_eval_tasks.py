"""Task registry, custom tasks from YAML and from CLI options."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from hadna.errors import ConfigError
from hadna.commands.options import add_task_arguments, task_from_args
from hadna.eval.tasks import TASKS, TaskSpec, get_task, list_tasks, task_from_yaml

GB = ["demo_coding_vs_intergenomic_seqs", "demo_human_or_worm", "dummy_mouse_enhancers_ensembl",
      "human_enhancers_cohn", "human_enhancers_ensembl", "human_ensembl_regulatory",
      "human_nontata_promoters", "human_ocr_ensembl"]
NT = ["H3", "H3K14ac", "H3K36me3", "H3K4me1", "H3K4me2", "H3K4me3", "H3K79me3", "H3K9ac", "H4", "H4ac",
      "enhancers", "enhancers_types", "promoter_all", "promoter_no_tata", "promoter_tata", "splice_sites_all",
      "splice_sites_acceptors", "splice_sites_donors"]


def test_registry_has_all_benchmark_tasks():
    assert sorted(t.name for t in list_tasks("genomic_benchmarks")) == sorted(GB)
    assert sorted(t.name for t in list_tasks("nucleotide_transformer")) == sorted(NT)
    assert len(list_tasks("gue")) == 15


@pytest.mark.parametrize("name", GB)
def test_genomic_benchmarks_protocol(name):
    t = get_task(name)
    assert (t.metric, t.seeds, t.epochs) == ("accuracy", (1, 2, 3, 4, 5), 10)
    assert t.layout == "genomic_benchmarks" and t.path == name
    assert t.class_names is not None and len(t.class_names) == t.num_classes
    assert list(t.class_names) == sorted(t.class_names)  # labels follow sorted class names


@pytest.mark.parametrize("name,metric,k,length", [
    ("H3", "mcc", 2, 500), ("H4ac", "mcc", 2, 500), ("enhancers", "mcc", 2, 200),
    ("enhancers_types", "mcc", 3, 200), ("promoter_all", "f1", 2, 300), ("promoter_tata", "f1", 2, 300),
    ("splice_sites_acceptors", "f1", 2, 600), ("splice_sites_donors", "f1", 2, 600),
    ("splice_sites_all", "accuracy", 3, 400),
])
def test_nucleotide_transformer_protocol(name, metric, k, length):
    t = get_task(name)
    assert (t.metric, t.num_classes, t.max_length) == (metric, k, length)
    assert t.seeds == tuple(range(1, 11)) and t.epochs == 20


def test_gb_class_counts_match_metadata():
    assert get_task("human_ensembl_regulatory").class_names == ("enhancer", "ocr", "promoter")
    assert get_task("demo_human_or_worm").class_names == ("human", "worm")


def test_gue_tasks_are_not_nt_and_use_mcc():
    for t in list_tasks("gue"):
        assert t.metric == "mcc" and not t.comparable_with_published
        assert "Nucleotide Transformer" in t.notes
    emp = get_task("gue_emp_H3")
    assert emp.files == {"train": "dev.csv", "test": "test.csv"}
    assert get_task("gue_prom_core_all").files["validation"] == "dev.csv"
    assert get_task("gue_splice_reconstructed").num_classes == 3


def test_unknown_task_suggests_close_names():
    with pytest.raises(ConfigError, match="did you mean .*H3K4me1"):
        get_task("H3K4me")


@pytest.mark.parametrize("bad,match", [
    (dict(num_classes=1), "num_classes"),
    (dict(class_names=("a",)), "class_names"),
    (dict(max_length=0), "max_length"),
    (dict(seeds=()), "seeds"),
    (dict(seeds=(1, 1)), "duplicates"),
    (dict(files={"dev": "x.csv"}), "unknown split"),
    (dict(files={"test": "x.csv"}), "'train'"),
    (dict(val_fraction=1.0), "val_fraction"),
    (dict(name="a/b"), "path separators"),
], ids=["one-class", "names-count", "max-length", "no-seeds", "dup-seeds", "bad-split", "no-train", "fraction",
        "slash"])
def test_spec_validation(bad, match):
    base = dict(name="t", benchmark="custom", num_classes=2, max_length=10, metric="accuracy")
    with pytest.raises(ConfigError, match=match):
        TaskSpec(**{**base, **bad})


def test_task_from_yaml_resolves_paths_next_to_the_file(tmp_path):
    (tmp_path / "cfg").mkdir()
    f = tmp_path / "cfg" / "task.yaml"
    f.write_text("name: mine\nnum_classes: 3\nmetric: mcc\npath: data\nfiles: {train: a.csv}\nseeds: [7, 8]\n")
    t = task_from_yaml(f)
    assert t.benchmark == "custom" and t.metric == "mcc" and t.seeds == (7, 8)
    assert Path(t.path) == (tmp_path / "cfg" / "data").resolve()
    assert t.max_length is None


def test_task_from_yaml_rejects_unknown_keys(tmp_path):
    f = tmp_path / "task.yaml"
    f.write_text("name: mine\nmetrc: mcc\n")
    with pytest.raises(ConfigError, match=r"task.yaml.*did you mean metric"):
        task_from_yaml(f)


def test_task_from_cli_options(tmp_path):
    p = argparse.ArgumentParser()
    add_task_arguments(p)
    args = p.parse_args(["--task", "H3", "--train-file", str(tmp_path / "x.train.csv"), "--metric", "f1",
                         "--num-classes", "2", "--max-length", "100"])
    specs = task_from_args(args)
    assert [s.name for s in specs] == ["H3", "x.train"]
    custom = specs[1]
    assert custom.metric == "f1" and custom.max_length == 100 and custom.files["train"].endswith("x.train.csv")
    assert (args.truncation, args.from_hub, args.reference) == ("left", False, None)
    with pytest.raises(ConfigError, match="no task given"):
        task_from_args(p.parse_args([]))
    with pytest.raises(ConfigError, match="need --train-file"):
        task_from_args(p.parse_args(["--test-file", "t.csv"]))


def test_a_task_of_your_own_fine_tunes_with_one_recipe_unless_it_sets_a_grid(tmp_path):
    p = argparse.ArgumentParser()
    add_task_arguments(p)
    (cli,) = task_from_args(p.parse_args(["--train-file", str(tmp_path / "mine.csv")]))
    f = tmp_path / "task.yaml"
    f.write_text("name: mine\nfiles: {train: a.csv}\n")
    for spec in (cli, task_from_yaml(f)):
        assert (spec.lr_grid, spec.batch_size_grid) == ((1e-3,), (32,))
    f.write_text("name: mine\nfiles: {train: a.csv}\nlr_grid: [2e-3, 5e-4]\nbatch_size_grid: [8]\n")
    assert (task_from_yaml(f).lr_grid, task_from_yaml(f).batch_size_grid) == ((2e-3, 5e-4), (8,))
    # the registry's tasks keep their published grids, its own offline GB samples included
    assert len(get_task("H3").lr_grid) * len(get_task("H3").batch_size_grid) > 1
    assert get_task("human_ocr_ensembl_sample").batch_size_grid == TaskSpec.batch_size_grid


def test_a_split_named_train_file_names_the_task_after_its_folder(tmp_path):
    p = argparse.ArgumentParser()
    add_task_arguments(p)
    for name in ("train.csv", "train.tsv.gz", "dev.fa"):
        (spec,) = task_from_args(p.parse_args(["--train-file", str(tmp_path / "promoters" / name)]))
        assert spec.name == "promoters", name
    (spec,) = task_from_args(p.parse_args(["--train-file", str(tmp_path / "promoters" / "train.csv"),
                                           "--task-name", "mine"]))
    assert spec.name == "mine"


def test_registry_specs_are_json_friendly():
    import json

    for t in TASKS.values():
        json.dumps(t.to_dict())


def test_hadna_info_lists_the_registered_tasks(capsys):
    from hadna.cli import main

    assert main(["info", "--tasks"]) == 0
    out = capsys.readouterr().out
    assert f"{len(TASKS)} tasks" in out
    for name in ("gue_emp_H3", "human_ocr_ensembl_sample", "human_ocr_ensembl_sample_cv"):
        assert any(line.split()[0] == name for line in out.splitlines()[1:-1]), name
