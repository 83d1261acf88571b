"""The k-mer baseline: frequencies against a per-sequence count, spec parsing, and the probe protocol."""

from __future__ import annotations

import itertools
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hadna.errors import ConfigError
from hadna.eval.kmer import DEFAULT_KS, describe_ks, kmer_frequencies, num_features, parse_ks
from hadna.eval.models import load_eval_model, parse_model_spec
from hadna.eval.protocol import ProtocolConfig, run_protocol
from hadna.eval.runner import BenchmarkConfig, run_benchmark

from test_eval_protocol import make_task


def slow_frequencies(seq: str, k: int) -> np.ndarray:
    """The obvious twin: count every window of k upper-cased bases without N, in lexicographic order."""
    index = {"".join(p): i for i, p in enumerate(itertools.product("ACGT", repeat=k))}
    seq = seq.upper()
    counts = Counter(seq[i:i + k] for i in range(len(seq) - k + 1) if "N" not in seq[i:i + k])
    out = np.zeros(4 ** k)
    for kmer, c in counts.items():
        out[index[kmer]] = c
    return out / out.sum() if out.sum() else out


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text("ACGTNacgtn", min_size=0, max_size=40), min_size=1, max_size=6),
       st.sampled_from([(1,), (2,), (3,), (1, 2, 3), (2, 5), (6,)]))
def test_frequencies_match_the_per_sequence_count(seqs, ks):
    got = kmer_frequencies(seqs, ks)
    assert got.shape == (len(seqs), num_features(ks)) and got.dtype == np.float32
    for row, seq in enumerate(seqs):
        want = np.concatenate([slow_frequencies(seq, k) for k in ks])
        np.testing.assert_allclose(got[row], want, rtol=1e-6, atol=1e-7)  # k-mers never cross sequences


def test_known_counts_and_index_order():
    f = kmer_frequencies(["AAC", "TT"], (1, 2))
    np.testing.assert_allclose(f[0, :4], [2 / 3, 1 / 3, 0, 0])  # A C G T
    np.testing.assert_allclose(f[0, 4:], np.eye(16)[[0, 1]].sum(0) / 2)  # AA, AC
    np.testing.assert_allclose(f[1, 4:], np.eye(16)[15])  # TT is the last 2-mer
    assert kmer_frequencies([], (3,)).shape == (0, 64)


def test_spec_parsing_and_errors():
    assert parse_ks("") == DEFAULT_KS and parse_ks("4") == (4,) and parse_ks("3-5") == (3, 4, 5)
    assert parse_ks("2,4") == (2, 4) and describe_ks((2, 4)) == "2,4" and describe_ks((1, 2, 3)) == "1-3"
    spec = parse_model_spec("kmer")
    assert spec.kind == "kmer" and spec.name == "k-mer 1-6" and parse_ks(spec.target) == DEFAULT_KS
    assert parse_model_spec("floor=kmer:3").name == "floor"
    for bad in ("kmer:0", "kmer:9", "kmer:5-3", "kmer:x"):
        with pytest.raises(ConfigError, match="kmer"):
            parse_model_spec(bad)


def test_kmer_probe_learns_a_planted_motif_and_refuses_fine_tuning(tmp_path):
    data = make_task(tmp_path)  # class 1 carries GGGGGG in a G-free background
    spec = parse_model_spec("kmer:1-3")
    model = load_eval_model(spec, 2)
    assert model.hidden_size == 84 and model.encoder_parameters() == 0
    rec = run_protocol(data, spec, ProtocolConfig(mode="probe", seeds=[1]), tmp_path / "k.json")
    assert rec.results[0].metrics["accuracy"] >= 0.95  # G content alone separates the classes
    with pytest.raises(ConfigError, match="probe"):
        run_protocol(data, spec, ProtocolConfig(mode="finetune", seeds=[1]))


def test_benchmark_runs_the_kmer_row_as_a_probe_whatever_the_modes(tmp_path):
    make_task(tmp_path)
    task = tmp_path / "motif.yaml"
    task.write_text(f"name: motif\npath: {tmp_path / 'motif'}\nfiles: {{train: train.csv, test: test.csv}}\n")
    bench = BenchmarkConfig(tasks=[str(task)], models=["kmer:2"], modes=["finetune"], seeds=[1],
                            output_dir=str(tmp_path / "bench"))
    records, md = run_benchmark(bench)
    assert [(r.model, r.mode) for r in records] == [("k-mer 2", "probe")]
    assert "k-mer 2" in md.read_text()
