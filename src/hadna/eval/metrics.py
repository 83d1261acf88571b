"""Classification metrics, always computed on a whole evaluation set (never averaged per batch).

scikit-learn's implementations behind hadna's checks (1-D integer labels, a non-empty set, class ids in
``0..num_classes-1``) and conventions:

* ``accuracy``: top-1 accuracy.
* ``mcc``: Matthews correlation coefficient, multi-class form (Gorodkin 2004), as
  ``sklearn.metrics.matthews_corrcoef``; 0.0 (not NaN) when it is undefined (constant predictions or
  a single true class).
* ``f1``/``precision``/``recall``: binary (positive class = 1) when the task has 2 classes, macro
  average over all ``num_classes`` classes otherwise; a class with no predicted (or no true) samples
  contributes 0 (scikit-learn's ``zero_division=0``).
* ``auroc``: binary tasks only, from the probability of class 1 (tied scores counted half); omitted
  when the set has a single true class.

Averaging per batch would give different numbers (MCC and F1 are not means over samples), which is
why :class:`PredictionAccumulator` only collects predictions and computes at the end.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from sklearn import metrics as skm

METRIC_NAMES = ("accuracy", "mcc", "f1", "precision", "recall", "auroc")


def _to_numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):  # torch tensors, without importing torch here
        x = x.detach().float().cpu().numpy() if x.is_floating_point() else x.detach().cpu().numpy()
    return np.asarray(x)


def _labels(y: Any, name: str) -> np.ndarray:
    arr = _to_numpy(y)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if not np.all(np.mod(arr, 1) == 0):
            raise ValueError(f"{name} must hold integer class ids")
    return arr.astype(np.int64, copy=False)


def confusion_matrix(y_true: Any, y_pred: Any, num_classes: int | None = None) -> np.ndarray:
    """[K, K] counts, rows = true class, columns = predicted class."""
    t, p = _labels(y_true, "y_true"), _labels(y_pred, "y_pred")
    if t.shape != p.shape:
        raise ValueError(f"y_true {t.shape} and y_pred {p.shape} differ in length")
    if t.size == 0:
        raise ValueError("cannot compute metrics on an empty set")
    k = int(max(t.max(), p.max()) + 1) if num_classes is None else num_classes
    if t.min() < 0 or p.min() < 0 or t.max() >= k or p.max() >= k:
        raise ValueError(f"class ids must be in 0..{k - 1}")
    return np.bincount(t * k + p, minlength=k * k).reshape(k, k)


def _checked(y_true: Any, y_pred: Any, num_classes: int | None) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Validated labels and the class list (the checks of :func:`confusion_matrix`)."""
    k = confusion_matrix(y_true, y_pred, num_classes).shape[0]
    return _labels(y_true, "y_true"), _labels(y_pred, "y_pred"), list(range(k))


def accuracy(y_true: Any, y_pred: Any) -> float:
    t, p, _ = _checked(y_true, y_pred, None)
    return float(skm.accuracy_score(t, p))


def mcc(y_true: Any, y_pred: Any, num_classes: int | None = None) -> float:
    """Matthews correlation coefficient (multi-class); 0.0 when undefined."""
    t, p, _ = _checked(y_true, y_pred, num_classes)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = float(skm.matthews_corrcoef(t, p))
    return 0.0 if np.isnan(value) else value


def _averaged(score, y_true: Any, y_pred: Any, num_classes: int | None) -> float:
    t, p, labels = _checked(y_true, y_pred, num_classes)
    if len(labels) == 2:  # binary: the positive class
        return float(score(t, p, labels=labels, pos_label=1, average="binary", zero_division=0))
    return float(score(t, p, labels=labels, average="macro", zero_division=0))  # macro over all classes


def f1(y_true: Any, y_pred: Any, num_classes: int | None = None) -> float:
    """Binary F1 of class 1 for 2 classes, macro F1 otherwise."""
    return _averaged(skm.f1_score, y_true, y_pred, num_classes)


