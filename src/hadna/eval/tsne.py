"""t-SNE maps of pooled embeddings, one panel per model, with silhouette scores.

For a labelled set of sequences (a stratified subsample of a task's test split, or of its data when
it has none) every model's frozen, pooled features are computed and mapped to 2-D with t-SNE
(openTSNE when it is installed, else scikit-learn's ``TSNE``; PCA initialisation, fixed seed,
perplexity ``min(30, (n - 1) / 3)``).

Two silhouette scores per panel (scikit-learn, Euclidean, labels = classes; -1..1, higher = classes
better separated), always reported with their space named:

* ``silhouette_2d``: on the 2-D t-SNE coordinates (what the picture shows; t-SNE distorts
  distances, so treat it as descriptive);
* ``silhouette_raw``: on the raw pooled embeddings ``[n, D]`` (no t-SNE involved).

Outputs in ``out_dir``: ``tsne.png`` (one scatter panel per model, coloured by class),
``tsne_coordinates.csv`` (model, index, label, class, x, y) and ``tsne.json`` (settings, models,
silhouettes).
"""

from __future__ import annotations

import csv
import json
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import DataError
from ..utils.io import atomic_path, atomic_write_json, atomic_write_text
from ..utils.logging import get_logger

log = get_logger("eval.tsne")


@dataclass
class TsnePanel:
    """One model's map: ``coords`` ``[n, 2]`` and its silhouettes."""

    model: str
    coords: np.ndarray
    silhouette_2d: float
    silhouette_raw: float
    info: dict[str, Any] = field(default_factory=dict)


def silhouette(x: np.ndarray, labels: np.ndarray) -> float:
    """Mean silhouette (Euclidean) of ``x`` ``[n, D]`` by ``labels``; NaN when undefined (one class)."""
    from sklearn.metrics import silhouette_score

    if len(np.unique(labels)) < 2 or len(labels) <= len(np.unique(labels)):
        return float("nan")
    return float(silhouette_score(x, labels, metric="euclidean"))


def tsne_2d(x: np.ndarray, seed: int = 0, perplexity: float | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """``x`` ``[n, D]`` -> (``[n, 2]`` t-SNE coordinates, settings used)."""
    n = x.shape[0]
    if n < 4:
        raise DataError(f"t-SNE needs at least 4 samples, got {n}")
    perp = float(perplexity) if perplexity is not None else float(min(30.0, (n - 1) / 3))
    if not 0 < perp < n:
        raise DataError(f"t-SNE perplexity must be in (0, {n}), got {perp}")
    x = np.asarray(x, dtype=np.float64)
    try:
        from openTSNE import TSNE as OpenTSNE  # optional, faster for large n

        emb = OpenTSNE(n_components=2, perplexity=perp, initialization="pca", random_state=seed, n_jobs=1).fit(x)
        return np.asarray(emb, dtype=np.float64), {"implementation": "openTSNE", "perplexity": perp, "seed": seed,
                                                   "init": "pca"}
    except ImportError:
        pass
    from sklearn.manifold import TSNE

    coords = TSNE(n_components=2, perplexity=perp, init="pca", random_state=seed, learning_rate="auto").fit_transform(x)
    return coords, {"implementation": "scikit-learn", "perplexity": perp, "seed": seed, "init": "pca"}


def make_panel(name: str, features: np.ndarray, labels: np.ndarray, seed: int = 0,
               perplexity: float | None = None) -> TsnePanel:
    """t-SNE + both silhouettes of one model's features ``[n, D]``."""
    coords, info = tsne_2d(features, seed, perplexity)
    return TsnePanel(name, coords, silhouette(coords, labels), silhouette(features, labels), info)


def plot_panels(panels: list[TsnePanel], labels: np.ndarray, class_names: Sequence[str], path: str | Path,
                title: str = "") -> Path:
    """One scatter panel per model, coloured by class; silhouettes in each panel's title."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(panels)
    fig, axes = plt.subplots(1, n, figsize=(4.6 * n, 4.6), squeeze=False)
    cmap = plt.get_cmap("tab10")
    for ax, panel in zip(axes[0], panels):
        for k, cname in enumerate(class_names):
            sel = labels == k
            if sel.any():
                ax.scatter(panel.coords[sel, 0], panel.coords[sel, 1], s=6, alpha=0.7, color=cmap(k % 10),
                           label=f"{cname} (n={int(sel.sum())})", linewidths=0)
        ax.set_title(f"{panel.model}\nsilhouette: 2-D {panel.silhouette_2d:.3f}, raw {panel.silhouette_raw:.3f}",
                     fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.legend(fontsize=7, markerscale=2, loc="best")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=130, format="png")
    plt.close(fig)
    return path


def write_outputs(panels: list[TsnePanel], labels: np.ndarray, class_names: Sequence[str], out_dir: str | Path,
                  meta: dict[str, Any]) -> dict[str, Path]:
    """PNG + coordinates CSV + JSON in ``out_dir``; returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    png = plot_panels(panels, labels, class_names, out / "tsne.png", title=meta.get("title", ""))
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["model", "index", "label", "class", "x", "y"])
    for p in panels:
        for i, (x, y) in enumerate(p.coords):
            w.writerow([p.model, i, int(labels[i]), class_names[int(labels[i])], f"{x:.6g}", f"{y:.6g}"])
    coords_csv = out / "tsne_coordinates.csv"
    atomic_write_text(coords_csv, buf.getvalue())
    summary = {**meta, "n": int(len(labels)), "class_names": list(class_names),
               "class_counts": np.bincount(labels, minlength=len(class_names)).tolist(),
               "silhouette_definitions": {
                   "silhouette_2d": "mean silhouette (Euclidean) on the 2-D t-SNE coordinates",
                   "silhouette_raw": "mean silhouette (Euclidean) on the raw pooled embeddings"},
               "panels": [{"model": p.model, "silhouette_2d": _num(p.silhouette_2d),
                           "silhouette_raw": _num(p.silhouette_raw), "tsne": p.info} for p in panels],
               "files": {"png": png.name, "coordinates": coords_csv.name}}
    js = out / "tsne.json"
    atomic_write_json(js, summary)
    return {"png": png, "csv": coords_csv, "json": js}


