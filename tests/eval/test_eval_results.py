"""Run records (JSON, resume), aggregation numbers, merged tables and published columns."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import re

import pytest

from hadna.errors import ConfigError, DataError, MissingFileError
from hadna.eval.results import (RunRecord, SeedResult, aggregate, build_table, load_published, load_records,
                                merge_runs, to_csv, to_markdown, write_markdown)
from hadna.eval.tasks import get_task, list_tasks

SEED_VALUES = [0.80, 0.82, 0.85, 0.79, 0.84]  # mean 0.82; squared deviations sum 0.0026 -> sd sqrt(0.00065)


def record(task: str, model: str = "hadna", mode: str = "finetune", values=SEED_VALUES, metric=None) -> RunRecord:
    spec = get_task(task)
    rec = RunRecord.for_task(spec, model, mode, config={"lr": 1e-3}, seeds=list(range(1, len(values) + 1)))
    for seed, v in enumerate(values, start=1):
        rec.add(SeedResult(seed=seed, metrics={"accuracy": 0.5, metric or spec.metric: v},
                           timings={"train": 10.0 + seed}, nt_per_s=1e5, epochs_run=spec.epochs))
    return rec


def test_aggregate_known_numbers():
    agg = aggregate(SEED_VALUES, "accuracy")
    assert agg.n == 5
    assert agg.mean == pytest.approx(0.82)
    assert agg.sd == pytest.approx(0.00065 ** 0.5)  # sample sd, ddof=1 (population sd would be 0.0228)
    assert agg.range == pytest.approx(0.06)
    assert (agg.min, agg.max) == (0.79, 0.85)
    assert agg.cell(3) == "0.820 ± 0.025"
    assert agg.cell(3, show_n=True, show_range=True) == "0.820 ± 0.025 (n=5, range 0.060)"


def test_aggregate_single_seed_has_no_sd():
    agg = aggregate([0.7])
    assert agg.sd is None and agg.range == 0 and agg.cell(2) == "0.70"
    with pytest.raises(DataError, match="no values"):
        aggregate([])


def test_record_roundtrip_and_atomic_save(tmp_path):
    rec = record("human_nontata_promoters")
    rec.data = {"splits": {"train": {"n": 10}}}
    path = rec.save(tmp_path / "runs" / "r.json")
    assert [p.name for p in path.parent.iterdir()] == ["r.json"]  # no temp file left behind
    back = RunRecord.load(path)
    assert back == rec
    assert back.aggregate().mean == pytest.approx(0.82)
    assert back.results[0].timings == {"train": 11.0} and back.results[0].epochs_run == 10
    assert json.loads(path.read_text())["schema"] == "hadna.run/1"


def test_resume_skips_completed_seeds():
    rec = RunRecord.for_task(get_task("H3"), "hadna", "probe")
    assert rec.seeds == list(range(1, 11))
    rec.add(SeedResult(seed=1, metrics={"mcc": 0.5}))
    rec.add(SeedResult(seed=2, metrics={"mcc": 0.6}))
    assert rec.remaining_seeds() == list(range(3, 11))
    with pytest.raises(ValueError, match="already recorded"):
        rec.add(SeedResult(seed=2, metrics={"mcc": 0.6}))


@pytest.mark.parametrize("text,match", [
    ("{not json", "not valid JSON"),
    ('{"schema": "other/9"}', "unsupported schema"),
    ('{"task": "x"}', "run record|missing"),
    ('[1, 2]', "expected a JSON object"),
], ids=["bad-json", "schema", "missing-keys", "not-object"])
def test_load_bad_records(tmp_path, text, match):
    p = tmp_path / "bad.json"
    p.write_text(text)
    with pytest.raises(DataError, match=match):
        RunRecord.load(p)


def test_load_missing_record(tmp_path):
    with pytest.raises(MissingFileError):
        RunRecord.load(tmp_path / "nope.json")


def test_missing_metric_in_a_seed_is_an_error():
    rec = RunRecord.for_task(get_task("H3"), "m", "probe", seeds=[1])
    rec.add(SeedResult(seed=1, metrics={"accuracy": 0.5}))
    with pytest.raises(DataError, match=r"seed 1 has no 'mcc' metric"):
        rec.aggregate()


def test_merged_table_side_by_side(tmp_path):
    a = record("human_nontata_promoters", "hadna", "finetune")
    b = record("human_nontata_promoters", "hadna", "probe", values=[0.7, 0.72, 0.71])
    c = record("H3", "hadna", "finetune", values=[0.5, 0.6])
    for i, r in enumerate([a, b, c]):
        r.save(tmp_path / "runs" / f"{i}.json")
    table = merge_runs([tmp_path / "runs"])
    assert [r.task for r in table.rows] == ["human_nontata_promoters", "H3"]  # registry order
    assert table.run_columns == [("hadna", "finetune"), ("hadna", "probe")]
    md = to_markdown(table)
    header = md.splitlines()[0]
    assert "hadna / finetune: mean ± sd (n seeds per cell)" in header  # 5 and 2 seeds
    assert "hadna / probe: mean ± sd (n=3 seeds)" in header
    assert "| human_nontata_promoters | accuracy | 0.820 ± 0.025 (n=5) | 0.710 ± 0.010 |" in md
    assert "| H3 | mcc | 0.550 ± 0.071 (n=2) | — |" in md
    assert "sample standard deviation (ddof=1)" in md

    rows = list(csv.DictReader(io.StringIO(to_csv(table))))
    assert rows[0]["hadna / finetune mean"] == "0.820000" and rows[0]["hadna / finetune sd"] == "0.025495"
    assert rows[0]["hadna / finetune range"] == "0.060000" and rows[0]["hadna / finetune n"] == "5"
    assert rows[1]["hadna / probe mean"] == ""


def test_a_folder_is_searched_for_run_records_only(tmp_path):
    record("H3").save(tmp_path / "benchmark" / "H3" / "m.probe.json")
    (tmp_path / "benchmark" / "DONE.json").write_text('{"results": "results.md", "settings": {}}')  # hadna run's
    (tmp_path / "tsne").mkdir()
    (tmp_path / "tsne" / "tsne.json").write_text('{"task": "H3", "models": []}')
    [rec] = load_records([tmp_path])
    assert rec.task == "H3"
    with pytest.raises(DataError, match="DONE.json: not a hadna run record"):  # named on its own: still refused
        load_records([tmp_path / "benchmark" / "DONE.json"])
    (tmp_path / "benchmark" / "H3" / "n.probe.json").write_text('{"task": "H3", "mod')  # broken: an error
    with pytest.raises(DataError):
        load_records([tmp_path])


def test_duplicate_runs_are_rejected(tmp_path):
    record("H3").save(tmp_path / "a.json")
    record("H3").save(tmp_path / "b.json")
    with pytest.raises(DataError, match="also in.*seeds 1, 2, 3, 4, 5 in both"):
        load_records([tmp_path / "a.json", tmp_path / "b.json"])


def _split_run(model: dict, spec: dict, mode: str = "finetune") -> tuple[RunRecord, RunRecord]:
    """Seeds 1-2 and seed 3 of one run, as two processes would write them."""
    parts = []
    for seeds in ([1, 2], [3]):
        rec = RunRecord.for_task(get_task("H3"), "m", mode, seeds=seeds, data={"fingerprint": "f" * 64},
                                 config={"protocol": {"mode": mode, "lr": 1e-3, "seeds": seeds, "device": "cpu"},
                                         "model_spec": dict(spec), "model": dict(model)})
        for seed in seeds:
            rec.add(SeedResult(seed=seed, metrics={"mcc": 0.1 * seed}))
        parts.append(rec)
    return parts[0], parts[1]


PRETRAINED = {"kind": "hadna", "target": "/venv/a/had-1m-primates", "pooling": "mean"}


def _no_digests(a: RunRecord, b: RunRecord) -> None:
    a.config["model"] = b.config["model"] = {}  # records written before digests
    b.config["model_spec"]["target"] = "/elsewhere/mlm"


@pytest.mark.parametrize("change,problem", [
    (lambda a, b: None, None),
    (lambda a, b: b.config["model"].update(encoder_sha256="b" * 64), "encoder weights: sha256 aaaaaaaaaaaa vs bbbbbb"),
    (lambda a, b: b.config["model_spec"].update(pooling="max"), "model pooling: 'mean' vs 'max'"),
    (lambda a, b: b.data.update(fingerprint="e" * 64), "task data: fingerprint ffffffffffff vs eeeeeeeeeeee"),
    (lambda a, b: b.config["protocol"].update(lr=2e-3), "lr: 0.001 -> 0.002"),
    (_no_digests, "no weights digest recorded"),
], ids=["same-weights-other-path", "other-weights", "other-pooling", "other-data", "other-lr", "no-digest"])
def test_seeds_of_one_run_in_two_files_merge_only_when_nothing_differs(tmp_path, change, problem):
    a, b = _split_run({"encoder_sha256": "a" * 64}, PRETRAINED)
    b.config["model_spec"]["target"] = "/venv/b/had-1m-primates"  # another machine: the same weights by digest
    change(a, b)
    a.save(tmp_path / "x" / "m.json")
    b.save(tmp_path / "y" / "m.json")
    if problem is None:
        [merged] = load_records([tmp_path])
        assert merged.done_seeds == [1, 2, 3] and merged.aggregate().mean == pytest.approx(0.2)
        assert merged.notes[-1].startswith("seeds 1, 2, 3 merged from 2 run files")
    else:
        with pytest.raises(DataError, match="must not be averaged: .*" + re.escape(problem)):
            load_records([tmp_path])


def test_random_init_seeds_merge_although_their_weights_differ_but_not_across_architectures(tmp_path):
    a, b = _split_run({"encoder_sha256": "a" * 64, "encoder_parameters": 1000},
                      {"kind": "preset", "target": "had-1m", "pooling": "mean"})
    b.config["model"]["encoder_sha256"] = "b" * 64  # a random init's weights follow its seed
    a.save(tmp_path / "a.json")
    b.save(tmp_path / "b.json")
    assert load_records([tmp_path])[0].done_seeds == [1, 2, 3]
    b.config["model_spec"]["target"] = "had-10m"
    b.config["model"]["encoder_parameters"] = 9000
    b.save(tmp_path / "b.json")
    with pytest.raises(DataError, match="model target: 'had-1m' vs 'had-10m'; model encoder_parameters: 1000 vs 9000"):
        load_records([tmp_path])


def test_k_mer_runs_of_other_k_do_not_merge(tmp_path):
    a, b = _split_run({"encoder_sha256": "e" * 64}, {"kind": "kmer", "target": "1-6", "pooling": "mean"}, "probe")
    b.config["model_spec"]["target"] = "3"  # no weights: equal digests say nothing
    a.save(tmp_path / "a.json")
    b.save(tmp_path / "b.json")
    with pytest.raises(DataError, match="model target: '1-6' vs '3'"):
        load_records([tmp_path])


def test_protocols_are_compared_as_run_and_old_records_take_the_defaults(tmp_path):
    a, b = _split_run({"encoder_sha256": "a" * 64}, PRETRAINED)
    b.config["protocol"]["head_init"] = "random"  # the default, absent from a record written before head_init
    a.config["effective"] = {"seeds": [1, 2], "finetune": {"epochs": 5, "eval_batch_size": 64}}
    b.config["effective"] = {"seeds": [3], "finetune": {"epochs": 5, "eval_batch_size": 256}}
    a.save(tmp_path / "a.json")
    b.save(tmp_path / "b.json")
    assert load_records([tmp_path])[0].done_seeds == [1, 2, 3]
    b.config["effective"]["finetune"]["epochs"] = 10  # other task defaults in another hadna version
    b.save(tmp_path / "b.json")
    with pytest.raises(DataError, match="as run, finetune"):
        load_records([tmp_path])


@pytest.mark.parametrize("head_init,merges", [("random", True), ("probe", False)])
def test_a_record_from_before_head_dropout_merges_only_where_it_ran_the_same(tmp_path, head_init, merges):
    """A record without ``head_dropout`` ran with the model's own head dropout: that is a new plain fine-tune's
    ``None``, but not a new LP-FT run's 0 (LP-FT used to keep the dropout on)."""
    from hadna.eval.plan import ProtocolConfig

    a, b = _split_run({"encoder_sha256": "a" * 64}, PRETRAINED)
    new = ProtocolConfig(head_init=head_init).finetune_config(1e-3, 32, 5)
    b.config["effective"] = {"seeds": [3], "finetune": dataclasses.asdict(new)}
    a.config["effective"] = {"seeds": [1, 2], "finetune": {k: v for k, v in dataclasses.asdict(new).items()
                                                          if k != "head_dropout"}}
    a.config["protocol"]["head_init"] = b.config["protocol"]["head_init"] = head_init
    a.save(tmp_path / "a.json")
    b.save(tmp_path / "b.json")
    if merges:
        assert load_records([tmp_path])[0].done_seeds == [1, 2, 3]
    else:
        with pytest.raises(DataError, match="as run, finetune"):
            load_records([tmp_path])


