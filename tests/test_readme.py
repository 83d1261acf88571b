"""The README's Python snippets run as written (the ones that need no trained checkpoint)."""

from __future__ import annotations

import re
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
    import hadna

    block = next(b for b in python_blocks() if "AutoModel.from_pretrained" in b)
    ckpt = tmp_path / "student"
    hadna.HadModel(hadna.HadConfig.preset("had-tiny")).save_pretrained(ckpt)
    hadna.HadTokenizer().save_pretrained(ckpt)
    code = block.replace('"runs/demo/students/HAD/final"', repr(str(ckpt)))
    assert code != block, "the snippet's checkpoint path changed; update this test"
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)
    assert type(scope["model"]).__name__ == "HadModel"
    assert scope["clf"].config.num_labels == 2
    assert scope["tok"]("ACGT")["input_ids"]
