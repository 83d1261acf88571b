"""t-SNE maps and silhouette scores."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from hadna.cli import main
from hadna.eval.tsne import make_panel, silhouette, write_outputs


def blobs(n: int, dim: int, gap: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    x = rng.normal(size=(n, dim))
    x[:, 0] += gap * labels
    return x, labels


def test_separated_classes_have_a_high_silhouette_and_mixed_ones_do_not():
    x, y = blobs(120, 16, gap=25.0)
    panel = make_panel("separated", x, y, seed=0)
    assert panel.silhouette_raw > 0.7 and panel.silhouette_2d > 0.7
    assert panel.coords.shape == (120, 2) and panel.info["perplexity"] == 30.0
    x, y = blobs(120, 16, gap=0.0)
    assert abs(silhouette(x, y)) < 0.1
    assert np.isnan(silhouette(x, np.zeros(120, dtype=int)))  # one class: undefined


def test_tsne_is_deterministic_for_a_seed():
    x, y = blobs(60, 8, gap=5.0)
    a, b = make_panel("m", x, y, seed=3), make_panel("m", x, y, seed=3)
    np.testing.assert_array_equal(a.coords, b.coords)


def test_write_outputs(tmp_path):
    x, y = blobs(40, 8, gap=10.0)
    panels = [make_panel("a", x, y), make_panel("b", x[:, ::-1], y)]
    files = write_outputs(panels, y, ("neg", "pos"), tmp_path / "out", {"task": "blobs"})
    assert files["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    coords = pd.read_csv(files["csv"])
    assert len(coords) == 80 and set(coords["model"]) == {"a", "b"} and set(coords["class"]) == {"neg", "pos"}
    meta = json.loads(files["json"].read_text())
    assert [p["model"] for p in meta["panels"]] == ["a", "b"] and meta["class_counts"] == [20, 20]
    assert {"silhouette_2d", "silhouette_raw"} <= set(meta["panels"][0])


def test_tsne_command_with_two_models(tmp_path, capsys):
    rng = np.random.default_rng(0)
    # GC-rich vs AT-rich sequences: mean-pooled embeddings of any encoder separate them.
    seqs = ["".join(rng.choice(list("GC" if i % 2 else "AT"), 30)) for i in range(80)]
    pd.DataFrame({"sequence": seqs, "label": np.arange(80) % 2}).to_csv(tmp_path / "gc.csv", index=False)
    out = tmp_path / "tsne"
    rc = main(["tsne", "--model", "preset:had-tiny", "--model", "other=preset:had-tiny", "--train-file",
               str(tmp_path / "gc.csv"), "--max-samples", "60", "--out", str(out)])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "silhouette on 2-D t-SNE coordinates" in printed and "on raw pooled embeddings" in printed
    meta = json.loads((out / "tsne.json").read_text())
    assert [p["model"] for p in meta["panels"]] == ["had-tiny (random init)", "other"]
    assert meta["split"] == "test" and meta["n"] == 16  # the held-out 20% test part of the file
    assert all(p["silhouette_raw"] > 0.5 for p in meta["panels"])
    assert (out / "tsne.png").is_file() and (out / "tsne_coordinates.csv").is_file()