def _num(x: float) -> float | None:
    return None if np.isnan(x) else float(x)


def tsne_of_models(specs: list, data, out_dir: str | Path, *, split: str = "auto", max_samples: int = 1000,
                   seed: int = 0, perplexity: float | None = None, batch_size: int = 128, device=None,
                   pooling: str = "mean", echo=None) -> dict[str, Any]:
    """Embed a stratified subsample of one split of ``data`` with every model, t-SNE each, write the
    outputs (see :func:`write_outputs`) and return the JSON summary. ``specs``: :class:`ModelSpec` list."""
    from ..errors import ConfigError
    from .inference import embed_sequences
    from .models import load_eval_model
    from .plan import subsample

    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ConfigError(f"two models share a name in {names}; name them with NAME=SPEC")
    if max_samples < 4:
        raise ConfigError(f"max_samples must be >= 4, got {max_samples}")
    split_name = split if split != "auto" else ("test" if data.test is not None else "train")
    part = getattr(data, split_name)
    if part is None:
        raise ConfigError(f"task {data.name!r} has no {split_name} split")
    part = part.subset(subsample(part.labels, np.arange(len(part)), max_samples, seed))
    panels = []
    for spec in specs:
        model = load_eval_model(spec, data.num_classes, seed=0, device=device)
        feats, tp = embed_sequences(model, part.sequences, batch_size, desc=f"embedding ({spec.name})")
        panel = make_panel(spec.name, feats, part.labels, seed, perplexity)
        panel.info.update({"embed_seconds": tp.seconds, "embed_nt_per_s": tp.nt_per_s,
                           "encoder_parameters": model.encoder_parameters(), "dim": int(feats.shape[1])})
        panels.append(panel)
        if echo is not None:
            echo(f"{spec.name}: silhouette on 2-D t-SNE coordinates {panel.silhouette_2d:.4f}; "
                 f"on raw pooled embeddings ({feats.shape[1]}-d) {panel.silhouette_raw:.4f}")
    meta = {"task": data.name, "split": split_name, "subsample_seed": seed, "pooling": pooling,
            "models": [s.to_dict() for s in specs],
            "title": f"{data.name} ({split_name}, n={len(part)}): t-SNE of pooled embeddings"}
    files = write_outputs(panels, part.labels, data.class_names, out_dir, meta)
    if echo is not None:
        echo("wrote " + ", ".join(str(p) for p in files.values()))
    return json.loads(files["json"].read_text())
