"""Metrics against scikit-learn on known inputs, including degenerate cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn import metrics as skm

from hadna.eval.metrics import (PredictionAccumulator, accuracy, auroc, compute_metrics, confusion_matrix, f1,
                                mcc, precision, recall)


def sk_reference(y, p, k):
    avg = "binary" if k == 2 else "macro"
    labels = list(range(k))
    kw = dict(average=avg, zero_division=0) | ({} if k == 2 else {"labels": labels})
    return {"accuracy": skm.accuracy_score(y, p), "mcc": skm.matthews_corrcoef(y, p),
            "f1": skm.f1_score(y, p, **kw), "precision": skm.precision_score(y, p, **kw),
            "recall": skm.recall_score(y, p, **kw)}


@pytest.mark.parametrize("k,n,seed", [(2, 200, 0), (2, 37, 1), (3, 300, 2), (4, 50, 3)],
                         ids=["binary", "binary-small", "3-class", "4-class"])
def test_metrics_match_sklearn_on_random_inputs(k, n, seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    p = np.where(rng.random(n) < 0.6, y, rng.integers(0, k, n))  # correlated predictions
    ours = compute_metrics(y, p, num_classes=k)
    for name, ref in sk_reference(y, p, k).items():
        assert ours[name] == pytest.approx(ref, abs=1e-12), name


DEGENERATE = {
    "constant-prediction": (np.array([0, 1, 1, 0, 1]), np.array([1, 1, 1, 1, 1]), 2),
    "constant-prediction-3": (np.array([0, 1, 2, 0, 1, 2]), np.zeros(6, dtype=int), 3),
    "single-true-class": (np.array([1, 1, 1, 1]), np.array([1, 0, 1, 1]), 2),
    "positive-never-predicted": (np.array([0, 1, 1, 0]), np.array([0, 0, 0, 0]), 2),
    "class-absent-from-predictions": (np.array([0, 1, 2, 2, 1, 0]), np.array([0, 1, 1, 1, 1, 0]), 3),
    "class-absent-everywhere": (np.array([0, 1, 0, 1]), np.array([0, 1, 1, 1]), 3),
    "perfect": (np.array([0, 1, 2, 1]), np.array([0, 1, 2, 1]), 3),
    "all-wrong": (np.array([0, 1, 0, 1]), np.array([1, 0, 1, 0]), 2),
}


@pytest.mark.parametrize("case", list(DEGENERATE), ids=list(DEGENERATE))
def test_degenerate_cases_match_sklearn(case):
    y, p, k = DEGENERATE[case]
    ours = compute_metrics(y, p, num_classes=k)
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = sk_reference(y, p, k)
    for name, value in ref.items():
        assert not np.isnan(ours[name]), name
        assert ours[name] == pytest.approx(value, abs=1e-12), name


def test_constant_predictions_give_mcc_zero_not_nan():
    assert mcc([0, 1, 1, 0], [1, 1, 1, 1]) == 0.0
    assert mcc([1, 1, 1], [1, 1, 1]) == 0.0


def test_known_values():
    y, p = [1, 1, 0, 0, 1], [1, 0, 0, 1, 1]  # TP=2 FN=1 FP=1 TN=1
    assert accuracy(y, p) == pytest.approx(0.6)
    assert precision(y, p) == pytest.approx(2 / 3) and recall(y, p) == pytest.approx(2 / 3)
    assert f1(y, p) == pytest.approx(2 / 3)
    assert mcc(y, p) == pytest.approx((2 * 1 - 1 * 1) / np.sqrt(3 * 3 * 2 * 2))
    assert confusion_matrix(y, p, 2).tolist() == [[1, 1], [1, 2]]


@pytest.mark.parametrize("seed,ties", [(0, False), (1, True), (2, True)], ids=["continuous", "ties", "ties-2"])
def test_auroc_matches_sklearn(seed, ties):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 120)
    s = rng.random(120) + 0.5 * y
    if ties:
        s = np.round(s, 1)
    assert auroc(y, s) == pytest.approx(skm.roc_auc_score(y, s), abs=1e-12)
    probs = np.stack([1 - s / 2, s / 2], axis=1)
    assert auroc(y, probs) == pytest.approx(skm.roc_auc_score(y, s), abs=1e-12)
    logits = np.stack([np.zeros_like(s), np.log(s + 1e-3)], axis=1)
    assert auroc(y, logits) == pytest.approx(skm.roc_auc_score(y, s), abs=1e-12)


def test_auroc_undefined_for_one_class_and_binary_only():
    assert auroc([1, 1, 1], [0.2, 0.5, 0.9]) is None
    assert "auroc" not in compute_metrics([1, 1], [1, 0], probs=np.array([[0.1, 0.9], [0.6, 0.4]]))
    assert "auroc" not in compute_metrics([0, 1, 2], probs=np.eye(3))
    with pytest.raises(ValueError, match="binary"):
        auroc([0, 1, 2], np.eye(3))


def test_compute_metrics_from_probabilities():
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    out = compute_metrics([0, 1, 1, 1], probs=probs)
    assert out["accuracy"] == pytest.approx(0.75)
    assert out["auroc"] == pytest.approx(skm.roc_auc_score([0, 1, 1, 1], probs[:, 1]))


def test_accumulator_equals_whole_set_not_batch_average():
    rng = np.random.default_rng(5)
    logits = rng.normal(size=(64, 2))
    y = (logits[:, 1] + rng.normal(size=64) > logits[:, 0]).astype(int)
    acc = PredictionAccumulator(num_classes=2)
    batch_mcc = []
    for i in range(0, 64, 16):
        acc.update(torch.tensor(logits[i:i + 16]), torch.tensor(y[i:i + 16]))
        batch_mcc.append(mcc(y[i:i + 16], logits[i:i + 16].argmax(1)))
    whole = acc.compute()
    assert len(acc) == 64
    assert whole["mcc"] == pytest.approx(skm.matthews_corrcoef(y, logits.argmax(1)))
    assert whole["auroc"] == pytest.approx(skm.roc_auc_score(y, logits[:, 1] - logits[:, 0]))
    assert whole["mcc"] != pytest.approx(np.mean(batch_mcc))  # why per-batch averaging is wrong


def test_input_errors():
    with pytest.raises(ValueError, match="differ in length"):
        accuracy([0, 1], [0])
    with pytest.raises(ValueError, match="empty"):
        accuracy([], [])
    with pytest.raises(ValueError, match=r"0\.\.1"):
        compute_metrics([0, 2], [0, 1], num_classes=2)
    with pytest.raises(ValueError, match=r"scores \[B, 2\]"):
        PredictionAccumulator(2).update(np.zeros((3, 3)), [0, 1, 0])


# Expected values computed by hand (not by scikit-learn, which metrics.py wraps).


def test_multiclass_mcc_by_hand_from_a_confusion_matrix():
    C = np.array([[4, 1, 1],   # rows: true class, columns: predicted class
                  [0, 3, 2],
                  [1, 0, 2]])
    y = np.repeat(np.arange(3), C.sum(1))
    p = np.concatenate([np.repeat(np.arange(3), row) for row in C])
    assert confusion_matrix(y, p, 3).tolist() == C.tolist()
    # Gorodkin's R_K: (c*s - sum_k p_k t_k) / sqrt((s^2 - sum_k p_k^2) * (s^2 - sum_k t_k^2))
    s, c = C.sum(), np.trace(C)          # 14 samples, 9 correct
    t_k, p_k = C.sum(1), C.sum(0)        # true counts [6, 5, 3], predicted counts [5, 4, 5]
    expected = (c * s - p_k @ t_k) / np.sqrt((s**2 - p_k @ p_k) * (s**2 - t_k @ t_k))
    assert expected == pytest.approx(61 / np.sqrt(130 * 126))  # (126 - 65) / sqrt((196 - 66) * (196 - 70))
    assert mcc(y, p) == pytest.approx(expected)
    assert accuracy(y, p) == pytest.approx(9 / 14)


def test_macro_f1_with_a_class_never_predicted():
    y = [0, 0, 1, 1, 2, 2]
    p = [0, 0, 1, 0, 1, 1]  # class 2 is never predicted
    # class 0: TP 2, FP 1, FN 0 -> P 2/3, R 1,   F1 0.8
    # class 1: TP 1, FP 2, FN 1 -> P 1/3, R 1/2, F1 0.4
    # class 2: TP 0, FP 0, FN 2 -> P 0 (nothing predicted counts 0), R 0, F1 0
    assert f1(y, p) == pytest.approx((0.8 + 0.4 + 0) / 3)
    assert precision(y, p) == pytest.approx((2 / 3 + 1 / 3 + 0) / 3)
    assert recall(y, p) == pytest.approx((1 + 1 / 2 + 0) / 3)
    # num_classes=4: class 3 (neither true nor predicted) contributes 0 to the macro average too
    assert f1(y, p, num_classes=4) == pytest.approx((0.8 + 0.4 + 0 + 0) / 4)


def test_auroc_with_tied_scores_by_counting_pairs():
    y = [0, 0, 1, 1, 0, 1]
    s = [0.1, 0.5, 0.5, 0.9, 0.5, 0.2]
    # (positive, negative) pairs, a tie counting one half:
    #   0.5 vs (0.1, 0.5, 0.5): 1 + 1/2 + 1/2 = 2
    #   0.9 vs (0.1, 0.5, 0.5): 3
    #   0.2 vs (0.1, 0.5, 0.5): 1
    # -> 6 of 3 * 3 pairs
    pos = [v for v, t in zip(s, y) if t == 1]
    neg = [v for v, t in zip(s, y) if t == 0]
    counted = sum(1.0 if a > b else 0.5 if a == b else 0.0 for a in pos for b in neg) / (len(pos) * len(neg))
    assert counted == pytest.approx(6 / 9)
    assert auroc(y, s) == pytest.approx(6 / 9)
    logits = np.stack([np.zeros(6), np.array(s)], axis=1)  # [N, 2]: ranked by the margin, same ties
    assert auroc(y, logits) == pytest.approx(6 / 9)
