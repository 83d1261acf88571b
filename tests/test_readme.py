"""The README's Python snippets run as written (the ones that need no trained checkpoint)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path


README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_has_python_snippets():
    assert len(python_blocks()) >= 2


def test_embed_snippet_runs_and_prints_the_documented_shape(capsys):
    block = next(b for b in python_blocks() if "model.embed(" in b)
    exec(compile(block, "README.md", "exec"), {})
    printed = capsys.readouterr().out.strip()
    documented = re.search(r"# (torch\.Size\(\[.*?\]\))", block).group(1)
    assert printed == documented


def test_automodel_snippet_runs_on_a_saved_student(tmp_path):
    """The snippet runs in a fresh interpreter: nothing imported here (which registers the Auto classes)
    can make up for an import the README forgot."""
    import hadna

    block = next(b for b in python_blocks() if "AutoModel.from_pretrained" in b)
    ckpt = tmp_path / "student"
    hadna.HadModel(hadna.HadConfig.preset("had-tiny")).save_pretrained(ckpt)
    hadna.HadTokenizer().save_pretrained(ckpt)
    code = block.replace('"runs/demo/students/HAD/final"', repr(str(ckpt)))
    assert code != block, "the snippet's checkpoint path changed; update this test"
    script = tmp_path / "snippet.py"
    script.write_text(code + "\nprint(type(model).__name__, clf.config.num_labels, bool(tok('ACGT')['input_ids']))\n")
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["HadModel", "2", "True"]


def test_result_files_the_docs_cite_are_in_the_repository():
    """Every ``docs/results/...`` path named in the README, docs or model cards exists in a checkout (run
    records once sat in an ignored folder: present where they were made, missing from every clone)."""
    root = README.parents[0]
    texts = [README, *sorted((root / "docs").glob("*.md")), *sorted((root / "docs" / "results").rglob("*.md")),
             *sorted((root / "src" / "hadna" / "resources" / "pretrained").glob("*/README.md"))]
    cited = {m for t in texts for m in re.findall(r"docs/results/[\w./{},*-]*[\w/}]", t.read_text())}
    literal = sorted(c for c in cited if not re.search(r"[{}*]", c))
    assert any("/runs/" in c for c in literal) and any("/diagnostics/" in c for c in literal)  # the scan finds paths
    missing = [c for c in literal if not (root / c).exists()]
    assert not missing, f"cited but not in the repository: {missing}"
    tracked = (subprocess.run(["git", "ls-files", "-z", "docs/results"], cwd=root, capture_output=True, text=True)
               if shutil.which("git") else None)
    if tracked and tracked.returncode == 0 and tracked.stdout:  # a git checkout: cited files must be tracked too
        files = set(tracked.stdout.split("\0"))
        untracked = [c for c in literal if (root / c).is_file() and c not in files
                     or (root / c).is_dir() and not any(f.startswith(c.rstrip("/") + "/") for f in files)]
        assert not untracked, f"cited but not tracked by git (ignored?): {untracked}"


def test_the_finetune_summary_script_reads_the_committed_records():
    """docs/results/finetune_summary.py (results section 7) runs on a clean checkout: the snapshot CSV and
    the run JSONs it merges are committed, and every task it lists has all five columns."""
    root = README.parents[0]
    run = subprocess.run([sys.executable, str(root / "docs" / "results" / "finetune_summary.py")], cwd=root,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    rows = [line for line in run.stdout.splitlines() if line.startswith("| gue_") or line.startswith("| human_")]
    assert {"gue_emp_H3", "gue_emp_H4", "gue_prom_core_all"} <= {r.split("|")[1].strip() for r in rows}
    assert all(len(re.findall(r"\| -?\d\.\d{3} ", r + " ")) == 5 for r in rows), rows
    assert re.search(r"\| k-mer 1-6 probe \| \d+ \| [+-]\d\.\d{3} \|", run.stdout)


def test_the_scripts_under_docs_results_import():
    """Every script docs/results cites (finetune_summary.py, the diagnostics' checks) still imports against
    the library as it is now: a renamed function fails here, not in a reader's terminal."""
    import importlib.util

    scripts = sorted((README.parent / "docs" / "results").rglob("*.py"))
    assert any(p.name == "lpft_dropout_check.py" for p in scripts), scripts
    for path in scripts:
        spec = importlib.util.spec_from_file_location(f"_docs_script_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)  # top level only: both scripts run their work under __main__
        assert callable(getattr(module, "main", None)), path


def test_the_probe_summary_script_reads_the_committed_records():
    """docs/results/probe_summary.py (results section 7) runs on a clean checkout and puts the cross-validated
    GB samples in place of their holdout variants."""
    root = README.parents[0]
    run = subprocess.run([sys.executable, str(root / "docs" / "results" / "probe_summary.py")], cwd=root,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    tasks = [line.split("|")[1].strip() for line in run.stdout.splitlines() if line.startswith(("| gue_", "| human_"))]
    assert len(tasks) == 18 and "human_ocr_ensembl_sample_cv" in tasks and "human_ocr_ensembl_sample" not in tasks
    assert re.search(r"\| HyenaDNA-tiny \| 18 \| [+-]\d\.\d{3} \|", run.stdout)
