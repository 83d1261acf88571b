"""Fine-tuning, linear probe and the per-seed protocol on tiny synthetic tasks (had-tiny, CPU)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

import hadna.eval.protocol as protocol
from hadna.errors import ConfigError, DataError
from hadna.eval.finetune import EarlyStopping, FinetuneConfig, epoch_batches, evaluate, fine_tune, lr_lambda
from hadna.eval.loaders import Split, load_task
from hadna.eval.models import load_eval_model, parse_model_spec
from hadna.eval.protocol import ProtocolConfig, make_units, base_splits, plan_run, run_protocol
from hadna.eval.results import RunRecord, load_records
from hadna.eval.tasks import task_from_dict

MOTIF = "GGGGGG"


def planted(n: int, length: int, seed: int) -> pd.DataFrame:
    """Class 1 = a G-run planted at a random position in a G-free background; class 0 = background only."""
    rng = np.random.default_rng(seed)
    seqs, labels = [], []
    for i in range(n):
        s = rng.choice(list("ACT"), length)
        if i % 2:
            p = rng.integers(0, length - len(MOTIF) + 1)
            s[p:p + len(MOTIF)] = list(MOTIF)
        seqs.append("".join(s))
        labels.append(i % 2)
    return pd.DataFrame({"sequence": seqs, "label": labels})


def make_task(tmp_path, n_train=240, n_test=100, length=24, test=True, **spec):
    d = tmp_path / "motif"
    d.mkdir(exist_ok=True)
    planted(n_train, length, 1).to_csv(d / "train.csv", index=False)
    files = {"train": "train.csv"}
    if test:
        planted(n_test, length, 2).to_csv(d / "test.csv", index=False)
        files["test"] = "test.csv"
    return load_task(task_from_dict({"name": "motif", "path": str(d), "files": files, **spec}))


TINY = parse_model_spec("preset:had-tiny")
FAST = dict(lr=3e-3, batch_size=32, patience=None)


# ------------------------------------------------------------------------------------------------
# Pieces
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("lengths", [np.full(70, 30), np.arange(1, 71)], ids=["fixed-length", "variable-length"])
def test_epoch_batches_cover_every_index_once_and_are_deterministic(lengths):
    a = epoch_batches(lengths, 8, seed=3, epoch=1, bucket_batches=2)
    assert sorted(np.concatenate(a).tolist()) == list(range(70))
    assert all(len(b) <= 8 for b in a)
    again = epoch_batches(lengths, 8, seed=3, epoch=1, bucket_batches=2)
    assert all(np.array_equal(x, y) for x, y in zip(a, again))
    other = epoch_batches(lengths, 8, seed=3, epoch=2, bucket_batches=2)
    assert not all(np.array_equal(x, y) for x, y in zip(a, other))
    if lengths.min() != lengths.max():  # buckets: less padding than random batches
        def waste(bucket_batches: int) -> int:
            batches = epoch_batches(lengths, 8, seed=3, epoch=1, bucket_batches=bucket_batches)
            return sum(int(lengths[b].max() - lengths[b].min()) for b in batches)

        assert waste(100) <= 9 * 7 < waste(2) < waste(1)  # one window = globally sorted: range 7 per batch


def test_lr_schedules():
    cos = lr_lambda("cosine", warmup_steps=10, total_steps=110)
    assert cos(0) == pytest.approx(0.1) and cos(9) == pytest.approx(1.0)
    assert cos(60) == pytest.approx(0.5) and cos(110) == pytest.approx(0.0)
    lin = lr_lambda("linear", warmup_steps=0, total_steps=100)
    assert lin(0) == 1.0 and lin(50) == pytest.approx(0.5)
    assert lr_lambda("constant", 5, 100)(99) == 1.0


def test_early_stopping_keeps_the_best_snapshot_and_stops_after_patience():
    layer = nn.Linear(2, 1)
    stopper = EarlyStopping(patience=2)
    scores = [(0.5, -1.0), (0.7, -0.9), (0.7, -0.95), (0.6, -0.8)]  # best: epoch 2 (tie at 3 loses on loss)
    snapshots = []
    for epoch, score in enumerate(scores, start=1):
        with torch.no_grad():
            layer.weight.fill_(float(epoch))
        snapshots.append(layer.weight.detach().clone())
        stopper.step(epoch, score, lambda: {k: v.clone() for k, v in layer.state_dict().items()})
        if epoch < 4:
            assert not stopper.should_stop
    assert stopper.should_stop and stopper.best_epoch == 2
    assert torch.equal(stopper.best_state["weight"], snapshots[1])


def test_fine_tune_restores_the_best_epoch_not_the_last(tmp_path):
    # Controlled case: validation labels are the opposite of the training rule, so the more the model
    # learns, the worse validation gets; the earliest epoch must be kept and restored.
    data = make_task(tmp_path)
    train, test = data.train, data.test
    val = Split(test.sequences[:40], 1 - test.labels[:40])
    model = load_eval_model(TINY, 2, seed=1)
    cfg = FinetuneConfig(epochs=4, lr=3e-3, batch_size=32, patience=2)
    res = fine_tune(model, train, val, cfg, metric="accuracy", num_classes=2, seed=1)
    accs = [h["val"]["accuracy"] for h in res.history]
    assert res.best_epoch == 1 and accs[-1] < accs[0]
    assert res.stopped_early and res.epochs_run == 3  # patience 2 after the best epoch 1
    again = evaluate(model, val, 2)  # the model holds epoch 1's weights again
    assert again.loss == pytest.approx(res.history[0]["val_loss"], abs=1e-6)
    assert again.metrics["accuracy"] == res.history[0]["val"]["accuracy"]
    assert all(h["train_nt_per_s"] > 0 and h["train_seconds"] > 0 for h in res.history)


# ------------------------------------------------------------------------------------------------
# The protocol end to end
# ------------------------------------------------------------------------------------------------

def test_finetune_learns_planted_motif_and_probe_runs(tmp_path):
    data = make_task(tmp_path)
    out = tmp_path / "ft.json"
    rec = run_protocol(data, TINY, ProtocolConfig(mode="finetune", seeds=[1], epochs=3, **FAST), out)
    r = rec.results[0]
    assert r.metrics["accuracy"] >= 0.9, r.metrics
    assert set(r.metrics) == {"accuracy", "mcc", "f1", "precision", "recall", "auroc"}
    assert r.extra["n_train"] == 216 and r.extra["n_val"] == 24 and r.extra["n_test"] == 100
    assert r.nt_per_s > 0 and r.epochs_run == 3 and len(r.extra["grid"][0]["history"]) == 3
    assert RunRecord.load(out).results[0].metrics == r.metrics
    probe = run_protocol(data, TINY, ProtocolConfig(mode="probe", seeds=[1, 2]), tmp_path / "probe.json")
    assert [p.seed for p in probe.results] == [1, 2]
    assert all(0.0 <= p.metrics["accuracy"] <= 1.0 and "C" in p.extra for p in probe.results)
    assert probe.results[0].metrics["accuracy"] > 0.6  # a random G-blind encoder still sees G content


def test_test_set_is_evaluated_once_per_seed_with_the_selected_weights(tmp_path, monkeypatch):
    data = make_task(tmp_path, n_train=120, n_test=40)
    tuned: list[tuple[float, object, dict]] = []
    real_fine_tune, real_eval = protocol.fine_tune, protocol.evaluate_test

    def recording_fine_tune(model, *a, **kw):
        res = real_fine_tune(model, *a, **kw)
        tuned.append((res.score("accuracy"), res, model.state_dict()))
        return res

    tested: list[tuple[int, dict]] = []

    def recording_eval(model, split, *a, **kw):
        tested.append((len(split), model.state_dict()))
        assert split.sequences == data.test.sequences  # the test split, never validation
        return real_eval(model, split, *a, **kw)

    monkeypatch.setattr(protocol, "fine_tune", recording_fine_tune)
    monkeypatch.setattr(protocol, "evaluate_test", recording_eval)
    cfg = ProtocolConfig(seeds=[1, 2], epochs=2, lr_grid=[1e-4, 3e-3], batch_size=32, patience=None)
    rec = run_protocol(data, TINY, cfg)
    assert len(tuned) == 4 and len(tested) == 2  # 2 grid points per seed, one test evaluation per seed
    for s, (_, state) in enumerate(tested):
        grid = tuned[2 * s: 2 * s + 2]
        best = max(grid, key=lambda t: t[0])  # first of equal scores wins, as in the protocol
        assert all(torch.equal(state[k], best[2][k]) for k in state)
        assert rec.results[s].extra["lr"] == best[1].config["lr"]
        assert rec.results[s].val_metrics == best[1].val_metrics


def test_resume_skips_finished_seeds(tmp_path, monkeypatch):
    data = make_task(tmp_path, n_train=80, n_test=20)
    out = tmp_path / "run.json"
    calls: list[int] = []
    real = protocol.run_probe_unit

    def counting(model, cache, data_, cfg, unit, base, seed):
        if seed == 3 and not calls.count(-1):
            calls.append(-1)
            raise KeyboardInterrupt  # interrupted in the middle of the run
        calls.append(seed)
        return real(model, cache, data_, cfg, unit, base, seed)

    monkeypatch.setattr(protocol, "run_probe_unit", counting)
    with pytest.raises(KeyboardInterrupt):
        run_protocol(data, TINY, ProtocolConfig(mode="probe", seeds=[1, 2, 3]), out)
    saved = RunRecord.load(out)
    assert saved.done_seeds == [1, 2] and saved.remaining_seeds() == [3]
    rec = run_protocol(data, TINY, ProtocolConfig(mode="probe", seeds=[1, 2, 3]), out)
    assert calls == [1, 2, -1, 3] and rec.done_seeds == [1, 2, 3]
    assert [r.metrics for r in rec.results[:2]] == [r.metrics for r in saved.results]
    run_protocol(data, TINY, ProtocolConfig(mode="probe", seeds=[1, 2, 3]), out)  # nothing left to do
    assert calls == [1, 2, -1, 3]
    cls = parse_model_spec("preset:had-tiny", pooling="max")
    with pytest.raises(ConfigError, match="another model setting.*pooling: 'mean' -> 'max'"):
        run_protocol(data, cls, ProtocolConfig(mode="probe", seeds=[1, 2, 3, 4]), out)
    with pytest.raises(ConfigError, match="other settings.*probe_c_grid"):
        run_protocol(data, TINY, ProtocolConfig(mode="probe", seeds=[1, 2, 3], probe_c_grid=[1.0]), out)


def test_seeds_run_in_separate_files_report_as_one_run(tmp_path):
    """The lock allows one process per run JSON; seeds run in parallel go to separate files (or machines) and
    are merged when read: the same numbers as one run of all seeds, and never across other settings."""
    data = make_task(tmp_path, n_train=80, n_test=20)
    cfg = dict(mode="finetune", epochs=1, **FAST)
    whole = run_protocol(data, TINY, ProtocolConfig(seeds=[1, 2], **cfg), tmp_path / "whole" / "r.json")
    for s in (1, 2):
        run_protocol(data, TINY, ProtocolConfig(seeds=[s], **cfg), tmp_path / f"part{s}" / "r.json")
    [merged] = load_records([tmp_path / "part2", tmp_path / "part1"])
    assert merged.done_seeds == merged.seeds == [1, 2]
    assert [r.metrics for r in merged.results] == [r.metrics for r in whole.results]
    assert merged.aggregate().mean == whole.aggregate().mean
    assert "seeds 1, 2 merged from 2 run files" in merged.notes[-1]
    from hadna.eval.report import protocol_row
    from hadna.utils.logging import format_duration
    row = protocol_row(merged)  # compute time: the seeds' times summed, in the one duration format
    assert row["time (sum of seeds)"] == format_duration(sum(r.timings["total"] for r in merged.results))
    assert row["seeds"] == "2 of 2: [1, 2]"
    assert row["training"].endswith("cosine schedule")  # the default recipe: no options listed
    with pytest.raises(DataError, match="also in.*seed 1 in both"):
        load_records([tmp_path / "part1", tmp_path / "whole"])
    run_protocol(data, TINY, ProtocolConfig(seeds=[3], **{**cfg, "lr": 1e-3}), tmp_path / "part3" / "r.json")
    with pytest.raises(DataError, match=r"must not be averaged: lr: 0\.003 -> 0\.001"):
        load_records([tmp_path / "part1", tmp_path / "part3"])
    (tmp_path / "other").mkdir()
    other = make_task(tmp_path / "other", n_train=60, n_test=20)
    run_protocol(other, TINY, ProtocolConfig(seeds=[4], **cfg), tmp_path / "part4" / "r.json")
    with pytest.raises(DataError, match="task data: fingerprint"):
        load_records([tmp_path / "part1", tmp_path / "part4"])
    assert load_records([tmp_path / "part1", tmp_path / "part1" / "r.json"])[0].done_seeds == [1]  # read once


def test_seeds_added_to_a_run_must_start_from_its_weights(tmp_path):
    """A checkpoint retrained under the same path is refused before training, in both modes."""
    from hadna.models import HadConfig, HadModel

    data = make_task(tmp_path, n_train=60, n_test=20)
    path = tmp_path / "ckpt"
    for mode in ("probe", "finetune"):
        torch.manual_seed(7)
        HadModel(HadConfig.preset("had-tiny")).save_pretrained(path)
        spec = parse_model_spec(str(path), name="m")
        out = tmp_path / mode / "m.json"
        cfg = dict(mode=mode, epochs=1, **FAST) if mode == "finetune" else dict(mode=mode)
        first = run_protocol(data, spec, ProtocolConfig(seeds=[1], **cfg), out)
        assert len(first.config["model"]["encoder_sha256"]) == 64
        asked = []

        def digest(s):
            asked.append(s.name)
            return load_eval_model(s, 2, device="cpu").encoder_digest()

        more = ProtocolConfig(seeds=[1, 2], **cfg)
        assert plan_run(data, spec, more, out, weights_digest=digest).problem is None  # same weights: fine
        assert plan_run(data, spec, ProtocolConfig(seeds=[1], **cfg), out, weights_digest=digest).problem is None
        assert asked == ["m"]  # nothing left to add: not loaded
        torch.manual_seed(8)
        HadModel(HadConfig.preset("had-tiny")).save_pretrained(path)  # retrained in place
        assert plan_run(data, spec, more, out).problem is None  # without a digest the plan cannot tell
        planned = plan_run(data, spec, more, out, weights_digest=digest).problem  # the dry run can, before the run
        assert planned and "not those of the seeds already recorded" in planned
        with pytest.raises(ConfigError, match="not those of the seeds already recorded"):
            run_protocol(data, spec, more, out)
        assert RunRecord.load(out).done_seeds == [1]


def test_units_match_taskdata_splits_and_caps(tmp_path):
    data = make_task(tmp_path, n_train=200, n_test=100)
    cfg = ProtocolConfig(max_train_samples=50, max_test_samples=30)
    base, notes = base_splits(data, cfg)
    assert any("TEST SET CAPPED" in n for n in notes)
    full = make_units(data, ProtocolConfig(), 4, base)[0]
    tr, va = data.train_validation(4)
    assert base["train"].subset(full.train[1]).sequences == tr.sequences
    assert base["train"].subset(full.val[1]).sequences == va.sequences
    capped = [make_units(data, cfg, s, base)[0] for s in (1, 2)]
    for u in capped:
        assert len(u.train[1]) == 50 and len(u.test[1]) == 30
        assert np.bincount(data.train.labels[u.train[1]]).tolist() == [25, 25]  # stratified
    assert not np.array_equal(capped[0].train[1], capped[1].train[1])  # per-seed training subsample
    assert np.array_equal(capped[0].test[1], capped[1].test[1])  # one test subset for all seeds


@pytest.mark.parametrize("labels,n", [
    (np.array([0] * 90 + [1] * 10), 20),
    (np.array([0] * 90 + [1] * 10), 3),
    (np.array([0, 1, 2] * 10 + [2] * 5), 7),
    (np.array([0] * 50 + [1]), 2),
], ids=["imbalanced", "tiny-n", "three-classes", "singleton-class"])
def test_subsample_is_exact_stratified_and_deterministic(labels, n):
    idx = np.arange(len(labels))[::-1]  # any index order
    sub = protocol.subsample(labels, idx, n, seed=4)
    assert len(sub) == n and len(set(sub.tolist())) == n and set(sub.tolist()) <= set(idx.tolist())
    assert np.array_equal(sub, protocol.subsample(labels, idx, n, seed=4))
    counts = np.bincount(labels[sub], minlength=labels.max() + 1)
    expected = n * np.bincount(labels) / len(labels)
    assert np.all(np.abs(counts - expected) <= 1.0)  # proportional (largest remainder)
    if n >= len(np.unique(labels)):
        assert np.all(counts >= 1)
    assert protocol.subsample(labels, idx, None, 0) is idx and protocol.subsample(labels, idx, 10**6, 0) is idx


def test_cross_validated_task(tmp_path):
    data = make_task(tmp_path, n_train=120, test=False, no_test="kfold", cv_folds=3)
    assert data.needs_cross_validation
    rec = run_protocol(data, TINY, ProtocolConfig(mode="probe", seeds=[5], max_train_samples=90))
    r = rec.results[0]
    folds = r.extra["folds"]
    assert len(folds) == 3 and sum(f["n_test"] for f in folds) == 90
    assert r.metrics["accuracy"] == pytest.approx(np.mean([f["test"]["accuracy"] for f in folds]))
    ref = data.train.subset(np.arange(len(data.train)))  # the folds are TaskData.folds over the pool
    assert rec.config["effective"]["evaluation"] == "cv"
    assert any("3-fold stratified cross-validation" in n for n in rec.notes)
    assert any("pool capped" in n for n in rec.notes) and len(ref) == 120


def test_rc_options_run_and_rc_averaging_is_strand_symmetric(tmp_path):
    data = make_task(tmp_path, n_train=60, n_test=20)
    rec = run_protocol(data, TINY, ProtocolConfig(seeds=[1], epochs=1, rc_augment=True, rc_test=True, **FAST))
    assert rec.results[0].metrics["accuracy"] >= 0.0
    from hadna.eval.inference import predict_logits
    from hadna.tokenization import reverse_complement

    model = load_eval_model(TINY, 2, seed=0)
    seqs = data.test.sequences[:8]
    a, _ = predict_logits(model, seqs, rc_average=True)
    b, _ = predict_logits(model, [reverse_complement(s) for s in seqs], rc_average=True)
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_protocol_config_errors():
    with pytest.raises(ConfigError, match="either lr"):
        ProtocolConfig(lr=1e-3, lr_grid=[1e-3]).validate()
    with pytest.raises(ConfigError, match="mode"):
        ProtocolConfig(mode="zero-shot").validate()  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="patience"):
        ProtocolConfig(patience=0).validate()
    with pytest.raises(ConfigError, match="rc_augment / rc_test apply to fine-tuning"):
        ProtocolConfig(mode="probe", rc_test=True).validate()


# ------------------------------------------------------------------------------------------------
# Fine-tuning recipes: a head initialised from the probe (LP-FT), encoder learning-rate ratio
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("num_classes", [2, 3])
def test_probe_folded_into_a_linear_map_gives_the_probes_probabilities(num_classes):
    from hadna.eval.probe import fit_probe, probe_as_linear

    rng = np.random.default_rng(0)
    x = rng.normal(3.0, [0.5, 2.0, 10.0, 1.0], size=(120, 4)) + 5.0  # offsets and scales the probe standardises
    score = x[:, 0] * 2 + x[:, 1] + rng.normal(0, 1, 120)
    y = (score > np.median(score)).astype(int) if num_classes == 2 else np.arange(120) % 3
    fit = fit_probe(x[:90], y[:90], x[90:], y[90:], metric="accuracy", num_classes=num_classes)
    w, b = probe_as_linear(fit, num_classes)
    probs = torch.softmax(torch.from_numpy(x @ w.T.astype(np.float64) + b), dim=-1).numpy()
    np.testing.assert_allclose(probs, fit.predict_proba(x), atol=1e-5)


def test_head_init_probe_starts_from_the_probe_and_ratio_zero_freezes_the_encoder(tmp_path):
    data = make_task(tmp_path, n_train=120, n_test=40)
    train, val = data.train.subset(np.arange(100)), data.train.subset(np.arange(100, 120))
    model = load_eval_model(TINY, 2, seed=1)
    encoder = {k: v.clone() for k, v in model.module.had.state_dict().items()}
    cfg = FinetuneConfig(epochs=1, lr=1e-9, batch_size=32, patience=None, head_init="probe", backbone_lr_ratio=0.0,
                         warmup_ratio=0.0, schedule="constant")
    res = fine_tune(model, train, val, cfg, metric="accuracy", num_classes=2, seed=1)
    # lr ~ 0: the model after one epoch is the probe itself, so validation scores agree with the probe's.
    assert res.head_probe is not None and res.val_metrics["accuracy"] == pytest.approx(res.head_probe["val"]["accuracy"])
    for k, v in model.module.had.state_dict().items():  # ratio 0: the encoder is not in the optimiser
        assert torch.equal(v, encoder[k]), k
    assert res.weight_change["had.layers.0"] == 0.0 and res.weight_change["had.embeddings"] == 0.0
    # the frozen encoder collected no gradients (they would shrink the head's clipped updates) and is trainable again
    assert all(p.grad is None and p.requires_grad for p in model.module.had.parameters())


def _train_loss_of_the_probe_head(model, split) -> float:
    """Cross-entropy on ``split`` of the model as it stands, in eval mode (no dropout anywhere)."""
    model.eval()
    with torch.no_grad():
        logits = model.logits(split.sequences)
    return float(nn.functional.cross_entropy(logits.float(), torch.from_numpy(split.labels).long()))


@pytest.mark.parametrize("head_dropout", [None, 0.5])
def test_lp_ft_starts_training_from_the_probe_unless_head_dropout_is_set(tmp_path, head_dropout):
    """LP-FT's first epoch trains from the probe: with lr ~ 0 its training loss is the probe's own loss on the
    training split. Dropout on the head's input (hadna's classifier_dropout 0.1) is off by default for LP-FT;
    asked for explicitly (0.5 here), it perturbs the probe and the training loss rises above it."""
    data = make_task(tmp_path, n_train=120, n_test=40)
    train, val = data.train.subset(np.arange(100)), data.train.subset(np.arange(100, 120))
    model = load_eval_model(TINY, 2, seed=1)
    assert model.module.dropout.p == pytest.approx(0.1)
    cfg = FinetuneConfig(epochs=1, lr=1e-9, batch_size=32, patience=None, head_init="probe", warmup_ratio=0.0,
                         schedule="constant", head_dropout=head_dropout, probe_c_grid=[0.01])  # a loss well above 0
    assert cfg.head_dropout == (0.0 if head_dropout is None else head_dropout)
    res = fine_tune(model, train, val, cfg, metric="accuracy", num_classes=2, seed=1)
    probe_loss = _train_loss_of_the_probe_head(model, train)  # lr ~ 0: the weights are still the probe's
    assert model.module.dropout.p == cfg.head_dropout and model.module.config.classifier_dropout == cfg.head_dropout
    assert res.config["head_dropout"] == cfg.head_dropout
    if head_dropout is None:
        assert probe_loss > 0.05 and res.history[0]["train_loss"] == pytest.approx(probe_loss, rel=1e-5)
    else:
        assert res.history[0]["train_loss"] > probe_loss * 1.01


def test_head_dropout_defaults_and_checks(tmp_path):
    from hadna.eval.finetune import _compat

    assert FinetuneConfig().head_dropout is None and FinetuneConfig(head_init="probe").head_dropout == 0.0
    assert ProtocolConfig(head_init="probe").finetune_config(1e-3, 8).head_dropout == 0.0
    assert ProtocolConfig(head_dropout=0.3).finetune_config(1e-3, 8).head_dropout == 0.3
    data = make_task(tmp_path, n_train=60, n_test=20)
    ran = ProtocolConfig(head_init="probe").resolve(data)["finetune"]
    assert ran["head_dropout"] == 0.0  # the record says what ran, so older LP-FT runs (dropout on) do not merge
    assert ProtocolConfig().resolve(data)["finetune"]["head_dropout"] is None
    for bad in (-0.1, 1.0):
        with pytest.raises(ConfigError, match="head_dropout"):
            ProtocolConfig(head_dropout=bad).validate()
    # an epoch checkpoint written before the setting existed (no key) still matches a run at its old default
    model = load_eval_model(TINY, 2, seed=1)
    train, val = data.train.subset(np.arange(40)), data.train.subset(np.arange(40, 60))
    now = {**dataclasses.asdict(FinetuneConfig()), "micro_batch_nt": None}
    before = {k: v for k, v in now.items() if k != "head_dropout"}
    assert _compat(model, train, val, now, 1, "mcc", 2) == _compat(model, train, val, before, 1, "mcc", 2)
    assert _compat(model, train, val, {**now, "head_dropout": 0.0}, 1, "mcc", 2) != \
        _compat(model, train, val, before, 1, "mcc", 2)


def test_an_lp_ft_record_from_before_head_dropout_is_not_resumed(tmp_path):
    """LP-FT used to train with the head's dropout on; its seeds must not be averaged with LP-FT seeds that
    ran without it, although the protocol settings (``head_dropout`` absent = None) read the same."""
    data = make_task(tmp_path, n_train=60, n_test=20)
    out = tmp_path / "lpft.json"
    cfg = dict(mode="finetune", epochs=1, head_init="probe", **FAST)
    first = run_protocol(data, TINY, ProtocolConfig(seeds=[1], **cfg), out)
    from hadna.eval.report import protocol_row
    assert protocol_row(first)["training"].endswith("schedule, head from the probe (LP-FT), head dropout 0")
    rec = json.loads(out.read_text())
    del rec["config"]["protocol"]["head_dropout"], rec["config"]["effective"]["finetune"]["head_dropout"]
    out.write_text(json.dumps(rec))  # as a record written before the setting existed
    with pytest.raises(ConfigError, match="as run, finetune.*head_dropout"):
        run_protocol(data, TINY, ProtocolConfig(seeds=[1, 2], **cfg), out)
    assert "head_dropout" in plan_run(data, TINY, ProtocolConfig(seeds=[1, 2], **cfg), out).problem


def test_a_record_of_the_old_custom_task_grid_is_refused_naming_the_grid(tmp_path):
    """Tasks of your own used to fine-tune over the dataclass grid; their records are refused, naming the
    settings inside the fine-tuning protocol that differ and why."""
    data = make_task(tmp_path, n_train=60, n_test=20)
    out = tmp_path / "grid.json"
    cfg = dict(mode="finetune", epochs=1, patience=None)
    run_protocol(data, TINY, ProtocolConfig(seeds=[1], **cfg), out)
    rec = json.loads(out.read_text())
    assert (rec["config"]["effective"]["finetune"]["lr_grid"],
            rec["config"]["effective"]["finetune"]["batch_size_grid"]) == ([1e-3], [32])
    rec["config"]["effective"]["finetune"].update(lr_grid=[1e-3, 2e-3], batch_size_grid=[128, 256])
    out.write_text(json.dumps(rec))  # as recorded before the custom defaults changed
    with pytest.raises(ConfigError, match=r"as run, finetune\.batch_size_grid: \[128, 256\] -> \[32\]; "
                                          r"as run, finetune\.lr_grid: \[0\.001, 0\.002\] -> \[0\.001\]\).*"
                                          r"a task of your own recorded before"):
        run_protocol(data, TINY, ProtocolConfig(seeds=[1, 2], **cfg), out)


def test_set_head_dropout_needs_a_head_hadna_knows(tmp_path):
    from hadna.eval.models import KmerEvalModel

    model = load_eval_model(TINY, 2, seed=1)
    model.set_head_dropout(0.25)
    assert model.module.dropout.p == 0.25
    with pytest.raises(ConfigError, match=r"\[0, 1\)"):
        model.set_head_dropout(1.0)
    kmer = load_eval_model(parse_model_spec("kmer"), 2, seed=1)
    assert isinstance(kmer, KmerEvalModel)
    with pytest.raises(ConfigError, match="cannot set the dropout"):
        kmer.set_head_dropout(0.0)


def test_backbone_lr_ratio_sets_the_encoders_learning_rate():
    from hadna.eval.finetune import param_groups

    model = load_eval_model(TINY, 2, seed=1)
    groups = param_groups(model, 1e-3, 0.1)
    assert [g["lr"] for g in groups] == [1e-3, pytest.approx(1e-4)]
    assert sum(p.numel() for g in groups for p in g["params"]) == model.num_parameters()
    assert len(param_groups(model, 1e-3, 0.0)) == 1
    with pytest.raises(ConfigError, match="backbone_lr_ratio"):
        ProtocolConfig(backbone_lr_ratio=-1).validate()
    with pytest.raises(ConfigError, match="head_init"):
        ProtocolConfig(head_init="zeros").validate()  # type: ignore[arg-type]


def test_weight_change_per_block():
    from hadna.eval.finetune import weight_change

    params = {"had.layers.0.w": nn.Parameter(torch.ones(4)), "had.layers.0.b": nn.Parameter(torch.zeros(4)),
              "had.norm.weight": nn.Parameter(torch.ones(2)), "classifier.bias": nn.Parameter(torch.zeros(2))}
    before = {k: v.detach().clone() for k, v in params.items()}
    after = dict(before, **{"had.layers.0.b": torch.full((4,), 1.0), "had.norm.weight": torch.full((2,), 2.0)})
    got = weight_change(before, after, params)
    assert got == {"had.layers.0": pytest.approx(1.0), "had.norm": pytest.approx(1.0)}  # classifier.bias: from 0


def test_the_probe_grid_does_not_block_resuming_a_plain_fine_tune(tmp_path):
    data = make_task(tmp_path, n_train=60, n_test=20)
    out = tmp_path / "ft.json"
    old = ProtocolConfig(mode="finetune", seeds=[1], epochs=1, probe_c_grid=[1e-3, 1.0], **FAST)
    run_protocol(data, TINY, old, out)
    rec = run_protocol(data, TINY, ProtocolConfig(mode="finetune", seeds=[1], epochs=1, **FAST), out)
    assert rec.done_seeds == [1]
    probe = tmp_path / "probe.json"
    run_protocol(data, TINY, ProtocolConfig(mode="probe", seeds=[1], probe_c_grid=[1e-3, 1.0]), probe)
    with pytest.raises(ConfigError, match="probe_c_grid.*--probe-c-grid 0.001,1"):  # for a probe it matters
        run_protocol(data, TINY, ProtocolConfig(mode="probe", seeds=[1, 2]), probe)


# ------------------------------------------------------------------------------------------------
# Epoch checkpoints: a killed fine-tune resumes at its last finished epoch, with the same result
# ------------------------------------------------------------------------------------------------

_TIMING_KEYS = ("train_seconds", "val_seconds", "train_nt_per_s")


def _history(res):
    return [{k: v for k, v in h.items() if k not in _TIMING_KEYS} for h in res.history]


def _kill_at_validation(monkeypatch, n: int) -> list[int]:
    """Make the n-th validation pass of fine-tuning raise KeyboardInterrupt (a kill after that epoch trained),
    once; the returned list counts the passes (clear it to count again)."""
    import hadna.eval.finetune as finetune

    calls: list[int] = []
    fired: list[bool] = []
    real = finetune.evaluate

    def counting(*a, **kw):
        calls.append(1)
        if len(calls) == n and not fired:
            fired.append(True)
            raise KeyboardInterrupt
        return real(*a, **kw)

    monkeypatch.setattr(finetune, "evaluate", counting)
    return calls


def test_a_killed_fine_tune_resumes_at_its_last_epoch_with_the_same_result(tmp_path, monkeypatch):
    data = make_task(tmp_path, n_train=120, n_test=40, length=31)
    train, val = data.train.subset(np.arange(96)), data.train.subset(np.arange(96, 120))
    # dropout (classifier 0.1) and RC augmentation: the resumed run must draw the same masks and flips
    cfg = FinetuneConfig(epochs=3, lr=3e-3, batch_size=32, patience=None, rc_augment=True)
    kw = dict(metric="mcc", num_classes=2, seed=4)
    reference = load_eval_model(TINY, 2, seed=1)
    ref = fine_tune(reference, train, val, cfg, **kw)

    ckpt = tmp_path / "ckpt"
    calls = _kill_at_validation(monkeypatch, 2)  # epoch 1 saved, epoch 2 trained and lost
    with pytest.raises(KeyboardInterrupt):
        fine_tune(load_eval_model(TINY, 2, seed=1), train, val, cfg, checkpoint_dir=ckpt, **kw)
    assert sorted(p.name for p in ckpt.iterdir()) == ["latest", "step-0000001"]

    calls.clear()
    resumed_model = load_eval_model(TINY, 2, seed=1)
    res = fine_tune(resumed_model, train, val, cfg, checkpoint_dir=ckpt, **kw)
    assert len(calls) == 2  # epochs 2 and 3 only
    assert _history(res) == _history(ref) and res.best_epoch == ref.best_epoch and res.epochs_run == 3
    assert res.weight_change == ref.weight_change and res.train.nucleotides == ref.train.nucleotides
    for k, v in reference.state_dict().items():  # bit for bit: same steps, same dropout masks
        assert torch.equal(resumed_model.state_dict()[k], v), k
    assert sorted(p.name for p in ckpt.iterdir()) == ["latest", "step-0000003"]  # one epoch kept at a time
    # a finished run keeps its best weights and its result, not the optimiser state
    assert sorted(p.name for p in (ckpt / "step-0000003").iterdir()) == ["best.safetensors", "progress.json",
                                                                        "state.json"]

    calls.clear()  # a finished run only loads its best weights back
    again_model = load_eval_model(TINY, 2, seed=1)
    again = fine_tune(again_model, train, val, cfg, checkpoint_dir=ckpt, **kw)
    assert calls == [] and _history(again) == _history(ref) and again.val_metrics == ref.val_metrics
    assert all(torch.equal(again_model.state_dict()[k], v) for k, v in reference.state_dict().items())

    with pytest.raises(ConfigError, match="checkpoint of another run.*start_weights"):  # other starting weights
        fine_tune(load_eval_model(TINY, 2, seed=2), train, val, cfg, checkpoint_dir=ckpt, **kw)
    with pytest.raises(ConfigError, match="checkpoint of another run.*recipe.lr"):
        fine_tune(load_eval_model(TINY, 2, seed=1), train, val, FinetuneConfig(**{**cfg.__dict__, "lr": 1e-3}),
                  checkpoint_dir=ckpt, **kw)


def test_resuming_ignores_the_validation_batch_size_and_restarts_after_a_device_change(tmp_path, monkeypatch):
    from hadna.eval.model_base import EvalModel

    data = make_task(tmp_path, n_train=60, n_test=20)
    train, val = data.train.subset(np.arange(48)), data.train.subset(np.arange(48, 60))
    cfg = FinetuneConfig(epochs=3, lr=3e-3, batch_size=16, patience=None)
    kw = dict(metric="mcc", num_classes=2, seed=1)

    def killed_at_epoch_2(ckpt):
        calls = _kill_at_validation(monkeypatch, 2)
        with pytest.raises(KeyboardInterrupt):
            fine_tune(load_eval_model(TINY, 2, seed=1), train, val, cfg, checkpoint_dir=ckpt, **kw)
        calls.clear()
        return calls

    calls = killed_at_epoch_2(tmp_path / "a")  # validation batch size: changes nothing, so the run resumes
    fine_tune(load_eval_model(TINY, 2, seed=1), train, val, FinetuneConfig(**{**cfg.__dict__, "eval_batch_size": 7}),
              checkpoint_dir=tmp_path / "a", **kw)
    assert len(calls) == 2
    calls = killed_at_epoch_2(tmp_path / "b")  # another micro-batch bound (CPU <-> GPU): other dropout masks
    monkeypatch.setattr(EvalModel, "batch_nt_cap", property(lambda self: 100))
    fine_tune(load_eval_model(TINY, 2, seed=1), train, val, cfg, checkpoint_dir=tmp_path / "b", **kw)
    assert len(calls) == 3  # started again from epoch 1


def test_a_damaged_epoch_checkpoint_starts_the_run_again(tmp_path, monkeypatch):
    data = make_task(tmp_path, n_train=60, n_test=20)
    train, val = data.train.subset(np.arange(48)), data.train.subset(np.arange(48, 60))
    cfg = FinetuneConfig(epochs=2, lr=3e-3, batch_size=16, patience=None)
    ckpt = tmp_path / "ckpt"
    calls = _kill_at_validation(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        fine_tune(load_eval_model(TINY, 2, seed=1), train, val, cfg, metric="mcc", num_classes=2, seed=1,
                  checkpoint_dir=ckpt)
    weights = ckpt / "step-0000001" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-8])  # truncated
    calls.clear()
    res = fine_tune(load_eval_model(TINY, 2, seed=1), train, val, cfg, metric="mcc", num_classes=2, seed=1,
                    checkpoint_dir=ckpt)
    assert len(calls) == 2 and res.epochs_run == 2  # both epochs trained again


def test_the_protocol_resumes_a_killed_seed_inside_its_grid_and_cleans_up(tmp_path, monkeypatch):
    from hadna.eval.records import load_records

    data = make_task(tmp_path, n_train=100, n_test=30)
    cfg = ProtocolConfig(mode="finetune", seeds=[1, 2], epochs=2, lr_grid=[1e-4, 3e-3], batch_size=32, patience=None)
    ref = run_protocol(data, TINY, cfg, tmp_path / "ref" / "m.finetune.json")
    out = tmp_path / "run" / "m.finetune.json"
    partial = protocol.partial_dir(out)
    # seed 1: 2 grid points x 2 epochs = validation passes 1-4; seed 2: its second grid point's epoch 2 is pass 8
    calls = _kill_at_validation(monkeypatch, 8)
    with pytest.raises(KeyboardInterrupt):
        run_protocol(data, TINY, cfg, out)
    assert RunRecord.load(out).done_seeds == [1]
    assert sorted(p.name for p in partial.iterdir()) == [".hadna.lock", "seed-2"]  # seed 1's went with its record
    assert sorted(p.name for p in (partial / "seed-2").iterdir()) == ["test-split-lr0.0001-bs32", "test-split-lr0.003-bs32"]
    assert [r.model for r in load_records([out.parent])] == [TINY.name]  # a report never reads checkpoint JSONs
    # the dry run's view of it: seed 1 done and timed, seed 2 to run, its two grid points at epochs 2 and 1
    before = sorted(str(p) for p in out.parent.rglob("*"))
    plan = protocol.plan_run(data, TINY, cfg, out)  # lr 1e-4 finished at its epoch cap: not listed
    assert (plan.done, plan.remaining, plan.checkpoints, plan.problem, plan.running) == ([1], [2], {2: [1]}, None, None)
    assert plan.seconds_per_seed == RunRecord.load(out).results[0].timings["total"] > 0
    assert plan.estimate_s == plan.seconds_per_seed
    assert plan.cost == protocol.estimate_cost(data, ProtocolConfig(**{**cfg.__dict__, "seeds": [2]}))
    assert plan.steps == protocol.fewest_steps(data, cfg) == 2 * 3  # 90 training sequences at batch 32
    other = protocol.plan_run(data, TINY, ProtocolConfig(**{**cfg.__dict__, "epochs": 3}), out)
    assert other.problem and "epochs: 2 -> 3" in other.problem and other.done == []
    fresh = protocol.plan_run(data, TINY, cfg, out, overwrite=True)
    assert (fresh.done, fresh.checkpoints, fresh.problem) == ([], {}, None)
    assert fresh.cost == protocol.estimate_cost(data, cfg)
    assert sorted(str(p) for p in out.parent.rglob("*")) == before  # planning wrote and removed nothing
    damaged = tmp_path / "damaged" / "m.finetune.json"
    damaged.parent.mkdir()
    damaged.write_text("{not json")
    assert "m.finetune.json: not valid JSON" in protocol.plan_run(data, TINY, cfg, damaged).problem  # a row, not a crash
    calls.clear()
    rec = run_protocol(data, TINY, cfg, out)
    assert len(calls) == 1  # the finished grid point is not trained again; the other resumes at epoch 2
    assert [r.metrics for r in rec.results] == [r.metrics for r in ref.results]
    assert [r.extra["grid"][1]["history"][1]["val"] for r in rec.results] == \
        [r.extra["grid"][1]["history"][1]["val"] for r in ref.results]
    assert not partial.exists()
    t = rec.results[1].timings  # seed 2's total counts the epochs trained before the kill
    assert 0 < t["restored"] < t["train"] + t["validation"] <= t["total"]
    assert "restored" not in rec.results[0].timings and "restored" not in ref.results[1].timings
    # a run killed between saving a seed and deleting its checkpoints: the next run deletes them
    (partial / "seed-2" / "x").mkdir(parents=True)
    assert run_protocol(data, TINY, cfg, out).done_seeds == [1, 2] and not partial.exists()


def test_a_second_process_cannot_run_the_same_run_at_the_same_time(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    from hadna.errors import DirectoryInUseError

    data = make_task(tmp_path, n_train=60, n_test=20)
    out = tmp_path / "run" / "m.probe.json"
    lock_dir, release = protocol.partial_dir(out), tmp_path / "release"
    hold = ("import sys, time\nfrom pathlib import Path\nfrom hadna.utils.io import lock_directory\n"
            "with lock_directory(sys.argv[1], remove_when_empty=True):\n    print('held', flush=True)\n"
            "    while not Path(sys.argv[2]).exists(): time.sleep(0.02)\n")
    src = str(Path(protocol.__file__).resolve().parents[2])
    holder = subprocess.Popen([sys.executable, "-c", hold, str(lock_dir), str(release)], stdout=subprocess.PIPE,
                              text=True, env={**os.environ, "PYTHONPATH": src})
    try:
        assert holder.stdout.readline().strip() == "held"
        assert protocol.plan_run(data, TINY, ProtocolConfig(mode="probe", seeds=[1]), out).running.startswith(
            f"hadna pid {holder.pid} ")
        with pytest.raises(DirectoryInUseError, match=f"run m.probe.json.*is in use by hadna pid {holder.pid} .*"
                                                      "another --output-dir: hadna report merges"):
            run_protocol(data, TINY, ProtocolConfig(mode="probe", seeds=[1]), out)
        assert not out.exists()
    finally:
        release.touch()
        holder.wait(timeout=60)
    assert not lock_dir.exists()  # the holder left nothing behind
    assert protocol.plan_run(data, TINY, ProtocolConfig(mode="probe", seeds=[1]), out).running is None
    assert not lock_dir.exists()  # asking who holds the lock creates nothing
    assert run_protocol(data, TINY, ProtocolConfig(mode="probe", seeds=[1]), out).done_seeds == [1]
    assert sorted(p.name for p in out.parent.iterdir()) == ["m.probe.json"]  # lock directory removed again


# ------------------------------------------------------------------------------------------------
# CPU fine-tuning: a large batch runs as micro-batches with gradient accumulation, the same step
# ------------------------------------------------------------------------------------------------

def test_micro_batches_split_a_large_batch_near_evenly_longest_first():
    from hadna.utils.batching import micro_batches

    lengths = np.array([300] * 30 + [310, 290])
    parts = micro_batches(np.arange(32), lengths, 4096)               # 32 x 310 = 9,920 nt -> 3 parts
    assert [len(p) for p in parts] == [11, 11, 10]
    assert parts[0][0] == 30 and sorted(np.concatenate(parts).tolist()) == list(range(32))
    assert [len(p) for p in micro_batches(np.arange(32), lengths, None)] == [32]      # no cap: one part
    assert [len(p) for p in micro_batches(np.arange(10), lengths, 4096)] == [10]     # fits: one part
    assert [len(p) for p in micro_batches(np.array([0, 1]), lengths, 100)] == [1, 1]  # never an empty part
    assert micro_batches(np.array([], dtype=np.int64), lengths, 4096) == []
    with pytest.raises(ConfigError, match="max_nt must be >= 1"):
        micro_batches(np.arange(3), lengths, 0)


def test_cpu_fine_tuning_micro_batches_give_the_full_batch_step(monkeypatch):
    """The accumulated micro-batch gradients equal the one-batch gradient: after two AdamW steps the weights
    agree to fp32 rounding (dropout off, since its masks are drawn per micro-batch)."""
    import hadna.eval.finetune as finetune_mod
    from hadna.eval.model_base import EvalModel

    rng = np.random.default_rng(0)
    seqs = ["".join(rng.choice(list("ACGT"), int(n))) for n in rng.integers(250, 300, 64)]
    split = Split(seqs, np.arange(64) % 2)
    cfg = FinetuneConfig(epochs=1, batch_size=32, lr=1e-3)
    parts_seen: list[int] = []
    real = finetune_mod.micro_batches

    def spy(idx, lengths, max_nt):
        parts = real(idx, lengths, max_nt)
        parts_seen.append(len(parts))
        return parts

    monkeypatch.setattr(finetune_mod, "micro_batches", spy)

    def trained():
        model = load_eval_model(parse_model_spec("preset:had-tiny"), 2, seed=0, device="cpu")
        for m in model.module.modules():
            if isinstance(m, nn.Dropout):
                m.p = 0.0
        res = fine_tune(model, split, split, cfg, metric="accuracy", num_classes=2, seed=1)
        return model.state_dict(), res

    micro, micro_res = trained()
    assert parts_seen and min(parts_seen) >= 2, parts_seen            # 32 x ~300 nt > 4,096: split
    assert micro_res.config["micro_batch_nt"] == 4096                 # recorded in the run's recipe
    monkeypatch.setattr(EvalModel, "batch_nt_cap", property(lambda self: None))
    parts_seen.clear()
    whole, whole_res = trained()
    assert set(parts_seen) == {1} and whole_res.config["micro_batch_nt"] is None
    # the same mean loss (a scale error would show here even where AdamW's normalisation hides it below)
    assert micro_res.history[0]["train_loss"] == pytest.approx(whole_res.history[0]["train_loss"], rel=1e-5)
    for name, w in whole.items():
        torch.testing.assert_close(micro[name], w, rtol=1e-4, atol=1e-5, msg=name)


def test_report_shows_how_each_fine_tune_trained(tmp_path):
    """The report's training-dynamics row reads the grid point chosen on validation, per seed or fold."""
    from hadna.eval.report import dynamics_markdown, dynamics_row

    data = make_task(tmp_path, n_train=120, test=False, no_test="kfold", cv_folds=2)
    cfg = ProtocolConfig(mode="finetune", seeds=[1], epochs=2, lr_grid=[1e-4, 3e-3], batch_size=32, patience=None)
    rec = run_protocol(data, TINY, cfg)
    folds = rec.results[0].extra["folds"]
    chosen = [next(g for g in f["grid"] if g["lr"] == f["lr"]) for f in folds]
    row = dynamics_row(rec, "accuracy")
    assert row["units"] == "2"
    assert row["best epoch"] == ", ".join(str(g["best_epoch"]) for g in chosen) + \
        f" (cap 2: {sum(g['best_epoch'] == 2 for g in chosen)} at cap)"
    last = np.mean([g["history"][-1]["train_loss"] for g in chosen])
    assert row["train loss, first → last epoch"].endswith(f"→ {last:.3f}")
    val = np.mean([g["val"]["accuracy"] for g in chosen])
    assert row["val accuracy (best epoch) / test accuracy"] == f"{val:.3f} / {rec.results[0].metrics['accuracy']:.3f}"
    # blocks keep their order, the shared "had." prefix is dropped, the head keeps its name
    assert row["weight change per block"].startswith("embeddings ") and "layers.0 " in row["weight change per block"]
    assert "classifier " in row["weight change per block"] and "had." not in row["weight change per block"]
    probe = run_protocol(data, TINY, ProtocolConfig(mode="probe", seeds=[1]))
    assert dynamics_row(probe) is None and dynamics_markdown([probe]) == ""
    md = dynamics_markdown([probe, rec], "accuracy")
    assert md.count("\n") == 3 and f"| motif | {rec.model} / finetune | 2 |" in md


