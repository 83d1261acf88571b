"""Every loader format (fixtures written here), every bad-input error, truncation and hold-out rules."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hadna.errors import ConfigError, DataError, HadnaError, MissingFileError
from hadna.eval.loaders import load_hf_task, load_task
from hadna.eval.readers import clean_sequences, truncate
from hadna.sequence import reverse_complement
from hadna.eval.tasks import TaskSpec, get_task


def custom(tmp_path: Path, **kw) -> TaskSpec:
    base = dict(name="t", benchmark="custom", num_classes=None, max_length=None, metric="accuracy",
                path=str(tmp_path))
    return TaskSpec(**{**base, **kw})


def write_csv(path: Path, rows: list[tuple], header=("sequence", "label"), sep=","):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(sep.join(header) + "\n" + "".join(sep.join(map(str, r)) + "\n" for r in rows))
    return path


BALANCED = [("ACGT" * 3, 0), ("GGGCCC", 1), ("acgtn", 0), ("TTTTAA", 1), ("ACGRY", 0), ("CCCC", 1)] * 3


# ------------------------------------------------------------------------------------------------
# Genomic Benchmarks: sequence directories
# ------------------------------------------------------------------------------------------------

def make_gb_dirs(root: Path, task: str, layout: dict[str, dict[str, list[str]]]) -> None:
    for split, classes in layout.items():
        for cls, seqs in classes.items():
            d = root / task / split / cls
            d.mkdir(parents=True)
            for i, s in enumerate(seqs):
                (d / f"{i}.txt").write_text(s)


def test_gb_directories_labels_follow_sorted_class_names(tmp_path):
    make_gb_dirs(tmp_path, "human_ensembl_regulatory", {
        "train": {"promoter": ["AAAA", "AAAC"], "enhancer": ["CCCC\n", "CCCA"], "ocr": ["gggg", "GGGA"]},
        "test": {"promoter": ["TTTT"], "ocr": ["GTGT"]},  # test lacks 'enhancer': indices must not shift
    })
    data = load_task("human_ensembl_regulatory", tmp_path)
    assert data.class_names == ("enhancer", "ocr", "promoter")
    assert data.train.sequences == ["CCCC", "CCCA", "GGGG", "GGGA", "AAAA", "AAAC"]
    assert data.train.labels.tolist() == [0, 0, 1, 1, 2, 2]
    assert dict(zip(data.test.sequences, data.test.labels.tolist())) == {"GTGT": 1, "TTTT": 2}
    assert data.validation is None and data.counters["truncated"] == 0


def test_gb_directories_class_names_must_match_the_task(tmp_path):
    make_gb_dirs(tmp_path, "human_nontata_promoters", {"train": {"neg": ["AC"], "pos": ["GT"]}})
    with pytest.raises(DataError, match=r"classes \['neg', 'pos'\] differ"):
        load_task("human_nontata_promoters", tmp_path)


def test_gb_directories_test_class_unseen_in_training(tmp_path):
    make_gb_dirs(tmp_path, "x", {"train": {"a": ["AC"], "b": ["GT"]}, "test": {"a": ["AC"], "c": ["GG"]}})
    spec = TaskSpec(name="x", benchmark="custom", num_classes=None, max_length=None, metric="accuracy",
                    layout="genomic_benchmarks", path="x")
    with pytest.raises(DataError, match=r"test classes \['c'\] never occur"):
        load_task(spec, tmp_path)


def test_gb_missing_task_directory_says_what_is_expected(tmp_path):
    with pytest.raises(MissingFileError, match=r"<class>/\*\.txt.*<class>\.csv\.gz"):
        load_task("human_enhancers_cohn", tmp_path)


def test_gb_directory_with_invalid_sequence_names_the_file(tmp_path):
    make_gb_dirs(tmp_path, "human_enhancers_cohn", {"train": {"negative": ["ACGT"], "positive": ["AC-GT"]}})
    with pytest.raises(DataError, match=r"positive/0\.txt: invalid character '-' at position 3"):
        load_task("human_enhancers_cohn", tmp_path)


# ------------------------------------------------------------------------------------------------
# Genomic Benchmarks: coordinates + reference FASTA
# ------------------------------------------------------------------------------------------------

CHR1 = "AACCGGTTAC" * 3   # 30 bp
CHR2 = "GATTACAGATTACA"  # 14 bp


def write_fasta(path: Path, records: dict[str, str], width: int = 7, gz: bool = False) -> Path:
    text = "".join(f">{name}\n" + "".join(seq[i:i + width] + "\n" for i in range(0, len(seq), width))
                   for name, seq in records.items())
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        with gzip.open(path, "wt") as fh:
            fh.write(text)
    else:
        path.write_text(text)
    return path


def write_coords(path: Path, rows: list[tuple]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "id,region,start,end,strand\n" + "".join(",".join(map(str, r)) + "\n" for r in rows)
    with gzip.open(path, "wt") as fh:
        fh.write(text)
    return path


def coord_task(tmp_path: Path) -> Path:
    task = tmp_path / "coords" / "human_nontata_promoters"
    write_coords(task / "train" / "positive.csv.gz", [(1, "chr1", 0, 4, "+"), (2, "chr1", 2, 8, "-"),
                                                       (3, "chr2", 0, 7, "")])  # empty strand = forward
    write_coords(task / "train" / "negative.csv.gz", [(4, "chr2", 7, 14, "+"), (5, "chr1", 26, 30, "-")])
    write_coords(task / "test" / "positive.csv.gz", [(6, "chr1", 10, 14, "+")])
    write_coords(task / "test" / "negative.csv.gz", [(7, "chr2", 1, 3, "-")])
    (task / "metadata.yaml").write_text(
        "classes:\n  negative:\n    url: http://x/Homo.dna.fa.gz\n  positive:\n    url: http://x/Homo.dna.fa.gz\n")
    return task


@pytest.mark.parametrize("gz", [False, True], ids=["plain-fasta", "gzipped-fasta"])
def test_gb_coordinates_slice_and_reverse_complement(tmp_path, gz):
    coord_task(tmp_path)
    # Ensembl names ("1") while the coordinates say "chr1": matched via the chr alias.
    ref = write_fasta(tmp_path / "ref.fa.gz", {"1 dna:chromosome": CHR1.lower(), "2": CHR2}, gz=gz)
    data = load_task("human_nontata_promoters", tmp_path / "coords", reference=ref)
    # negative: chr2[7:14] +, chr1[26:30] = TTAC on - -> GTAA; positive: chr1[0:4], chr1[2:8] = CCGGTT on -
    # -> AACCGG, chr2[0:7] with an empty strand (forward).
    assert data.train.sequences == ["GATTACA", "GTAA", "AACC", "AACCGG", "GATTACA"]
    assert data.train.labels.tolist() == [0, 0, 1, 1, 1]
    assert data.test.sequences == ["AT", "AACC"]  # chr2[1:3] = AT is its own reverse complement
    assert "coordinates" in data.source


def test_gb_coordinates_reference_directory_uses_metadata_names(tmp_path):
    coord_task(tmp_path)
    write_fasta(tmp_path / "refs" / "Homo.dna.fa.gz", {"chr1": CHR1, "chr2": CHR2}, gz=True)
    data = load_task("human_nontata_promoters", tmp_path / "coords", reference=tmp_path / "refs")
    assert len(data.train) == 5 and len(data.test) == 2


def test_gb_coordinates_reference_per_class_and_transcript_versions(tmp_path):
    task = tmp_path / "demo_coding_vs_intergenomic_seqs"
    write_coords(task / "train" / "coding_seqs.csv.gz", [(1, "ENST0001", 0, 5, "+"), (2, "ENST0002", 1, 4, "+")])
    write_coords(task / "train" / "intergenomic_seqs.csv.gz", [(3, "chr2", 0, 5, "+"), (4, "chr2", 5, 9, "+")])
    write_coords(task / "test" / "coding_seqs.csv.gz", [(5, "ENST0002", 0, 2, "+")])
    write_coords(task / "test" / "intergenomic_seqs.csv.gz", [(6, "chr2", 9, 14, "-")])
    cdna = write_fasta(tmp_path / "cdna.fa", {"ENST0001.3 cdna": "ACGTACGT", "ENST0002.1 cdna": "TTGCA"})
    dna = write_fasta(tmp_path / "dna.fa", {"2": CHR2})
    data = load_task("demo_coding_vs_intergenomic_seqs", tmp_path,
                     reference={"coding_seqs": cdna, "intergenomic_seqs": dna})
    assert data.train.sequences == ["ACGTA", "TGC", "GATTA", "CAGA"]
    assert data.train.labels.tolist() == [0, 0, 1, 1]
    assert data.test.sequences == ["TT", "TGTAA"]  # chr2[9:14] = TTACA on the minus strand


def test_gb_coordinate_slices_equal_string_slices(tmp_path):
    # Soft-masked chr1 with a run of N, then chr2: slices at both record boundaries, on both strands.
    rng = np.random.default_rng(0)
    chr1 = "".join(rng.choice(list("ACGT"), 40)) + "NNNNN" + "".join(rng.choice(list("acgtACGT"), 35))
    chr2 = "".join(rng.choice(list("ACGTacgt"), 50))
    genome = {"chr1": chr1, "chr2": chr2}
    intervals = [("chr1", 0, 80), ("chr1", 38, 47), ("chr1", 70, 80), ("chr2", 0, 12), ("chr2", 44, 50),
                 ("chr1", 45, 46), ("chr2", 3, 4)]
    rows = [(i * 2 + k, region, s, e, strand) for i, (region, s, e) in enumerate(intervals)
            for k, strand in enumerate("+-")]
    task = tmp_path / "human_nontata_promoters"
    write_coords(task / "train" / "positive.csv.gz", rows)
    write_coords(task / "train" / "negative.csv.gz", [(99, "chr2", 0, 4, "+")])
    for cls in ("positive", "negative"):  # a test split, so that no training row is held out
        write_coords(task / "test" / f"{cls}.csv.gz", [(100, "chr1", 0, 4, "+")])
    ref = write_fasta(tmp_path / "ref.fa", genome, width=9)
    data = load_task("human_nontata_promoters", tmp_path, reference=ref, truncation="none")
    expected = [genome[region][s:e].upper() if strand == "+" else reverse_complement(genome[region][s:e].upper())
                for _, region, s, e, strand in rows]
    assert data.train.sequences == [genome["chr2"][:4].upper()] + expected  # negative (label 0) first
    assert any("NNNNN" in x for x in data.train.sequences)
    assert (tmp_path / ".hadna_cache").is_dir()  # the reference's genome store, cached next to it


@pytest.mark.parametrize("rows,match", [
    ([(1, "chrZ", 0, 4, "+")], r"positive\.csv\.gz: line 2 \(id 1\): region 'chrZ' not found"),
    ([(1, "chr1", 0, 4, "+"), (2, "chr1", 20, 31, "+")], r"line 3 \(id 2\): chr1:20-31 is out of range.*30 bp"),
    ([(1, "chr1", 5, 5, "+")], r"line 2: end 5 <= start 5"),
    ([(1, "chr1", -1, 5, "+")], r"line 2: start '-1' is not a non-negative integer"),
    ([(1, "chr1", 0, 4, "x")], r"line 2: strand 'x'"),
], ids=["missing-region", "out-of-range", "empty-interval", "negative-start", "bad-strand"])
def test_gb_coordinates_errors_name_file_and_line(tmp_path, rows, match):
    task = tmp_path / "human_nontata_promoters"
    write_coords(task / "train" / "positive.csv.gz", rows)
    write_coords(task / "train" / "negative.csv.gz", [(9, "chr2", 0, 4, "+")])
    ref = write_fasta(tmp_path / "ref.fa", {"chr1": CHR1, "chr2": CHR2})
    with pytest.raises(DataError, match=match):
        load_task("human_nontata_promoters", tmp_path, reference=ref)


def test_gb_coordinates_without_reference(tmp_path):
    coord_task(tmp_path)
    with pytest.raises(MissingFileError, match="pass a reference FASTA"):
        load_task("human_nontata_promoters", tmp_path / "coords")
    with pytest.raises(MissingFileError, match=r"expected .*refs/Homo\.dna\.fa\.gz \(download http://x/"):
        (tmp_path / "refs").mkdir()
        load_task("human_nontata_promoters", tmp_path / "coords", reference=tmp_path / "refs")


def test_gb_coordinates_missing_columns(tmp_path):
    task = tmp_path / "human_nontata_promoters" / "train"
    task.mkdir(parents=True)
    for cls in ("negative", "positive"):
        with gzip.open(task / f"{cls}.csv.gz", "wt") as fh:
            fh.write("id,chrom,begin\n1,chr1,0\n")
    expected = r"missing column\(s\) \['region', 'start', 'end'\].*columns found: \['id', 'chrom', 'begin'\]"
    with pytest.raises(DataError, match=expected):
        load_task("human_nontata_promoters", tmp_path, reference=write_fasta(tmp_path / "r.fa", {"chr1": CHR1}))


# ------------------------------------------------------------------------------------------------
# Nucleotide Transformer files: FASTA with |label headers, parquet and CSV exports
# ------------------------------------------------------------------------------------------------

def nt_fasta(path: Path, items: list[tuple[str, int]], gz: bool = False) -> Path:
    return write_fasta(path, {f"seq{i}|{label}": s for i, (s, label) in enumerate(items)}, width=5, gz=gz)


@pytest.mark.parametrize("suffix,gz", [(".fna", False), (".fna.gz", True), (".fasta", False)],
                         ids=["fna", "fna-gz", "fasta"])
def test_nt_fasta_with_label_headers(tmp_path, suffix, gz):
    nt_fasta(tmp_path / "H3" / f"train{suffix}", [("ACGTACGTACGT", 1), ("ttttcccc", 0), ("GGGAAA", 1)], gz=gz)
    nt_fasta(tmp_path / "H3" / f"test{suffix}", [("ACGT", 0), ("CCGG", 1)], gz=gz)
    data = load_task("H3", tmp_path)
    assert data.train.sequences == ["ACGTACGTACGT", "TTTTCCCC", "GGGAAA"]
    assert data.train.labels.tolist() == [1, 0, 1]
    assert data.test.labels.tolist() == [0, 1]
    assert data.class_names == ("negative", "positive")


@pytest.mark.parametrize("header,match", [
    ("seq0", r"record 1 \(line 1, >seq0\): the header has no '\|label' suffix"),
    ("seq0|pos", r"record 1 .*label 'pos' is not an integer"),
    ("seq0|1.5", r"label '1.5' is not an integer"),
    ("seq0|-1", r"label -1 is negative"),
], ids=["no-label", "word-label", "fractional-label", "negative-label"])
def test_nt_fasta_bad_headers(tmp_path, header, match):
    (tmp_path / "train.fna").write_text(f">{header}\nACGT\n>seq1|1\nACGT\n")
    with pytest.raises(DataError, match=match):
        load_task(custom(tmp_path), None)


def test_nt_fasta_sequence_before_header(tmp_path):
    (tmp_path / "train.fna").write_text("ACGT\n>seq1|1\nACGT\n")
    with pytest.raises(DataError, match=r"line 1: sequence data before the first '>'"):
        load_task(custom(tmp_path))


def test_nt_parquet_export_with_name_column(tmp_path):
    d = tmp_path / "promoter_all"
    d.mkdir()
    pd.DataFrame({"sequence": ["ACGT", "GGCC", "TTAA", "CCAA"], "label": [0, 1, 0, 1],
                  "name": ["a", "b", "c", "d"]}).to_parquet(d / "train.parquet")
    pd.DataFrame({"sequence": ["ACGA", "GGCA"], "label": [1, 0], "name": ["e", "f"]}).to_parquet(d / "test.parquet")
    data = load_task("promoter_all", tmp_path)
    assert data.train.labels.tolist() == [0, 1, 0, 1] and data.test.sequences == ["ACGA", "GGCA"]


def test_parquet_missing_values_are_errors(tmp_path):
    pd.DataFrame({"sequence": ["ACGT", None], "label": [0, 1]}).to_parquet(tmp_path / "train.parquet")
    with pytest.raises(DataError, match=r"line 3: missing sequence"):
        load_task(custom(tmp_path))
    pd.DataFrame({"sequence": ["ACGT", "ACGG"], "label": [0.0, np.nan]}).to_parquet(tmp_path / "train.parquet")
    with pytest.raises(DataError, match=r"line 3: label None is not an integer"):
        load_task(custom(tmp_path))


def test_nt_csv_export(tmp_path):
    write_csv(tmp_path / "enhancers" / "train.csv", [("ACGT", 0, "a"), ("GGCC", 1, "b")] * 3,
              header=("sequence", "label", "name"))
    write_csv(tmp_path / "enhancers" / "test.csv", [("ACGT", 1, "c")], header=("sequence", "label", "name"))
    data = load_task("enhancers", tmp_path)
    assert len(data.train) == 6 and len(data.test) == 1


# ------------------------------------------------------------------------------------------------
# Generic tables, GUE layout, our partial-GB TSVs
# ------------------------------------------------------------------------------------------------

def test_gue_layout_dev_is_the_validation_split(tmp_path):
    d = tmp_path / "gue" / "prom" / "prom_core_all"
    write_csv(d / "train.csv", BALANCED)
    write_csv(d / "dev.csv", BALANCED[:4])
    write_csv(d / "test.csv", BALANCED[:2])
    data = load_task("gue_prom_core_all", tmp_path)
    assert len(data.validation) == 4 and len(data.test) == 2
    tr, va = data.train_validation(seed=3)
    assert va is data.validation and tr is data.train


def test_gue_emp_trains_on_dev(tmp_path):
    d = tmp_path / "gue" / "EMP" / "H3"
    write_csv(d / "dev.csv", BALANCED)
    write_csv(d / "test.csv", BALANCED[:6])
    data = load_task("gue_emp_H3", tmp_path)
    assert len(data.train) == len(BALANCED) and data.validation is None and len(data.test) == 6
    assert any("trained on dev.csv" in n for n in data.notes)
    assert data.train.source.endswith("dev.csv")


def test_partial_gb_tsv_with_seq_column_and_cross_validation(tmp_path):
    d = tmp_path / "genomic_benchmarks_partial" / "human_enhancers_cohn"
    write_csv(d / "test.tsv", [(s, y) for s, y in BALANCED * 2], header=("seq", "label"), sep="\t")
    data = load_task("human_enhancers_cohn_testcv", tmp_path)
    assert data.test is None and data.needs_cross_validation
    folds = data.folds(seed=0)
    assert len(folds) == 5
    assert sorted(np.concatenate([f[1].labels for f in folds]).tolist()) == sorted(data.train.labels.tolist())
    assert sum(len(te) for _, te in folds) == len(data.train)


def test_gb_samples_come_held_out_and_cross_validated_from_the_same_rows(tmp_path):
    d = tmp_path / "genomic_benchmarks_partial" / "human_ocr_ensembl_sample"
    write_csv(d / "train.tsv", [(s, y) for s, y in BALANCED * 3], header=("seq", "label"), sep="\t")
    held, cv = load_task("human_ocr_ensembl_sample", tmp_path), load_task("human_ocr_ensembl_sample_cv", tmp_path)
    assert held.test is not None and not held.needs_cross_validation
    assert len(held.train) + len(held.test) == len(cv.train) == 3 * len(BALANCED)
    assert cv.test is None and cv.needs_cross_validation
    folds = cv.folds(seed=1)
    assert len(folds) == 5 and sorted(np.concatenate([te.labels for _, te in folds]).tolist()) == \
        sorted(cv.train.labels.tolist())  # every row is tested exactly once per seed


def test_table_without_test_file_holds_out_a_fixed_stratified_test_set(tmp_path):
    rows = [(("ACGT" if i % 2 else "GGCC") * (1 + i % 3), i % 2) for i in range(50)]
    write_csv(tmp_path / "train.csv", rows)
    spec = custom(tmp_path)
    a, b = load_task(spec), load_task(spec)
    assert a.test.sequences == b.test.sequences  # split seed is fixed, not the training seed
    assert len(a.test) == 10 and np.bincount(a.test.labels).tolist() == [5, 5]
    assert len(a.train) == 40
    c = load_task(spec, holdout_seed=1)
    assert c.test.sequences != a.test.sequences or c.test.labels.tolist() != a.test.labels.tolist()
    tr1, va1 = a.train_validation(seed=1)
    tr1b, va1b = a.train_validation(seed=1)
    _, va2 = a.train_validation(seed=2)
    assert va1.sequences == va1b.sequences and len(va1) == 4 and np.bincount(va1.labels).tolist() == [2, 2]
    assert sorted(va1.sequences + tr1.sequences) == sorted(a.train.sequences)
    assert va1.labels.tolist() != va2.labels.tolist() or va1.sequences != va2.sequences


def test_explicit_files_mapping_with_absolute_paths(tmp_path):
    tr = write_csv(tmp_path / "a" / "mine.csv", BALANCED)
    te = write_csv(tmp_path / "b" / "other.tsv", [("ACGT", 1), ("GGGG", 0)], header=("seq", "label"), sep="\t")
    spec = TaskSpec(name="m", benchmark="custom", num_classes=2, max_length=None, metric="mcc",
                    files={"train": str(tr), "test": str(te)})
    data = load_task(spec)
    assert len(data.test) == 2 and data.class_names == ("0", "1")


# ------------------------------------------------------------------------------------------------
# Bad data
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("rows,header,match", [
    ([("ACGT", "x")], ("sequence", "label"), r"train\.csv: line 2: label 'x' is not an integer"),
    ([("ACGT", 0), ("ACGT", "")], ("sequence", "label"), r"line 3: label '' is not an integer"),
    ([("ACGT", 0), ("", 1)], ("sequence", "label"), r"line 3: empty sequence"),
    ([("ACGT", 0), ("ACGZ", 1)], ("sequence", "label"), r"line 3: invalid character 'Z' at position 4"),
    ([("ACGT", 0), ("AC GT", 1)], ("sequence", "label"), r"line 3: invalid character ' ' at position 3"),
    ([("ACGT", 0), ("ACGé", 1)], ("sequence", "label"), r"line 3: invalid character 'é' at position 4"),
    ([("ACGT", 0)], ("dna", "y"), r"missing column 'sequence' or 'seq' and 'label'; columns found: \['dna', 'y'\]"),
    ([("ACGT", 0)], ("seq", "class"), r"missing column 'label'; columns found: \['seq', 'class'\]"),
    ([("ACGT", 0), ("ACGA", 0)], ("sequence", "label"), r"single class \(0\)"),
], ids=["word-label", "empty-label", "empty-seq", "bad-char", "inner-space", "non-ascii", "no-columns",
        "no-label-column", "single-class"])
def test_bad_tables(tmp_path, rows, header, match):
    write_csv(tmp_path / "train.csv", rows, header=header)
    with pytest.raises(DataError, match=match):
        load_task(custom(tmp_path))


def test_label_out_of_range_for_the_task(tmp_path):
    write_csv(tmp_path / "train.csv", [("ACGT", 0), ("ACGA", 2)])
    with pytest.raises(DataError, match=r"label 2 \(sample 2 of this split\) is >= the number of classes \(2\)"):
        load_task(custom(tmp_path, num_classes=2))


def test_test_labels_unseen_in_training(tmp_path):
    write_csv(tmp_path / "train.csv", [("ACGT", 0), ("ACGA", 1)])
    write_csv(tmp_path / "test.csv", [("ACGT", 0), ("ACGA", 2)])
    with pytest.raises(DataError, match=r"test\.csv: test labels \[2\] never occur in the training data"):
        load_task(custom(tmp_path))


def test_missing_train_file_lists_expected_and_found(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(MissingFileError, match=r"expected one of train\.fna, .*train\.csv.*found: notes\.txt"):
        load_task(custom(tmp_path))
    with pytest.raises(MissingFileError, match=r"train file not found: .*nope\.csv"):
        load_task(custom(tmp_path, files={"train": "nope.csv"}))


def test_ambiguous_split_files(tmp_path):
    write_csv(tmp_path / "train.csv", BALANCED)
    write_csv(tmp_path / "train.tsv", BALANCED, sep="\t")
    with pytest.raises(DataError, match=r"several train files \(train\.csv, train\.tsv\)"):
        load_task(custom(tmp_path))


def test_registered_task_needs_a_data_dir():
    with pytest.raises(ConfigError, match=r"--data-dir.*<data-dir>/H3"):
        load_task("H3")


def test_missing_class_in_training_is_noted(tmp_path):
    write_csv(tmp_path / "train.csv", [("ACGT", 0), ("ACGA", 2)])
    data = load_task(custom(tmp_path, num_classes=3, no_test="kfold"))
    assert data.num_classes == 3 and any("[1] have no training samples" in n for n in data.notes)


def test_reverse_complement_handles_iupac():
    assert reverse_complement("AACGTN") == "NACGTT"
    assert reverse_complement("RYKMSWBDHV") == "BDHVWSKMRY"


def test_iupac_n_u_and_lowercase_are_accepted():
    assert clean_sequences([" acgtn\n", "RYKMSWBDHVN", "ACGU"], lambda i: f"row {i}") == \
        ["ACGTN", "RYKMSWBDHVN", "ACGU"]


# ------------------------------------------------------------------------------------------------
# Truncation
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode,expect", [("left", "AACCG"), ("center", "CCGGT"), ("none", "AACCGGTTA")])
def test_truncate_rules(mode, expect):
    assert truncate("AACCGGTTA", 5, mode) == expect
    assert truncate("ACG", 5, mode) == "ACG"


def test_truncation_is_counted_per_split(tmp_path):
    write_csv(tmp_path / "train.csv", [("A" * 10, 0), ("C" * 3, 1), ("G" * 6, 0), ("T" * 2, 1)])
    write_csv(tmp_path / "test.csv", [("ACGTACGT", 0), ("AC", 1)])
    data = load_task(custom(tmp_path, max_length=5), truncation="center")
    assert data.counters["train_truncated"] == 2 and data.counters["test_truncated"] == 1
    assert data.counters["truncated"] == 3
    assert data.test.sequences[0] == "CGTAC"
    assert max(map(len, data.train.sequences)) == 5
    with pytest.raises(ConfigError, match="truncation must be one of"):
        load_task(custom(tmp_path, max_length=5), truncation="right")


# ------------------------------------------------------------------------------------------------
# Hugging Face Hub: opt-in only
# ------------------------------------------------------------------------------------------------

def test_importing_and_local_loading_never_import_datasets(tmp_path):
    """A poisoned `datasets` module on the path: importing the eval modules or loading files must not touch it."""
    (tmp_path / "poison").mkdir()
    (tmp_path / "poison" / "datasets.py").write_text("raise RuntimeError('datasets was imported')\n")
    write_csv(tmp_path / "data" / "train.csv", BALANCED)
    code = ("import sys; from hadna.eval import loaders, results, metrics, splits, tasks; "
            f"spec = tasks.task_from_dict({{'name': 'x', 'path': {str(tmp_path / 'data')!r}}}); "
            "print(len(loaders.load_task(spec).train))")
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "poison")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == str(len(BALANCED) - round(0.2 * len(BALANCED)))


def test_hf_without_datasets_installed_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)  # makes `import datasets` raise ImportError
    with pytest.raises(HadnaError, match=r"needs the optional 'datasets' package: pip install 'hadna\[hub\]'"):
        load_hf_task("H3")


class _FakeSplit:
    def __init__(self, cols):
        self._cols = cols
        self.column_names = list(cols)

    def __getitem__(self, key):
        return self._cols[key]


def test_hf_adapter_converts_splits_and_columns(monkeypatch):
    """The `datasets` package is not installed here; a stand-in checks our column/split handling."""
    calls = []

    def load_dataset(repo, name, **kwargs):
        calls.append((repo, name, kwargs))
        return {"train": _FakeSplit({"sequence": ["ACGT", "GGCC", "acga"], "label": [0, 1, 0], "name": list("abc")}),
                "test": _FakeSplit({"sequence": ["ACGA"], "label": [1], "name": ["d"]})}

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    data = load_hf_task("H3", revision="abc123")
    assert calls == [("InstaDeepAI/nucleotide_transformer_downstream_tasks", "H3",
                      {"revision": "abc123", "cache_dir": None, "trust_remote_code": False})]  # always explicit
    assert data.train.sequences == ["ACGT", "GGCC", "ACGA"] and data.test.labels.tolist() == [1]
    assert "Hugging Face dataset" in data.source


def test_task_summary_is_json_friendly(tmp_path):
    import json

    write_csv(tmp_path / "train.csv", BALANCED)
    data = load_task(custom(tmp_path))
    s = json.loads(json.dumps(data.summary()))
    assert s["splits"]["train"]["class_counts"] == np.bincount(data.train.labels).tolist()


def test_registered_gue_spec_paths():
    assert get_task("gue_emp_H4").path == "gue/EMP/H4"


def test_load_task_from_cli_options(tmp_path):
    import argparse

    from hadna.commands.options import add_task_arguments, load_task_from_args, task_from_args

    write_csv(tmp_path / "train.csv", [("ACGTACGT", 0), ("GGGGCCCC", 1)] * 5)
    p = argparse.ArgumentParser()
    add_task_arguments(p)
    args = p.parse_args(["--train-file", str(tmp_path / "train.csv"), "--max-length", "4", "--truncation", "center"])
    (spec,) = task_from_args(args)
    data = load_task_from_args(spec, args)
    assert data.counters["truncated"] == 10 and set(data.train.sequences) <= {"GTAC", "GGCC"}