def test_a_seed_recorded_twice_in_one_file_is_an_error(tmp_path):
    rec = record("H3", values=[0.5, 0.6])
    data = rec.to_dict()
    data["results"][1]["seed"] = 1
    (tmp_path / "r.json").write_text(json.dumps(data))
    with pytest.raises(DataError, match="seed 1 recorded more than once"):
        load_records([tmp_path])


PUBLISHED = """benchmark,task,metric,model,params,value,source
genomic_benchmarks,human_nontata_promoters,accuracy,Caduceus-PS,470k,0.945,Caduceus paper Table 1
nucleotide_transformer,H3,mcc,Caduceus-PS,1.9M,0.799,Caduceus paper Table 2
nucleotide_transformer,H3,mcc,NTv2-500M,500M,0.784,NT paper
nucleotide_transformer,H3,f1,Other,1M,0.99,wrong metric
genomic_benchmarks,MEAN8,accuracy,HAD,1.1M,0.875,HAD paper
"""


def test_published_columns_with_sources(tmp_path):
    (tmp_path / "pub.csv").write_text(PUBLISHED)
    published = load_published(tmp_path / "pub.csv")
    recs = [record("human_nontata_promoters"), record("H3"), record("gue_emp_H3")]
    table = build_table(recs, published)
    assert table.published_models == ["Caduceus-PS", "NTv2-500M"]  # "Other" matches no row's metric
    md = to_markdown(table)
    assert "Caduceus-PS (published)" in md.splitlines()[0]
    assert "0.945 [1]" in md and "0.799 [2]" in md and "0.784 [3]" in md
    assert "[1] Caduceus paper Table 1" in md and "[3] NT paper" in md
    assert "not re-run here" in md
    gue_line = next(line for line in md.splitlines() if line.startswith("| gue_emp_H3 "))
    assert gue_line.endswith("| — | — |")  # GUE stand-ins never get published NT numbers
    assert "not Nucleotide Transformer benchmark numbers" in md
    rows = {r["task"]: r for r in csv.DictReader(io.StringIO(to_csv(table)))}
    assert rows["H3"]["Caduceus-PS (published)"] == "0.799000"
    assert rows["H3"]["Caduceus-PS (published) source"] == "Caduceus paper Table 2"
    assert rows["gue_emp_H3"]["NTv2-500M (published)"] == ""