def precision(y_true: Any, y_pred: Any, num_classes: int | None = None) -> float:
    return _averaged(skm.precision_score, y_true, y_pred, num_classes)


def recall(y_true: Any, y_pred: Any, num_classes: int | None = None) -> float:
    return _averaged(skm.recall_score, y_true, y_pred, num_classes)


def auroc(y_true: Any, scores: Any) -> float | None:
    """Binary AUROC; None if the set has one class only.

    scores: [N] scores of class 1, or [N, 2] probabilities or logits (ranked by the margin
    ``scores[:, 1] - scores[:, 0]``, which orders samples as p(class 1) does for both).
    """
    t = _labels(y_true, "y_true")
    s = _to_numpy(scores).astype(np.float64)
    if s.ndim == 2:
        if s.shape[1] != 2:
            raise ValueError(f"AUROC is binary only; got scores of shape {s.shape}")
        s = s[:, 1] - s[:, 0]
    if s.shape != t.shape:
        raise ValueError(f"scores {s.shape} and y_true {t.shape} differ in length")
    if np.any((t != 0) & (t != 1)):
        raise ValueError("AUROC needs binary labels 0/1")
    if t.all() or not t.any():
        return None
    return float(skm.roc_auc_score(t, s))


def compute_metrics(y_true: Any, y_pred: Any = None, *, probs: Any = None,
                    num_classes: int | None = None) -> dict[str, float]:
    """All metrics of a whole set.

    y_true: [N] class ids. y_pred: [N] predicted ids; taken as ``argmax(probs)`` when omitted.
    probs: [N, K] class probabilities (or logits: argmax and AUROC ranks are the same), optional;
    needed for AUROC, which is reported for binary tasks only. num_classes: K of the task (decides
    binary vs macro averaging; inferred from the labels when omitted).
    """
    if y_pred is None:
        if probs is None:
            raise ValueError("give y_pred or probs")
        y_pred = _to_numpy(probs).argmax(axis=-1)
    k = num_classes
    if k is None and probs is not None:
        k = int(_to_numpy(probs).shape[-1])
    cm = confusion_matrix(y_true, y_pred, k)
    k = cm.shape[0]
    out = {
        "accuracy": float(np.trace(cm) / cm.sum()),
        "mcc": mcc(y_true, y_pred, k),
        "f1": f1(y_true, y_pred, k),
        "precision": precision(y_true, y_pred, k),
        "recall": recall(y_true, y_pred, k),
    }
    if probs is not None and k == 2:
        score = auroc(y_true, probs)
        if score is not None:
            out["auroc"] = score
    return out


class PredictionAccumulator:
    """Collect per-batch outputs, then compute metrics once on the whole set.

    ``update(scores [B, K], labels [B])`` with probabilities or logits (NumPy or torch);
    ``compute()`` -> :func:`compute_metrics` over everything seen.
    """

    def __init__(self, num_classes: int):
        self.num_classes = num_classes
        self._scores: list[np.ndarray] = []
        self._labels: list[np.ndarray] = []

    def update(self, scores: Any, labels: Any) -> None:
        s, y = _to_numpy(scores).astype(np.float64), _labels(labels, "labels")
        if s.ndim != 2 or s.shape[1] != self.num_classes or s.shape[0] != y.shape[0]:
            raise ValueError(f"expected scores [B, {self.num_classes}] and labels [B]; got {s.shape} and {y.shape}")
        self._scores.append(s)
        self._labels.append(y)

    def __len__(self) -> int:
        return sum(len(y) for y in self._labels)

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """(scores [N, K], labels [N]) seen so far."""
        if not self._labels:
            return np.zeros((0, self.num_classes)), np.zeros(0, dtype=np.int64)
        return np.concatenate(self._scores), np.concatenate(self._labels)

    def compute(self) -> dict[str, float]:
        scores, labels = self.arrays()
        return compute_metrics(labels, scores.argmax(axis=1), probs=scores, num_classes=self.num_classes)
