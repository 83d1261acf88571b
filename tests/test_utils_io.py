"""Atomic writes: a reader sees the old content or the new, never a half-written file or directory."""

from __future__ import annotations

import json
import os

import pytest

from hadna.utils.io import atomic_directory, atomic_path, atomic_write_json, atomic_write_text


def leftovers(directory):
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


def test_atomic_write_text_and_json_replace_the_file(tmp_path):
    target = tmp_path / "sub" / "a.json"
    atomic_write_json(target, {"x": 1})
    atomic_write_json(target, {"x": 2})
    assert json.loads(target.read_text()) == {"x": 2}
    atomic_write_text(tmp_path / "b.txt", "hello")
    assert (tmp_path / "b.txt").read_text() == "hello"
    assert leftovers(tmp_path) == [] and leftovers(tmp_path / "sub") == []


def test_atomic_path_leaves_the_old_file_on_error(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash")
    assert target.read_text() == "old"
    assert leftovers(tmp_path) == []


def test_atomic_path_removes_the_folders_it_made_for_a_failed_write(tmp_path):
    with pytest.raises(RuntimeError):
        with atomic_path(tmp_path / "new" / "sub" / "e.npy") as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash")
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "kept").mkdir()
    with pytest.raises(RuntimeError):
        with atomic_path(tmp_path / "kept" / "new" / "e.npy"):
            (tmp_path / "kept" / "new" / "other.txt").write_text("another writer's")  # not empty: stays
            raise RuntimeError("crash")
    assert sorted(p.name for p in (tmp_path / "kept" / "new").iterdir()) == ["other.txt"]
    with atomic_path(tmp_path / "ok" / "a.txt") as tmp:
        tmp.write_text("done")
    assert (tmp_path / "ok" / "a.txt").read_text() == "done"


def test_atomic_directory_replaces_a_whole_directory(tmp_path):
    out = tmp_path / "final"
    out.mkdir()
    (out / "old.txt").write_text("old")
    with atomic_directory(out) as tmp:
        assert tmp != out and tmp.is_dir() and not any(tmp.iterdir())
        (tmp / "new.txt").write_text("new")
        assert (out / "old.txt").exists()          # the old directory stays until the new one is complete
    assert sorted(p.name for p in out.iterdir()) == ["new.txt"]
    assert leftovers(tmp_path) == []


def test_atomic_directory_leaves_the_old_directory_on_error(tmp_path):
    out = tmp_path / "final"
    out.mkdir()
    (out / "old.txt").write_text("old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_directory(out) as tmp:
            (tmp / "half.txt").write_text("half")
            raise KeyboardInterrupt
    assert sorted(p.name for p in out.iterdir()) == ["old.txt"]
    assert leftovers(tmp_path) == []


def test_atomic_directory_creates_a_new_directory(tmp_path):
    with atomic_directory(tmp_path / "fresh") as tmp:
        (tmp / "x").write_text("1")
    assert (tmp_path / "fresh" / "x").read_text() == "1"


def test_atomic_directory_gives_private_files_the_usual_mode(tmp_path):
    """transformers writes model.safetensors 0600; a published directory's files get 0666 less the umask."""
    umask = os.umask(0o022)
    try:
        with atomic_directory(tmp_path / "final") as tmp:
            (tmp / "sub").mkdir()
            for f in (tmp / "weights", tmp / "sub" / "card"):
                f.write_text("x")
                os.chmod(f, 0o600)
    finally:
        os.umask(umask)
    assert {oct(f.stat().st_mode & 0o777) for f in (tmp_path / "final").rglob("*") if f.is_file()} == {oct(0o644)}


def test_umask_is_read_without_changing_it():
    from hadna.utils.io import _umask

    old = os.umask(0o027)
    try:
        assert _umask() == 0o027
        assert os.umask(0o027) == 0o027  # still in force
    finally:
        os.umask(old)