def test_mean8_row_and_published_mean(tmp_path):
    (tmp_path / "pub.csv").write_text(PUBLISHED)
    gb = list_tasks("genomic_benchmarks")
    recs = [record(t.name, values=[0.8 + 0.01 * i, 0.82 + 0.01 * i]) for i, t in enumerate(gb)]
    recs.append(record(gb[0].name, "cnn", "finetune", values=[0.7]))  # cnn misses 7 tasks: no mean
    table = build_table(recs, load_published(tmp_path / "pub.csv"), published_models=["HAD", "Caduceus-PS"])
    assert table.rows[-1].task == "MEAN8" and table.rows[-1].is_mean
    mean_cell = table.cells[("MEAN8", ("hadna", "finetune"))]
    assert mean_cell.mean == pytest.approx(0.81 + 0.01 * 3.5)
    assert ("MEAN8", ("cnn", "finetune")) not in table.cells
    md = to_markdown(table)
    assert "| **MEAN8** | accuracy | 0.845 | — | 0.875 [" in md
    assert "HAD paper" in md
    # Caduceus-PS has only one GB task in this CSV: no derived mean
    assert ("MEAN8", "Caduceus-PS") not in table.published


def test_derived_published_mean_is_marked(tmp_path):
    gb = list_tasks("genomic_benchmarks")
    lines = ["benchmark,task,metric,model,params,value,source"] + [
        f"genomic_benchmarks,{t.name},accuracy,CNN,264k,{0.7 + 0.01 * i:.2f},GB paper" for i, t in enumerate(gb)]
    (tmp_path / "pub.csv").write_text("\n".join(lines) + "\n")
    recs = [record(t.name, values=[0.8, 0.9]) for t in gb]
    md = to_markdown(build_table(recs, load_published(tmp_path / "pub.csv")))
    assert f"| {0.735:.3f}* |" in md and "computed here as the mean of the published per-task values" in md