def test_fewest_steps_counts_the_optimiser_steps_a_fine_tune_takes_and_short_runs_are_flagged(tmp_path, monkeypatch,
                                                                                               caplog):
    """fewest_steps is the shortest grid point's step count at the epoch cap (largest batch of the grid; the
    smallest fold of a cross-validated task), as the optimiser sees it; run_protocol warns under FEW_STEPS (199
    steps warn, 200 do not), once per run with seeds left, and a probe has no steps."""
    from hadna.eval.plan import FEW_STEPS, fewest_steps

    data = make_task(tmp_path, n_train=100, n_test=20)  # a stratified 90 / 10 train / validation split
    cfg = ProtocolConfig(mode="finetune", seeds=[1], epochs=2, lr=3e-3, batch_size_grid=[32, 16], patience=None)
    assert len(make_units(data, cfg, 1, base_splits(data, cfg)[0])[0].train[1]) == 90
    assert fewest_steps(data, cfg) == 2 * 3  # ceil(90 / 32) at the larger batch
    assert fewest_steps(data, dataclasses.replace(cfg, batch_size_grid=None, batch_size=16)) == 2 * 6
    assert fewest_steps(data, ProtocolConfig(mode="probe", seeds=[1])) is None
    (tmp_path / "cv").mkdir()
    cv = make_task(tmp_path / "cv", n_train=100, test=False, no_test="kfold", cv_folds=3)
    cv_cfg = dataclasses.replace(cfg, batch_size_grid=None, batch_size=1)
    folds = [len(u.train[1]) for u in make_units(cv, cv_cfg, 1, base_splits(cv, cv_cfg)[0])]
    assert len(folds) == 3 and fewest_steps(cv, cv_cfg) == 2 * min(folds)

    steps = []
    step = torch.optim.AdamW.step
    monkeypatch.setattr(torch.optim.AdamW, "step", lambda self, *a, **k: (steps.append(1), step(self, *a, **k))[1])
    caplog.set_level("WARNING", logger="hadna")
    out = tmp_path / "out" / "m.finetune.json"
    run_protocol(data, TINY, dataclasses.replace(cfg, batch_size_grid=None, batch_size=32), out)
    assert len(steps) == 6
    assert "the shortest fine-tuning run has at most 6 optimiser steps" in caplog.text
    assert "--mode probe" in caplog.text
    caplog.clear()
    run_protocol(data, TINY, dataclasses.replace(cfg, batch_size_grid=None, batch_size=32), out)  # all done
    assert len(steps) == 6 and "optimiser steps" not in caplog.text

    # the boundary, without training (the run stops where it would load the model): 199 steps warn, 200 do not
    import hadna.eval.protocol as proto

    monkeypatch.setattr(proto, "load_eval_model", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt))
    (tmp_path / "big").mkdir()
    big = make_task(tmp_path / "big", n_train=240, n_test=20)  # 216 training sequences after validation
    for n, warned in ((FEW_STEPS - 1, True), (FEW_STEPS, False)):
        caplog.clear()
        one = dataclasses.replace(cfg, epochs=1, batch_size_grid=None, batch_size=1, max_train_samples=n)
        assert fewest_steps(big, one) == n
        with pytest.raises(KeyboardInterrupt):
            run_protocol(big, TINY, one)
        assert ("optimiser steps" in caplog.text) == warned


def test_protocol_config_refuses_bad_grids():
    for bad in ({"lr_grid": [1e-3, 0.0]}, {"lr_grid": []}, {"batch_size_grid": [0]}, {"batch_size_grid": [32, -8]}):
        with pytest.raises(ConfigError, match="must be a non-empty list of values"):
            ProtocolConfig(mode="finetune", **bad).validate()
