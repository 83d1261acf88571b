"""File names of labelled sequence files: format, stem and task name agree on the one suffix list."""

from __future__ import annotations

import pytest

from hadna.eval.formats import FORMAT_SUFFIXES, SPLIT_FILE_SUFFIXES, file_format, file_stem, task_name_from_file


@pytest.mark.parametrize("suffix", SPLIT_FILE_SUFFIXES + tuple(s.upper() for s in SPLIT_FILE_SUFFIXES))
def test_every_split_file_suffix_has_a_format_and_is_stripped(suffix):
    assert file_format(f"data/train{suffix}") is not None
    assert file_stem(f"data/train{suffix}") == "train"


def test_file_stem_strips_one_format_suffix_only():
    assert set(FORMAT_SUFFIXES) == {s.removesuffix(".gz") for s in SPLIT_FILE_SUFFIXES}
    assert file_stem("promoters.v2.fa.gz") == "promoters.v2"
    assert file_stem("notes.txt") == "notes.txt"


def test_task_name_from_file(tmp_path):
    assert task_name_from_file(tmp_path / "promoters" / "train.csv.gz") == "promoters"
    assert task_name_from_file(tmp_path / "enhancers.fasta") == "enhancers"
