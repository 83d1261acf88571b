"""GenomeStore cache, train/validation regions and the deterministic window sampler."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from hadna.config import load_config
from hadna.data import (GenomeDataConfig, GenomeStore, GenomeWindows, Regions, counter_hash, default_cache_dir,
                        plan_regions, reverse_complement_ids)
from hadna.data import windows as windows_mod
from hadna.errors import ConfigError, DataError
from hadna.vocab import ENCODE_LUT, N_ID


def random_seq(rng: np.random.Generator, n: int, alphabet: str = "ACGTacgt") -> str:
    return "".join(rng.choice(list(alphabet), n))


def write_fasta(path: Path, records: dict[str, str], gz: bool = False, width: int = 60) -> Path:
    text = "".join(f">{rid} desc\n" + "".join(seq[i:i + width] + "\n" for i in range(0, len(seq), width))
                   for rid, seq in records.items()).encode()
    path.write_bytes(gzip.compress(text) if gz else text)
    return path


def encode(seq: str) -> np.ndarray:
    return ENCODE_LUT[np.frombuffer(seq.encode(), np.uint8)]


def mask_of(regions: Regions, total: int) -> np.ndarray:
    m = np.zeros(total, dtype=bool)
    for s, e in zip(regions.start.tolist(), regions.end.tolist()):
        assert not m[s:e].any(), "regions overlap"
        m[s:e] = True
    return m


@pytest.fixture
def records() -> dict[str, str]:
    rng = np.random.default_rng(0)
    return {f"r{i}": random_seq(rng, n) for i, n in enumerate([3000, 50, 1200, 700, 4000, 2500])}


@pytest.fixture
def store(tmp_path, records) -> GenomeStore:
    return GenomeStore.from_fasta(write_fasta(tmp_path / "g.fa", records), cache_dir=tmp_path / "cache")


# ----------------------------------------------------------------------------- GenomeStore
def test_store_matches_fasta(tmp_path, records):
    items = list(records.items())
    f1 = write_fasta(tmp_path / "a.fa.gz", dict(items[:2]), gz=True)
    f2 = write_fasta(tmp_path / "b.fa", dict(items[2:]))
    st = GenomeStore.from_fasta([f1, f2], cache_dir=tmp_path / "cache", block_size=1000)
    assert st.names == list(records) and not st.cache_hit
    assert st.lengths.tolist() == [len(s) for s in records.values()]
    np.testing.assert_array_equal(st.tokens, np.concatenate([encode(s) for s in records.values()]))
    for rid, seq in records.items():
        np.testing.assert_array_equal(st.record_ids(rid), encode(seq))
        assert st.fetch(rid, 5, 25) == seq[5:25].upper()
    # the cache is a plain .npy, loadable memory-mapped without pickle
    (npy,) = (tmp_path / "cache").glob("*.npy")
    assert isinstance(np.load(npy, mmap_mode="r", allow_pickle=False), np.memmap)


def test_store_counts_n(tmp_path):
    st = GenomeStore.from_fasta(write_fasta(tmp_path / "g.fa", {"a": "ACNNnT", "b": "RYAC"}), tmp_path / "c")
    assert st.n_counts.tolist() == [3, 2]  # IUPAC codes become N


def test_cache_reuse_and_rebuild_on_change(tmp_path, records):
    fasta = write_fasta(tmp_path / "g.fa", records)
    cache = tmp_path / "cache"
    first = GenomeStore.from_fasta(fasta, cache)
    (npy,) = cache.glob("*.npy")
    stamp = npy.stat().st_mtime_ns
    again = GenomeStore.from_fasta(fasta, cache)
    assert again.cache_hit and npy.stat().st_mtime_ns == stamp
    np.testing.assert_array_equal(again.tokens, first.tokens)

    write_fasta(fasta, {"new": "GGGGCCCCAAAATTTT"})
    st = fasta.stat()
    os.utime(fasta, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # make sure the mtime moves
    changed = GenomeStore.from_fasta(fasta, cache)
    assert not changed.cache_hit and changed.names == ["new"] and changed.fetch("new") == "GGGGCCCCAAAATTTT"
    assert sorted(p.suffix for p in cache.iterdir()) == [".json", ".npy"]  # the slot was reused
    assert GenomeStore.from_fasta(fasta, cache, rebuild=True).names == ["new"]


def test_failed_build_leaves_nothing_behind(tmp_path, records):
    good = write_fasta(tmp_path / "good.fa", records)
    bad = write_fasta(tmp_path / "bad.fa", {"x": "ACGT" * 100 + "ACGJ"})
    cache = tmp_path / "cache"
    with pytest.raises(DataError, match="'J'"):
        GenomeStore.from_fasta([good, bad], cache, block_size=512)
    assert not cache.exists()  # the folder the build created goes too
    cache.mkdir()
    with pytest.raises(DataError, match="'J'"):
        GenomeStore.from_fasta([good, bad], cache, block_size=512)
    assert list(cache.iterdir()) == []  # a folder that was there stays, empty


@pytest.mark.parametrize("second", [{"chr2": "ACGT", "chr1": "GG"}, {"chr1": "GG"}], ids=["later", "first-record"])
def test_duplicate_ids_across_files(tmp_path, second):
    a = write_fasta(tmp_path / "a.fa", {"chr0": "AAAA", "chr1": "ACGT"})
    b = write_fasta(tmp_path / "b.fa", second)
    with pytest.raises(DataError, match=r"b\.fa: record id 'chr1' also occurs in .*a\.fa"):
        GenomeStore.from_fasta([a, b], tmp_path / "cache")


def test_duplicate_ids_numbered_within_and_across_files(tmp_path):
    a = write_fasta(tmp_path / "a.fa", {"x": "AAAA"})
    a.write_text(a.read_text() + ">x second\nCCCC\n>x third\nGGGG\n")
    b = write_fasta(tmp_path / "b.fa", {"x": "TTTT", "y": "ACGT"})
    st = GenomeStore.from_fasta([a, b], tmp_path / "cache", duplicate_ids="number")
    assert st.names == ["x", "x#2", "x#3", "x#4", "y"]
    assert [st.fetch(n) for n in st.names] == ["AAAA", "CCCC", "GGGG", "TTTT", "ACGT"]
    assert st.file_records == [3, 2]
    again = GenomeStore.from_fasta([a, b], tmp_path / "cache", duplicate_ids="number")
    assert again.cache_hit and again.names == st.names and again.file_records == [3, 2]
    with pytest.raises(DataError, match=r"a\.fa, line 3: duplicate record id 'x'.*duplicate_ids: number"):
        GenomeStore.from_fasta([a, b], tmp_path / "cache")  # the policy is part of the cache key


def test_val_per_file_holds_out_the_same_blocks_of_each_file(tmp_path):
    rng = np.random.default_rng(0)
    files = [write_fasta(tmp_path / f"sp{k}.fa", {f"sp{k}.b{i}": random_seq(rng, 300 + 10 * i + k) for i in range(10)})
             for k in range(3)]
    store = GenomeStore.from_fasta(files, tmp_path / "cache")
    assert store.file_records == [10, 10, 10]
    plan = plan_regions(store, window_length=100, val_fraction=0.2, val_per_file=True)
    held = sorted({store.names[r] for r in plan.val.record.tolist()})
    assert held == sorted(f"sp{k}.b{i}" for k in range(3) for i in (8, 9))
    assert not set(plan.train.record.tolist()) & set(plan.val.record.tolist())
    assert plan.val.total == sum(int(store.lengths[store.index[n]]) for n in held)
    with pytest.raises(ConfigError, match="val_per_file"):
        GenomeDataConfig(fasta=[str(files[0])], val_per_file=True, val_records=["sp0.b1"]).validate()
    half = plan_regions(store, window_length=100, val_fraction=0.25, val_per_file=True)  # 2.5 records: 3, not 2
    assert len(set(half.val.record.tolist())) == 9


def test_val_per_file_refuses_a_file_it_would_hold_nothing_out_of(tmp_path):
    rng = np.random.default_rng(1)
    files = [write_fasta(tmp_path / f"chr{k}.fa", {f"sp{k}.chr": random_seq(rng, 500)}) for k in range(2)]
    store = GenomeStore.from_fasta(files, tmp_path / "cache")
    with pytest.raises(DataError, match=r"chr0\.fa: val_per_file holds out round\(0\.1 x 1 records\) = 0"):
        plan_regions(store, window_length=100, val_fraction=0.1, val_per_file=True)


def test_corrupt_cache_is_rebuilt(tmp_path, records):
    fasta = write_fasta(tmp_path / "g.fa", records)
    GenomeStore.from_fasta(fasta, tmp_path / "cache")
    (npy,) = (tmp_path / "cache").glob("*.npy")
    npy.write_bytes(npy.read_bytes()[:200])
    st = GenomeStore.from_fasta(fasta, tmp_path / "cache")
    assert not st.cache_hit and st.total_length == sum(map(len, records.values()))


def test_load_from_index(tmp_path, store):
    (index,) = (tmp_path / "cache").glob("*.json")
    assert json.loads(index.read_text())["format"] == "hadna-genome-store"
    np.testing.assert_array_equal(GenomeStore.load(index).tokens, store.tokens)


def test_default_cache_dir_next_to_fasta(tmp_path):
    assert default_cache_dir(tmp_path / "g.fa") == tmp_path.resolve() / ".hadna_cache"


def test_default_cache_dir_falls_back_when_blocked_by_a_file(tmp_path, monkeypatch):
    (tmp_path / ".hadna_cache").write_text("not a directory")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir(tmp_path / "g.fa") == tmp_path / "xdg" / "hadna"


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write into read-only directories")
def test_default_cache_dir_falls_back_when_unwritable(tmp_path, monkeypatch):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    try:
        assert default_cache_dir(ro / "g.fa") == tmp_path / "xdg" / "hadna"
    finally:
        ro.chmod(0o755)


# ----------------------------------------------------------------------------- Regions
def random_regions(rng: np.random.Generator, store: GenomeStore, n: int) -> Regions:
    rec = rng.integers(0, store.num_records, n)
    a = rng.integers(0, store.lengths[rec] + 1)
    b = rng.integers(0, store.lengths[rec] + 1)
    return Regions.from_local(store, rec, np.minimum(a, b), np.maximum(a, b))


@pytest.mark.parametrize("seed", range(5))
def test_region_set_operations_match_masks(store, seed):
    rng = np.random.default_rng(seed)
    total = store.total_length
    a, b = random_regions(rng, store, 12), random_regions(rng, store, 9)
    ma, mb = mask_of(a, total), mask_of(b, total)
    np.testing.assert_array_equal(mask_of(a.intersect(b), total), ma & mb)
    np.testing.assert_array_equal(mask_of(a.subtract(b), total), ma & ~mb)
    n = int(rng.integers(0, a.total + 1))
    tail = mask_of(a.tail(n), total)
    assert tail.sum() == n and (tail <= ma).all()
    assert not (ma & ~tail)[np.argmax(tail):].any() if n else True  # nothing of `a` after the tail start
    for piece in (a, a.intersect(b), a.subtract(b), a.tail(n)):  # never spans two records
        rec_end = store.offsets[piece.record] + store.lengths[piece.record]
        assert (piece.start >= store.offsets[piece.record]).all() and (piece.end <= rec_end).all()


def test_touching_intervals_of_different_records_stay_apart(store):
    r = Regions.from_local(store, [0, 1], [2990, 0], [3000, 10])  # r0 ends where r1 starts (global)
    assert len(r) == 2 and r.to_local(store) == [("r0", 2990, 3000), ("r1", 0, 10)]
    merged = Regions.from_local(store, [0, 0, 0], [0, 10, 15], [10, 20, 30])
    assert merged.to_local(store) == [("r0", 0, 30)]


def test_default_validation_is_the_tail(store):
    plan = plan_regions(store, window_length=100, val_fraction=0.2)
    total = store.total_length
    tr, va = mask_of(plan.train, total), mask_of(plan.val, total)
    assert not (tr & va).any()
    usable = store.total_length - 50  # r1 (50 bp) is shorter than the window
    assert va.sum() == round(0.2 * usable)
    assert plan.val.to_local(store) == [("r5", 2500 - 2280, 2500)]  # the last 20% of 11,400 usable bases
    assert plan.skipped_pieces == 1 and plan.skipped_bases == 50


@pytest.mark.parametrize("how", ["records", "bed"])
def test_explicit_validation(tmp_path, store, how):
    if how == "records":
        plan = plan_regions(store, window_length=100, val_records=["r2", "r0"])
        assert plan.val.to_local(store) == [("r0", 0, 3000), ("r2", 0, 1200)]
    else:
        bed = tmp_path / "val.bed"
        bed.write_text("track x\nr4\t100\t1100\nr0\t0\t500\n")
        plan = plan_regions(store, window_length=100, val_bed=str(bed))
        assert plan.val.to_local(store) == [("r0", 0, 500), ("r4", 100, 1100)]
    assert not (mask_of(plan.train, store.total_length) & mask_of(plan.val, store.total_length)).any()


def test_unknown_validation_record(store):
    with pytest.raises(DataError, match="'chrX' is not in the genome.*known ids: 'r0'"):
        plan_regions(store, window_length=100, val_records=["chrX"])


def test_short_record_policy(store):
    plan = plan_regions(store, window_length=800, val_fraction=0.0)
    assert {name for name, _, _ in plan.train.to_local(store)} == {"r0", "r2", "r4", "r5"}  # r1, r3 < 800
    assert plan.skipped_bases == 50 + 700
    with pytest.raises(DataError, match=r"2 record\(s\) are shorter than window_length=800: 'r1' \(50 bp\), 'r3'"):
        plan_regions(store, window_length=800, short_record_policy="error")
    with pytest.raises(DataError, match="no record is at least window_length=5000"):
        plan_regions(store, window_length=5000)


# ----------------------------------------------------------------------------- windows
def make_windows(store: GenomeStore, L: int = 64, **kw) -> GenomeWindows:
    plan = plan_regions(store, window_length=L, val_fraction=kw.pop("val_fraction", 0.1), bed=kw.pop("bed", None))
    return GenomeWindows(store, plan.train, plan.val, window_length=L, **kw)


def check_windows(w: GenomeWindows, batch: torch.Tensor, prov) -> None:
    """Each row equals the store slice its provenance names (reverse-complemented on '-')."""
    for row, p in zip(batch.numpy(), prov):
        fwd = w.store.record_ids(p.record)[p.start:p.start + p.length]
        np.testing.assert_array_equal(row, reverse_complement_ids(fwd) if p.strand == "-" else fwd)


def test_batches_are_deterministic_and_seekable(store):
    w = make_windows(store, seed=7)
    batches = [w.train_batch(s, 8) for s in range(4)]
    fresh = make_windows(store, seed=7)
    for s in [3, 0, 2, 1]:  # any order: sample i depends only on (seed, i)
        assert torch.equal(fresh.train_batch(s, 8), batches[s])
    stream = torch.from_numpy(w.sample_ids(np.arange(32))[0]).long()
    assert torch.equal(torch.cat(batches), stream)
    assert not torch.equal(make_windows(store, seed=8).train_batch(0, 8), batches[0])
    assert batches[0].dtype == torch.int64 and batches[0].shape == (8, 64)


@pytest.mark.parametrize("world_size", [1, 2, 4, 8])
def test_ddp_shards_cover_the_global_batch(store, world_size):
    w = make_windows(store, seed=3)
    full, full_prov = w.train_batch(5, 16, return_provenance=True)
    shards, provs = zip(*(w.train_batch(5, 16, rank=r, world_size=world_size, return_provenance=True)
                          for r in range(world_size)))
    assert all(s.shape == (16 // world_size, 64) for s in shards)
    assert torch.equal(torch.cat(shards), full)
    assert [p for ps in provs for p in ps] == full_prov


@pytest.mark.parametrize("rank,world_size,batch", [(0, 3, 16), (2, 2, 16), (-1, 2, 16), (0, 0, 16)])
def test_bad_sharding_arguments(store, rank, world_size, batch):
    with pytest.raises(ConfigError):
        make_windows(store).train_batch(0, batch, rank=rank, world_size=world_size)


def test_training_windows_never_touch_validation(store):
    w = make_windows(store, L=100, val_fraction=0.3)
    total = store.total_length
    val_mask = mask_of(w.val_regions, total)
    train_mask = mask_of(w.train_regions, total)
    _, starts, _ = w.sample_ids(np.arange(3000))
    covered = np.zeros(total, dtype=bool)
    for g in starts.tolist():
        covered[g:g + 100] = True
    assert not (covered & val_mask).any() and (covered <= train_mask).all()
    vb, vprov = w.val_windows(return_provenance=True)
    check_windows(w, vb, vprov)
    for p in vprov:
        g = store.offsets[store.index[p.record]] + p.start
        assert val_mask[g:g + 100].all() and p.strand == "+"


def test_windows_match_provenance(store):
    w = make_windows(store, seed=11)
    batch, prov = w.train_batch(2, 64, return_provenance=True)
    check_windows(w, batch, prov)
    assert {p.strand for p in prov} == {"+", "-"}


def test_starts_are_uniform_over_valid_starts(tmp_path):
    st = GenomeStore.from_fasta(write_fasta(tmp_path / "g.fa", {"a": "ACGT" * 3, "b": "GATC" * 5}), tmp_path / "c")
    w = GenomeWindows(st, Regions.whole_records(st), Regions.empty(), window_length=4, rc_prob=0.0)
    _, starts, _ = w.sample_ids(np.arange(24000))
    counts = np.bincount(starts, minlength=st.total_length)
    valid = np.r_[np.arange(0, 9), np.arange(12, 29)]  # (12-4+1) + (20-4+1) = 26 starts
    assert set(np.flatnonzero(counts)) == set(valid)
    expected = 24000 / len(valid)
    assert np.abs(counts[valid] - expected).max() < 0.15 * expected


def test_n_filter_rejects_windows_deterministically(tmp_path):
    rng = np.random.default_rng(5)
    seq = random_seq(rng, 400) + "N" * 300 + random_seq(rng, 200) + "nnnnn" + random_seq(rng, 400)
    st = GenomeStore.from_fasta(write_fasta(tmp_path / "g.fa", {"chr": seq}), tmp_path / "c")
    strict = GenomeWindows(st, Regions.whole_records(st), Regions.empty(), window_length=100, max_n_fraction=0.05)
    ids, _, _ = strict.sample_ids(np.arange(2000))
    n_per_window = (ids == N_ID).sum(1)
    assert n_per_window.max() <= 5 and (n_per_window == 5).any()  # the isolated 5 N's are tolerated
    np.testing.assert_array_equal(strict.sample_ids(np.arange(2000))[0], ids)
    loose = GenomeWindows(st, Regions.whole_records(st), Regions.empty(), window_length=100, max_n_fraction=1.0)
    assert ((loose.sample_ids(np.arange(2000))[0] == N_ID).sum(1) > 5).any()  # the filter is what removes them


def test_all_n_genome_gives_up_with_a_clear_error(tmp_path, monkeypatch):
    st = GenomeStore.from_fasta(write_fasta(tmp_path / "g.fa", {"gap": "N" * 500}), tmp_path / "c")
    monkeypatch.setattr(windows_mod, "MAX_DRAWS", 20)
    w = GenomeWindows(st, Regions.whole_records(st), Regions.empty(), window_length=100)
    with pytest.raises(DataError, match="no window with at most 1 N in 100 bp found in 20 draws"):
        w.train_batch(0, 4)


def test_sampling_only_within_bed(tmp_path, store):
    bed = tmp_path / "keep.bed"
    bed.write_text("# keep\nr0\t100\t400\nr4\t1000\t1100\nr4\t1100\t1300\nr2\t0\t30\n")
    plan = plan_regions(store, window_length=64, bed=str(bed), val_fraction=0.0)
    assert plan.train.to_local(store) == [("r0", 100, 400), ("r4", 1000, 1300)]  # r2:0-30 is < 64 bp
    w = GenomeWindows(store, plan.train, plan.val, window_length=64)
    _, prov = w.train_batch(0, 500, return_provenance=True)
    for p in prov:
        assert (p.record == "r0" and 100 <= p.start <= 400 - 64) or (p.record == "r4" and 1000 <= p.start <= 1300 - 64)
    assert any(p.record == "r4" and p.start < 1100 < p.start + 64 for p in prov)  # touching intervals merged


@pytest.mark.parametrize("rc_prob,expected", [(0.0, {"+"}), (1.0, {"-"}), (0.5, {"+", "-"})])
def test_rc_probability(store, rc_prob, expected):
    w = make_windows(store, rc_prob=rc_prob)
    _, _, reverse = w.sample_ids(np.arange(4000))
    assert {"-" if r else "+" for r in reverse} == expected
    if rc_prob == 0.5:
        assert 0.45 < reverse.mean() < 0.55


def test_reverse_complement_ids():
    ids = encode("AACGTN")
    np.testing.assert_array_equal(reverse_complement_ids(ids), encode("NACGTT"))
    batch = np.stack([ids, encode("GGGCCA")])
    np.testing.assert_array_equal(reverse_complement_ids(reverse_complement_ids(batch)), batch)


def test_validation_set_is_fixed_and_tiled(store):
    w = make_windows(store, L=100, val_fraction=0.4, num_val_windows=10)
    a, prov = w.val_windows(return_provenance=True)
    assert a.shape == (10, 100) and torch.equal(a, make_windows(store, L=100, val_fraction=0.4,
                                                                num_val_windows=10).val_windows())
    starts = [store.offsets[store.index[p.record]] + p.start for p in prov]
    assert starts == sorted(starts) and all(b - s >= 100 for s, b in zip(starts, starts[1:]))  # no overlap
    every = make_windows(store, L=100, val_fraction=0.4, num_val_windows=10**6)
    assert every.num_val_windows == sum((e - s) // 100 for _, s, e in every.val_regions.to_local(store))
    assert torch.equal(torch.cat(list(every.val_batches(7))), every.val_windows())
    assert make_windows(store, val_fraction=0.0).val_windows().shape == (0, 64)


def test_counter_hash_is_a_pure_function():
    idx = np.arange(1000, dtype=np.uint64)
    a = counter_hash(1, idx, 0)
    np.testing.assert_array_equal(a, counter_hash(1, idx, 0))
    assert len(np.unique(a)) == 1000
    assert (a != counter_hash(2, idx, 0)).all() and (a != counter_hash(1, idx, 1)).all()
    assert counter_hash(1, idx[500:501], 0)[0] == a[500]


# ----------------------------------------------------------------------------- config
def test_config_from_yaml_and_end_to_end(tmp_path, records):
    fasta = write_fasta(tmp_path / "g.fa.gz", records, gz=True)
    yml = tmp_path / "data.yaml"
    yml.write_text(f"fasta: [{fasta}]\nwindow_length: 256\ncache_dir: {tmp_path / 'cache'}\n")
    cfg = load_config(GenomeDataConfig, yml, ["seed=3", "rc_augment=false", "num_val_windows=4"])
    w = GenomeWindows.from_config(cfg)
    batch, prov = w.train_batch(0, 8, return_provenance=True)
    assert batch.shape == (8, 256) and {p.strand for p in prov} == {"+"}
    check_windows(w, batch, prov)
    assert w.val_windows().shape == (4, 256)


@pytest.mark.parametrize("override,fragment", [
    ("window_length=0", "window_length"),
    ("max_n_fraction=1.5", "max_n_fraction"),
    ("val_fraction=1.0", "val_fraction"),
    ("rc_prob=-0.1", "rc_prob"),
    ("num_val_windows=-1", "num_val_windows"),
    ("seed=-1", "seed"),
    ("short_record_policy=pad", "short_record_policy"),
    ("val_records=[chr1]", "val_bed and val_records"),
    ("fasta=[]", "fasta"),
])
def test_config_validation(tmp_path, override, fragment):
    yml = tmp_path / "data.yaml"
    yml.write_text("fasta: [g.fa]\nval_bed: v.bed\n" if "val_records" in override else "fasta: [g.fa]\n")
    with pytest.raises(ConfigError, match=fragment):
        load_config(GenomeDataConfig, yml, [override])