@pytest.mark.parametrize("text,match", [
    ("benchmark,task,model,value\n", r"missing column\(s\) \['metric', 'params', 'source'\].*columns found"),
    ("benchmark,task,metric,model,params,value,source\ngenomic_benchmarks,t,accuracy,M,1,abc,s\n",
     r"line 2: value 'abc' is not a number"),
], ids=["columns", "value"])
def test_bad_published_csv(tmp_path, text, match):
    (tmp_path / "pub.csv").write_text(text)
    with pytest.raises(DataError, match=match):
        load_published(tmp_path / "pub.csv")


def test_unknown_published_model(tmp_path):
    (tmp_path / "pub.csv").write_text(PUBLISHED)
    with pytest.raises(ConfigError, match=r"\['Nope'\] are not in the reference CSV"):
        build_table([record("H3")], load_published(tmp_path / "pub.csv"), published_models=["Nope"])


def test_conflicting_metrics_for_one_task():
    a = record("H3", "m1")
    b = record("H3", "m2")
    b.metric = "f1"
    for r in b.results:
        r.metrics["f1"] = 0.5
    with pytest.raises(DataError, match="disagree on the primary metric"):
        build_table([a, b])
    table = build_table([a, b], metric="accuracy")
    assert table.cells[("H3", ("m2", "finetune"))].mean == 0.5


