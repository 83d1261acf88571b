"""``hadna --help`` and ``hadna <command> --help`` import neither torch nor transformers (they stay quick)."""

from __future__ import annotations

import subprocess
import sys

from hadna.cli import COMMANDS

HEAVY = ("torch", "transformers")

PROBE = """
import contextlib, io, sys
from hadna.cli import main
for argv in {argvs!r}:
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            main(argv)
        except SystemExit as e:
            assert e.code == 0, (argv, e.code)
print(sorted({{m.split('.')[0] for m in sys.modules}} & set({heavy!r})))
"""


def test_help_imports_neither_torch_nor_transformers():
    argvs = [["--help"]] + [[name, "--help"] for name, _ in COMMANDS]
    out = subprocess.run([sys.executable, "-c", PROBE.format(argvs=argvs, heavy=HEAVY)], capture_output=True,
                         text=True, check=True).stdout
    assert out.strip() == "[]"


def test_import_hadna_is_light_and_its_names_load_on_use():
    out = subprocess.run([sys.executable, "-c", "import sys, hadna; print(sorted({'torch', 'transformers'} & "
                          "{m.split('.')[0] for m in sys.modules}))"], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    import hadna
    import hadna.models
    from transformers import AutoConfig

    assert hadna.HadModel is hadna.models.HadModel and "HadTokenizer" in dir(hadna)
    assert type(AutoConfig.for_model(hadna.HadConfig.model_type)) is hadna.HadConfig  # registered by hadna.models