def test_write_markdown(tmp_path):
    path = write_markdown(build_table([record("H3")]), tmp_path / "out" / "table.md")
    assert path.read_text().startswith("| task | metric | hadna / finetune: mean ± sd (n=5 seeds) |")


def test_group_summary_averages_task_means_per_group_and_metric():
    from hadna.eval.results import group_markdown, group_means

    recs = [record("gue_emp_H3", "a", values=[0.5, 0.7]), record("gue_emp_H4", "a", values=[0.8, 0.8]),
            record("gue_emp_H3", "b", values=[0.2, 0.4]),
            record("gue_prom_core_all", "a", values=[0.4]),
            record("human_enhancers_cohn_testcv", "a", values=[0.9]),      # accuracy: its own row
            record("H3", "a", values=[0.1])]                               # NT histone, MCC: joins GUE's
    recs[2].group = ""  # a record written before groups existed: the registry's group is used
    table = build_table(recs)
    groups = {(g, m): (tasks, cols) for g, m, tasks, cols in group_means(table)}
    assert set(groups) == {("histone", "mcc"), ("promoter", "mcc"), ("enhancer", "accuracy")}
    tasks, cols = groups[("histone", "mcc")]
    assert tasks == ["H3", "gue_emp_H3", "gue_emp_H4"]
    assert cols[("a", "finetune")] == pytest.approx([0.1, 0.6, 0.8]) and cols[("b", "finetune")] == pytest.approx([0.3])
    md = group_markdown(table)
    assert "| histone | mcc | 3 | 0.500 | 0.300 (1 of 3) |" in md
    assert "| enhancer | accuracy | 1 | 0.900 | — |" in md


def test_sign_test_p_known_values():
    from hadna.eval.results import sign_test_p

    assert sign_test_p(0, 0) == 1.0
    assert sign_test_p(3, 0) == pytest.approx(0.25)            # 2 * (1/8)
    assert sign_test_p(16, 2) == pytest.approx(2 * (1 + 18 + 153) / 2 ** 18)
    assert sign_test_p(2, 16) == sign_test_p(16, 2)
    assert sign_test_p(5, 5) == 1.0                            # capped: both tails overlap at the centre


def test_paired_comparisons_over_shared_tasks():
    from hadna.eval.results import comparisons_markdown, paired_comparisons

    recs = [record("gue_emp_H3", "a", "probe", values=[0.50, 0.70]),   # a - b = +0.2, a's sd 0.141: beyond
            record("gue_emp_H4", "a", "probe", values=[0.40, 0.42]),   # a - b = -0.09
            record("gue_emp_H3K4me1", "a", "probe", values=[0.30]),    # b lacks it: left out
            record("gue_emp_H3", "b", "probe", values=[0.40]),
            record("gue_emp_H4", "b", "probe", values=[0.50]),
            record("gue_emp_H3", "a", "finetune", values=[0.65, 0.66]),
            record("gue_emp_H3", "b", "finetune", values=[0.60, 0.61]),
            record("gue_emp_H3", "kmer", "probe", values=[0.55, 0.56]),
            record("gue_emp_H4", "kmer", "probe", values=[0.55]),
            record("gue_emp_H3", "b", "scratch", values=[0.45])]
    table = build_table(recs)
    (probe, ft) = paired_comparisons(table, "a", "b")           # mode with mode
    assert probe.a == ("a", "probe") and probe.b == ("b", "probe") and probe.metric == "mcc"
    assert probe.tasks == ("gue_emp_H3", "gue_emp_H4")
    assert probe.diffs == pytest.approx((0.2, -0.09)) and probe.mean_diff == pytest.approx(0.055)
    assert (probe.ahead, probe.behind, probe.ahead_beyond_sd) == (1, 1, 1) and probe.sign_p == 1.0
    assert ft.tasks == ("gue_emp_H3",) and ft.diffs == pytest.approx((0.05,)) and ft.ahead_beyond_sd == 1
    # a model against a single column: every mode of the model against it; <model>/<mode> picks one
    assert [(c.a, c.b) for c in paired_comparisons(table, "a", "kmer")] == [
        (("a", "probe"), ("kmer", "probe")), (("a", "finetune"), ("kmer", "probe"))]
    (only,) = paired_comparisons(table, "a/finetune", "kmer/probe")
    assert only.diffs == pytest.approx((0.655 - 0.555,))
    (scratch,) = paired_comparisons(table, "a/finetune", "b/scratch")   # every harness mode resolves
    assert scratch.b == ("b", "scratch") and scratch.diffs == pytest.approx((0.655 - 0.45,))
    md = comparisons_markdown([probe], table)
    assert "| a / probe − b / probe | mcc | 2 | +0.055 | 1 | 1 | 1 | 1 |" in md
    with pytest.raises(ConfigError, match="no column 'c'.*models: a, b, kmer"):
        paired_comparisons(table, "c", "b")
    with pytest.raises(ConfigError, match="same column"):
        paired_comparisons(table, "a/probe", "a/probe")


def test_report_cli_compare_section(tmp_path, capsys):
    from hadna.cli import main

    for rec in (record("gue_emp_H3", "HAD", "probe", values=[0.6, 0.62]),
                record("gue_emp_H3", "k-mer 1-6", "probe", values=[0.5, 0.52])):
        rec.save(tmp_path / f"{rec.model}.probe.json")
    out = tmp_path / "report.md"
    assert main(["report", str(tmp_path), "--compare", "HAD", "k-mer 1-6", "--out", str(out)]) == 0
    text = out.read_text()
    assert "## Paired comparisons" in text and "| HAD / probe − k-mer 1-6 / probe | mcc | 1 | +0.100 | 1 | 0 |" in text
    assert main(["report", str(tmp_path), "--compare", "HAD", "MLM"]) != 0
    assert "no column 'MLM'" in capsys.readouterr().err


def test_a_changed_protocol_says_unset_where_none_is_the_tasks_default():
    from hadna.eval.records import protocol_differences

    assert protocol_differences({"lr": None}, {"lr": 2e-3}, defaults={}) == ["lr: unset (the task's) -> 0.002"]
    assert protocol_differences({"grad_clip": None}, {"grad_clip": 1.0}, defaults={}) == ["grad_clip: None -> 1.0"]
