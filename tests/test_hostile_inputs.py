"""Hostile inputs and failure situations (issue 13): every case ends in exit code 2 with one
``hadna: error:`` line naming the file/row/problem, or in correct output; never a traceback, never a
changed pre-existing file, never a half-written output, never code or network the user did not allow.

Most cases call the CLI's ``main()`` in-process (faithful: it is what the ``hadna`` script runs); a few
need real processes (the network audit hook, two processes writing one directory, SIGKILL).
"""

from __future__ import annotations

import builtins
import gzip
import hashlib
import json
import os
import shutil
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from hadna.cli import build_parser, main
from hadna.errors import HadnaError

REPO = Path(__file__).resolve().parents[1]
MARKER_ENV = "HADNA_TEST_MARKER"


@pytest.fixture(autouse=True)
def _fresh_log_handlers():
    """hadna's CLI installs its stderr log handler once; drop it so each test's captured stderr gets one."""
    import logging

    import hadna.utils.batching

    logger = logging.getLogger("hadna")
    for h in [h for h in logger.handlers if getattr(h, "_hadna", False)]:
        logger.removeHandler(h)
    hadna.utils.batching._WARNED_OUTLIERS.clear()  # the once-per-data-set outlier warning: fresh for every test
    yield


# ------------------------------------------------------------------------------------------------
# Helpers
# ------------------------------------------------------------------------------------------------

def snapshot(root: Path) -> dict[str, str]:
    """Every file under ``root`` (hidden ones included) -> sha256 of its content."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file():
            out[str(p.relative_to(root))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def run_cli(capsys, argv: list[str]) -> tuple[int, str, str]:
    rc = main([str(a) for a in argv])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def assert_one_line_error(rc: int, err: str, match: str) -> str:
    lines = err.strip().splitlines()
    errors = [line for line in lines if line.startswith("hadna: error:")]
    assert rc == 2, err[-2000:]
    assert len(errors) == 1 and "Traceback" not in err, err[-2000:]
    assert match in errors[0], errors[0]
    return errors[0]


def write_task(directory: Path, n: int = 40, length: int = 24, labels=None) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    seqs = ["".join(rng.choice(list("GC" if i % 2 else "AT"), length)) for i in range(n)]
    labels = np.arange(n) % 2 if labels is None else labels
    df = pd.DataFrame({"sequence": seqs, "label": labels})
    directory.mkdir(parents=True, exist_ok=True)
    df.iloc[: n * 3 // 4].to_csv(directory / "train.csv", index=False)
    df.iloc[n * 3 // 4:].to_csv(directory / "test.csv", index=False)
    return directory / "train.csv", directory / "test.csv"


@pytest.fixture(scope="module")
def had_dir(tmp_path_factory) -> Path:
    """A tiny saved hadna checkpoint (safetensors)."""
    from hadna.models import HadConfig, HadForSequenceClassification

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("models") / "had-tiny"
    HadForSequenceClassification(HadConfig.preset("had-tiny", num_labels=2)).save_pretrained(path)
    return path


class _Evil:
    """A pickle that would run a command when unpickled without weights_only."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def pickled_copy(src: Path, dst: Path, evil_marker: Path | None = None) -> Path:
    """``src`` with its safetensors weights replaced by a pickled ``pytorch_model.bin`` (malicious if asked)."""
    from safetensors.torch import load_file

    shutil.copytree(src, dst)
    weights = next(dst.glob("*.safetensors"))
    state = load_file(str(weights))
    weights.unlink()
    torch.save({"x": _Evil(evil_marker), **state} if evil_marker else state, dst / "pytorch_model.bin")
    return dst


REMOTE_CODE = '''
import os, pathlib
pathlib.Path(os.environ["{env}"]).write_text("remote code ran")
from transformers import PretrainedConfig, PreTrainedModel, PreTrainedTokenizer
class EvilConfig(PretrainedConfig):
    model_type = "evilx"
class EvilModel(PreTrainedModel):
    config_class = EvilConfig
class EvilTok(PreTrainedTokenizer):
    pass
'''.format(env=MARKER_ENV)


def remote_code_dir(path: Path, base: Path | None = None, tokenizer: bool = True) -> Path:
    """A model directory whose config (and, with ``tokenizer``, tokenizer) names code in evil.py that
    writes the marker file when imported. ``base``: start from a real checkpoint's files."""
    if base is not None:
        shutil.copytree(base, path)
        config = json.loads((path / "config.json").read_text())
    else:
        path.mkdir(parents=True)
        config = {"hidden_size": 8}
    config.update(model_type="evilx", architectures=["EvilModel"],
                  auto_map={"AutoConfig": "evil.EvilConfig", "AutoModel": "evil.EvilModel",
                            "AutoModelForMaskedLM": "evil.EvilModel",
                            "AutoModelForSequenceClassification": "evil.EvilModel"})
    (path / "config.json").write_text(json.dumps(config))
    if tokenizer:
        (path / "tokenizer_config.json").write_text(json.dumps(
            {"auto_map": {"AutoTokenizer": ["evil.EvilTok", None]}, "tokenizer_class": "EvilTok"}))
    (path / "evil.py").write_text(REMOTE_CODE)
    return path


@pytest.fixture
def marker(tmp_path, monkeypatch) -> Path:
    """The file remote code or a malicious pickle would create; and a terminal user who answers "y"."""
    path = tmp_path / "MARKER"
    monkeypatch.setenv(MARKER_ENV, str(path))
    asked = []

    def answer_yes(prompt=""):
        asked.append(prompt)
        return "y"

    monkeypatch.setattr(builtins, "input", answer_yes)
    yield path
    assert not asked, f"hadna let transformers ask the user: {asked[0][:200]!r}"
    assert not path.exists(), "code the user did not allow ran"


@pytest.fixture(scope="module")
def nt_teacher(tmp_path_factory) -> Path:
    from hadna.teachers import make_random_nt_teacher

    return make_random_nt_teacher(tmp_path_factory.mktemp("teacher") / "nt", hidden_size=16, num_layers=1,
                                  num_heads=2, intermediate_size=32, max_length_nt=64, seed=0)


# ------------------------------------------------------------------------------------------------
# 1. Remote code never runs without --trust-remote-code (no prompt either)
# ------------------------------------------------------------------------------------------------

def test_remote_code_tokenizer_is_refused(tmp_path, capsys, marker):
    model = remote_code_dir(tmp_path / "evil-tok")
    (tmp_path / "in.fa").write_text(">a\nACGT\n")
    rc, out, err = run_cli(capsys, ["embed", "--model", f"hf:{model}", "--input", tmp_path / "in.fa",
                                    "--out", tmp_path / "e.npy"])
    assert_one_line_error(rc, err, "needs its own (remote) code to load its tokenizer; hadna runs it only with "
                                   "--trust-remote-code")
    assert "custom code" not in out  # transformers' prompt never reaches stdout


def test_remote_code_model_is_refused(tmp_path, capsys, marker, nt_teacher):
    model = remote_code_dir(tmp_path / "evil-model", base=nt_teacher, tokenizer=False)  # real ESM tokenizer
    train, test = write_task(tmp_path)
    rc, out, err = run_cli(capsys, ["finetune", "--model", f"hf:{model}", "--train-file", train, "--mode", "probe",
                                    "--seeds", "1", "--output-dir", tmp_path / "runs"])
    assert_one_line_error(rc, err, "needs its own (remote) code to load its model")
    assert not (tmp_path / "runs").exists()


def test_remote_code_teacher_is_refused(tmp_path, marker, nt_teacher):
    from hadna.errors import CheckpointError
    from hadna.teachers import Teacher

    model = remote_code_dir(tmp_path / "evil-teacher", base=nt_teacher, tokenizer=False)
    with pytest.raises(CheckpointError, match="--trust-remote-code"):
        Teacher.from_pretrained(model)


def test_remote_code_dataset_is_refused(tmp_path, capsys, marker, monkeypatch):
    """`datasets` is optional (not installed here): a stand-in runs the dataset's "loading script" unless
    trust_remote_code=False is passed explicitly, as datasets does after asking on a terminal."""
    calls = []

    def load_dataset(repo, name, **kwargs):
        calls.append(kwargs)
        if kwargs.get("trust_remote_code") is not False:
            Path(os.environ[MARKER_ENV]).write_text("dataset script ran")
        raise ValueError("this dataset needs its loading script; pass trust_remote_code=True")

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    rc, _, err = run_cli(capsys, ["finetune", "--model", "preset:had-tiny", "--task", "H3", "--from-hub",
                                  "--output-dir", tmp_path / "runs"])
    assert_one_line_error(rc, err, "cannot load Hugging Face dataset")
    assert calls and calls[0]["trust_remote_code"] is False


def test_every_from_pretrained_and_load_dataset_call_is_explicit():
    """grep of src/hadna: every from_pretrained / load_dataset call passes trust_remote_code explicitly."""
    import re

    missing = []
    for path in (REPO / "src" / "hadna").rglob("*.py"):
        text = path.read_text()
        for m in re.finditer(r"(\.from_pretrained|\.load_dataset|Auto\w+\.from_config)\(", text):
            line_start = text.rfind("\n", 0, m.start()) + 1
            line = text[line_start:text.find("\n", m.start())]
            if line.lstrip().startswith(("def ", "#", "model = ", "tokenizer = ", "teacher = ", "clf = ", "tok = ")) \
                    or '"' in line[:m.start() - line_start] or "`" in line:
                continue  # a definition, or example text in a docstring / model card
            depth, i = 0, m.end() - 1
            while True:  # the call's argument text, up to its closing parenthesis
                depth += {"(": 1, ")": -1}.get(text[i], 0)
                if depth == 0:
                    break
                i += 1
            call = text[m.start():i + 1]
            if "trust_remote_code" not in call and "**kwargs" not in call and "**common" not in call:
                missing.append(f"{path.relative_to(REPO)}: {line.strip()}")
    assert not missing, missing


def pretrain_config(tmp_path: Path, genome: Path, out: Path, teacher: str | None = None, **train) -> Path:
    """A tiny pre-training config file (2 steps of had-tiny on ~20 kb of real DNA)."""
    import yaml

    cfg = {
        "recipe": "pretrain",
        "model": {"preset": "had-tiny", "overrides": {"chunk_size": 16}},
        "data": {"fasta": [str(genome)], "window_length": 64, "num_val_windows": 4, "val_fraction": 0.1,
                 "cache_dir": str(genome.parent / "genome-cache"), "seed": 3},
        "teacher": {"path": teacher},
        "objective": {"mode": "had" if teacher else "mlm", "decoder_width": 32, "decoder_heads": 2},
        "optim": {"lr": 3e-3, "warmup_steps": 1, "min_lr_ratio": 0.1},
        "train": {"max_steps": 2, "batch_size": 4, "seed": 1, "log_every": 1, "val_every": 0, "save_every": 1,
                  "keep_last_checkpoints": 2, "output_dir": str(out), "device": "cpu", "precision": "fp32",
                  "num_threads": 1, **train},
    }
    path = tmp_path / f"pretrain-{out.name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture(scope="module")
def genome_fasta(tmp_path_factory) -> Path:
    """~20 kb of the shipped real chr22 sample."""
    from hadna.resources import GENOME_SAMPLE_PRETRAIN

    out, count = [], 0
    with gzip.open(GENOME_SAMPLE_PRETRAIN, "rt") as fh:
        for line in fh:
            count += line.startswith(">")
            if count > 8:
                break
            out.append(line)
    path = tmp_path_factory.mktemp("genome") / "chr22_slice.fa"
    path.write_text("".join(out))
    return path


# ------------------------------------------------------------------------------------------------
# 2. No network without --allow-download (audit hook in a real process: hooks cannot be removed)
# ------------------------------------------------------------------------------------------------

NETWORK_SCRIPT = r'''
import json, sys
events = []
def hook(event, args):
    if event in ("socket.connect", "socket.getaddrinfo"):
        events.append(event)
        raise OSError("network blocked by the test")
sys.addaudithook(hook)
from hadna.cli import main
results = {}
for name, argv in json.loads(sys.argv[1]).items():
    before = len(events)
    try:
        rc = main(argv)
    except SystemExit as exc:
        rc = exc.code
    results[name] = {"rc": rc, "network": events[before:]}
print("RESULTS " + json.dumps(results))
'''


def test_no_network_without_allow_download(tmp_path, genome_fasta):
    hub = "hf:hadna-tests/not-a-cached-model"
    train, _ = write_task(tmp_path)
    (tmp_path / "in.fa").write_text(">a\nACGT\n")
    cfg = pretrain_config(tmp_path, genome_fasta, tmp_path / "pt", teacher="hadna-tests/not-a-cached-teacher")
    commands = {
        "info": ["info"],
        "embed": ["embed", "--model", hub, "--input", str(tmp_path / "in.fa"), "--out", str(tmp_path / "e.npy")],
        "finetune": ["finetune", "--model", hub, "--train-file", str(train), "--output-dir", str(tmp_path / "ev")],
        "pretrain": ["pretrain", "--config", str(cfg)],
        "run": ["run", str(cfg)],
    }
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    env["PYTHONPATH"] = str(REPO / "src")
    proc = subprocess.run([sys.executable, "-c", NETWORK_SCRIPT, json.dumps(commands)], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULTS ")), None)
    assert line is not None, proc.stderr[-3000:]
    results = json.loads(line[len("RESULTS "):])
    assert {k: v["network"] for k, v in results.items()} == {k: [] for k in commands}
    assert results["info"]["rc"] == 0
    assert all(results[k]["rc"] == 2 for k in commands if k != "info"), results
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]


# ------------------------------------------------------------------------------------------------
# 3. Pickled weights: read only with weights_only=True, said in one line; a malicious one refused
# ------------------------------------------------------------------------------------------------

def test_pickled_weights(tmp_path, capsys, had_dir, nt_teacher):
    from hadna.errors import CheckpointError
    from hadna.teachers import Teacher

    pwned = tmp_path / "PWNED"
    (tmp_path / "in.fa").write_text(">a\nACGTAC\n")
    plain = pickled_copy(had_dir, tmp_path / "plain-bin")
    rc, out, err = run_cli(capsys, ["embed", "--model", plain, "--input", tmp_path / "in.fa", "--out", tmp_path / "e.npy"])
    assert rc == 0 and "torch.load(weights_only=True)" in err and np.load(tmp_path / "e.npy").shape == (1, 32)
    evil = pickled_copy(had_dir, tmp_path / "evil-bin", evil_marker=pwned)
    rc, _, err = run_cli(capsys, ["embed", "--model", evil, "--input", tmp_path / "in.fa", "--out", tmp_path / "f.npy"])
    assert_one_line_error(rc, err, f"{evil}: refusing to load the pickled hadna checkpoint")
    with pytest.raises(CheckpointError, match="refusing to load the pickled teacher weights"):
        Teacher.from_pretrained(pickled_copy(nt_teacher, tmp_path / "evil-teacher", evil_marker=pwned))
    assert Teacher.from_pretrained(pickled_copy(nt_teacher, tmp_path / "plain-teacher")).hidden_size == 16
    assert not pwned.exists() and not (tmp_path / "f.npy").exists()


def test_allow_download_restores_the_environments_own_offline_setting(monkeypatch):
    """--allow-download lifts hadna's offline mode but not one the user set (HF_HUB_OFFLINE=1 still wins)."""
    import huggingface_hub.constants as hub

    import hadna.utils.network as net

    saved = dict(net._ORIGINAL)
    try:
        for name in net._ENV:
            monkeypatch.delenv(name, raising=False)
        net._ORIGINAL.update({name: None for name in net._ENV})
        net.set_hub_offline(True)
        assert os.environ["HF_HUB_OFFLINE"] == "1" and hub.HF_HUB_OFFLINE is True
        net.set_hub_offline(False)
        assert "HF_HUB_OFFLINE" not in os.environ and hub.HF_HUB_OFFLINE is False
        net._ORIGINAL["HF_HUB_OFFLINE"] = "1"
        net.set_hub_offline(False)
        assert os.environ["HF_HUB_OFFLINE"] == "1" and hub.HF_HUB_OFFLINE is True
    finally:
        net._ORIGINAL.clear()
        net._ORIGINAL.update(saved)
        net.set_hub_offline(False)  # back to this session's own setting


# ------------------------------------------------------------------------------------------------
# The table: one in-process CLI call per case -> exit 2 + one line naming file/row/problem, or success;
# never a traceback, never a pre-existing file changed, never a new file left behind by a failure.
# ------------------------------------------------------------------------------------------------

def _fa_gz(path: Path, text: str = ">a\nACGTACGTAC\n>b\nACGTTTGA\n") -> Path:
    path.write_bytes(gzip.compress(text.encode()))
    return path


def _truncated_gz(path: Path) -> Path:
    data = gzip.compress((">a\n" + "ACGT" * 5000 + "\n").encode())
    path.write_bytes(data[: len(data) // 2])
    return path


def _corrupt_gz(path: Path) -> Path:
    path.write_bytes(b"\x1f\x8b\x08\x00" + b"not deflate data at all" * 4)
    return path


def _csv(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _truncated_model(d: Path, had_dir: Path) -> Path:
    shutil.copytree(had_dir, d)
    w = d / "model.safetensors"
    w.write_bytes(w.read_bytes()[:1000])
    return d


ROWS = "".join(f"{'ACGTAC' if i % 2 else 'GGCCGG'},{i % 2}\n" for i in range(20))

# id -> (builder(tmp, had_dir) -> argv, expected substring of the one error line, or None for success)
CASES = {
    # item 8: huge labels
    "labels-0-and-1000000": (lambda t, m: ["finetune", "--model", "preset:had-tiny", "--mode", "probe",
                                           "--train-file", _csv(t / "big.csv", "sequence,label\n" + "ACGT,0\nACGA,1000000\n" * 10),
                                           "--output-dir", t / "runs"],
                             "big.csv: label 1000000 (sample 2 of this split): the training data has 2 distinct labels"),
    "labels-with-a-gap": (lambda t, m: ["finetune", "--model", "preset:had-tiny", "--mode", "probe",
                                        "--train-file", _csv(t / "gap.csv", "sequence,label\n" + "ACGT,0\nACGA,2\n" * 10),
                                        "--output-dir", t / "runs"], "label 2 (sample 2 of this split)"),
    "num-classes-1000001": (lambda t, m: ["finetune", "--model", "preset:had-tiny", "--mode", "probe", "--num-classes",
                                          "1000001", "--train-file",
                                          _csv(t / "big.csv", "sequence,label\n" + "ACGT,0\nACGA,1000000\n" * 10)],
                            "num_classes 1,000,001 is more than hadna handles"),
    # item 9: embed on broken inputs
    "embed-truncated-gzip": (lambda t, m: ["embed", "--model", "preset:had-tiny", "--input", _truncated_gz(t / "t.fa.gz"),
                                           "--out", t / "e.npy"], "t.fa.gz: truncated or corrupt gzip"),
    "embed-corrupt-gzip": (lambda t, m: ["embed", "--model", "preset:had-tiny", "--input", _corrupt_gz(t / "c.fa.gz"),
                                         "--out", t / "e.npy"], "c.fa.gz: truncated or corrupt gzip"),
    "embed-corrupt-gzip-csv": (lambda t, m: ["embed", "--model", "preset:had-tiny", "--input", _corrupt_gz(t / "c.csv.gz"),
                                             "--out", t / "e.npy"], "c.csv.gz: cannot read as a table"),
    "embed-truncated-safetensors": (lambda t, m: ["embed", "--model", _truncated_model(t / "cut", m), "--input",
                                                  _fa_gz(t / "in.fa.gz"), "--out", t / "e.npy"],
                                    "cut: the hadna checkpoint file is truncated or corrupt"),
    "embed-out-is-a-directory": (lambda t, m: ["embed", "--model", "preset:had-tiny", "--input", _fa_gz(t / "in.fa.gz"),
                                               "--out", (t / "o.npy").mkdir() or t / "o.npy"], "o.npy is a directory"),
    # item 12: wording
    "embed-input-is-a-directory": (lambda t, m: ["embed", "--model", "preset:had-tiny", "--input", t,
                                                 "--out", t / "e.npy"], "is a directory; pass a file"),
    "train-file-is-a-directory": (lambda t, m: ["finetune", "--model", "preset:had-tiny", "--train-file",
                                                (t / "d.csv").mkdir() or t / "d.csv"], "train file"),
    "report-on-a-non-run-json": (lambda t, m: ["report", _csv(t / "s.json", '{"recipe": "pretrain", "steps": 4}')],
                                 "s.json: not a hadna run record"),
    "benchmark-given-a-pretrain-config": (lambda t, m: ["benchmark", "--config", REPO / "configs" / "tiny.yaml"],
                                          "config for recipe 'pretrain', not 'benchmark'"),
    "columns-sequence-and-seq": (lambda t, m: ["finetune", "--model", "preset:had-tiny", "--train-file",
                                               _csv(t / "two.csv", "sequence,seq,label\n" + "ACGT,GGGG,0\nACGA,CCCC,1\n" * 10)],
                                 "two.csv: 2 columns could hold the sequences ('sequence', 'seq')"),
    "column-label-twice": (lambda t, m: ["finetune", "--model", "preset:had-tiny", "--train-file",
                                         _csv(t / "lab.csv", "sequence,label,label\n" + "ACGT,0,1\nACGA,1,0\n" * 10)],
                           "lab.csv: 2 columns could hold the labels ('label', 'label.1')"),
    "embed-columns-sequence-and-seq": (lambda t, m: ["embed", "--model", "preset:had-tiny", "--input",
                                                     _csv(t / "two.csv", "sequence,seq\nACGT,GGGG\n"), "--out", t / "e.npy"],
                                       "2 columns could hold the sequences"),
    # an output path through an existing file: one line naming the file, not an OSError traceback
    "output-dir-is-a-file": (lambda t, m: ["finetune", "--model", "kmer", "--mode", "probe", "--seeds", "1",
                                           "--train-file", _csv(t / "ok.csv", "sequence,label\n" + "ACGT,0\nACGA,1\n" * 10),
                                           "--output-dir", _csv(t / "taken", "x")],
                             "taken: is a file, where a folder is needed"),
    "embed-out-under-a-file": (lambda t, m: ["embed", "--model", "preset:had-tiny", "--input", _fa_gz(t / "in.fa.gz"),
                                             "--out", _csv(t / "taken", "x") / "sub" / "e.npy"],
                               "taken: is a file, where a folder is needed"),
    "report-on-a-folder-without-run-records": (lambda t, m: ["report", _csv(t / "DONE.json", '{"results": "r.md"}').parent],
                                               "no run JSON files"),
    "seeds-negative": (lambda t, m: ["finetune", "--model", "kmer", "--train-file", _csv(t / "ok.csv", "sequence,label\n"
                                     + "ACGT,0\nACGA,1\n" * 10), "--seeds=-1,2"], "seeds must be >= 0"),
    "seeds-empty-item": (lambda t, m: ["finetune", "--model", "kmer", "--train-file", _csv(t / "ok.csv", "sequence,label\n"
                                       + "ACGT,0\nACGA,1\n" * 10), "--seeds", "1,,2"], "an empty item between commas"),
    "weight-decay-negative": (lambda t, m: ["finetune", "--model", "preset:had-tiny", "--weight-decay", "-5", "--train-file",
                                            _csv(t / "ok.csv", "sequence,label\n" + "ACGT,0\nACGA,1\n" * 10)],
                              "weight_decay must be >= 0"),
    "embed-text-without-a-header": (lambda t, m: ["embed", "--model", "preset:had-tiny", "--input",
                                                  _csv(t / "plain.fa", "ACGTACGT\n"), "--out", t / "new" / "e.npy"],
                                    "plain.fa, line 1: sequence data before the first '>'"),
    "one-row-per-class": (lambda t, m: ["finetune", "--model", "kmer", "--mode", "probe", "--train-file",
                                        _csv(t / "two.csv", "sequence,label\nACGT,0\nACGA,1\n")],
                          "two.csv: holding out a test set: cannot hold out any sample"),
    "info-unknown-preset": (lambda t, m: ["info", "--preset", "nope"], "unknown preset 'nope'"),
    "override-typo-names-the-override": (lambda t, m: ["pretrain", "--config", REPO / "configs" / "tiny.yaml",
                                                       "train.max_step=3"],
                                         "command-line override train.max_step=3: unknown config key"),
    "a-yaml-mistake-is-not-blamed-on-a-valid-override": (
        lambda t, m: ["pretrain", "--config", _csv(t / "p.yaml", (REPO / "configs" / "tiny.yaml").read_text() + "\nlr: 0.1\n"),
                      "optim.lr=1e-3"], "p.yaml with optim.lr=1e-3: unknown config key 'lr'"),
    "benchmark-option-blamed-on-the-command-line": (lambda t, m: ["benchmark", "--config", REPO / "configs" /
                                                                  "benchmark_cpu_smoke.yaml", "--weight-decay", "-5"],
                                                    "the command line (--weight-decay -5.0): "),
    "benchmark-set-typo-names-the-override": (lambda t, m: ["benchmark", "--config", REPO / "configs" /
                                                            "benchmark_cpu_smoke.yaml", "--set", "protocol.epoch=2"],
                                              "command-line override protocol.epoch=2: "),
    "override-of-the-wrong-type": (lambda t, m: ["pretrain", "--config", REPO / "configs" / "tiny.yaml",
                                                 "train.num_threads=abc"],
                                   "command-line override train.num_threads=abc: train.num_threads: expected an "
                                   "integer, got 'abc' (or null)"),
    "run-given-a-benchmark-config": (lambda t, m: ["run", REPO / "configs" / "benchmark_cpu_smoke.yaml"],
                                     "run it with `hadna benchmark --config"),
    # cases that already worked before issue 13 (kept so that they stay that way)
    "missing-train-file": (lambda t, m: ["finetune", "--model", "preset:had-tiny", "--train-file", t / "nope.csv"],
                           "train file not found"),
    "invalid-character": (lambda t, m: ["finetune", "--model", "preset:had-tiny", "--train-file",
                                        _csv(t / "x.csv", "sequence,label\nACGT,0\nACXT,1\n")],
                          "x.csv: line 3: invalid character 'X' at position 3"),
    "empty-sequence": (lambda t, m: ["finetune", "--model", "preset:had-tiny", "--train-file",
                                     _csv(t / "x.csv", "sequence,label\nACGT,0\n,1\n")], "x.csv: line 3: empty sequence"),
    "label-not-an-integer": (lambda t, m: ["finetune", "--model", "preset:had-tiny", "--train-file",
                                           _csv(t / "x.csv", "sequence,label\nACGT,0\nACGA,yes\n")],
                             "x.csv: line 3: label 'yes' is not an integer"),
    "single-class": (lambda t, m: ["finetune", "--model", "preset:had-tiny", "--train-file",
                                   _csv(t / "x.csv", "sequence,label\nACGT,0\nACGA,0\n")], "single class"),
    "missing-label-column": (lambda t, m: ["finetune", "--model", "preset:had-tiny", "--train-file",
                                           _csv(t / "x.csv", "sequence,y\nACGT,0\n")], "missing column 'label'"),
    "model-path-is-a-file": (lambda t, m: ["embed", "--model", _csv(t / "m.bin", "x"), "--input", _fa_gz(t / "in.fa.gz"),
                                           "--out", t / "e.npy"], "is a file"),
    "model-dir-without-config": (lambda t, m: ["embed", "--model", (t / "empty").mkdir() or t / "empty", "--input",
                                               _fa_gz(t / "in.fa.gz"), "--out", t / "e.npy"], "no config.json"),
    "embed-bad-fasta": (lambda t, m: ["embed", "--model", "preset:had-tiny", "--input", _csv(t / "x.fa", "ACGT\n>a\nAC\n"),
                                      "--out", t / "e.npy"], "x.fa"),
    "embed-unknown-output-format": (lambda t, m: ["embed", "--model", "preset:had-tiny", "--input", _fa_gz(t / "in.fa.gz"),
                                                  "--out", t / "e.txt"], "use .npy or .parquet"),
    "pretrain-unknown-config-key": (lambda t, m: ["pretrain", "--config", REPO / "configs" / "tiny.yaml",
                                                  "optim.learning_rate=1"], "learning_rate"),
    "pretrain-given-a-benchmark-config": (lambda t, m: ["pretrain", "--config",
                                                        next((REPO / "configs").glob("benchmark_*.yaml"))],
                                          "not 'pretrain'"),
    "report-not-json": (lambda t, m: ["report", _csv(t / "r.json", "{not json")], "not valid JSON"),
    "unknown-task": (lambda t, m: ["finetune", "--model", "preset:had-tiny", "--task", "no_such_task"],
                     "unknown task 'no_such_task'"),
    # successes (correct output)
    "embed-gzip-fasta": (lambda t, m: ["embed", "--model", m, "--input", _fa_gz(t / "in.fa.gz"), "--out", t / "e.npy"],
                         None),
}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_hostile_input(case, tmp_path, capsys, had_dir):
    build, match = CASES[case]
    work = tmp_path / "work"
    work.mkdir()
    argv = build(work, had_dir)
    before = snapshot(work)
    rc, out, err = run_cli(capsys, argv)
    after = snapshot(work)
    if match is None:
        assert rc == 0 and "Traceback" not in err, err[-2000:]
        assert {k: v for k, v in after.items() if k in before} == before  # inputs untouched
        assert not [k for k in after if Path(k).name.startswith(".")], after  # no temporaries left
        return
    assert_one_line_error(rc, err, match)
    assert after == before, "a failed command changed or left files"


def test_debug_shows_the_traceback_before_or_after_the_command(tmp_path, capsys):
    argv = ["report", str(_csv(tmp_path / "s.json", '{"recipe": "pretrain"}'))]
    rc, _, err = run_cli(capsys, argv)
    assert_one_line_error(rc, err, "not a hadna run record")
    for debug_argv in (["--debug", *argv], [*argv, "--debug"]):
        with pytest.raises(HadnaError, match="not a hadna run record"):
            main(debug_argv)
    args = build_parser().parse_args(["report", "x.json"])
    assert (args.debug, args.verbose) == (False, False)  # the command's switches do not reset the top level
    assert build_parser().parse_args(["-v", "report", "x.json"]).verbose is True


def test_folder_outputs_take_output_dir_in_every_command():
    p = build_parser()
    a = p.parse_args(["tsne", "--model", "kmer", "--task", "H3", "--output-dir", "x", "--embed-batch-size", "7"])
    assert (a.out, a.batch_size) == ("x", 7)
    assert p.parse_args(["cache-teacher", "--config", "c.yaml", "--num-samples", "3", "--output-dir", "y"]).out == "y"
    assert p.parse_args(["tsne", "--model", "kmer", "--task", "H3", "--out", "z"]).out == "z"  # the old name stays


# ------------------------------------------------------------------------------------------------
# 10. One very long sequence among short ones: batched by a token budget, with a warning
# ------------------------------------------------------------------------------------------------

def test_token_budget_batching_puts_an_outlier_alone(caplog):
    from hadna.eval.models import iter_batches_by_length

    lengths = [50] * 200 + [20_000] + [60] * 10
    batches = iter_batches_by_length(lengths, 64)
    assert batches[0].tolist() == [200]                       # the outlier alone, not padded with 63 others
    assert sorted(np.concatenate(batches).tolist()) == list(range(len(lengths)))
    assert all(len(b) * max(lengths[i] for i in b) <= 64 * 60 for b in batches[1:])
    assert [len(b) for b in batches[1:]] == [64, 64, 64, 18]  # homogeneous data: full batches as before
    assert "over 10x the median length" in caplog.text and "--max-length" in caplog.text
    assert [len(b) for b in iter_batches_by_length([100] * 10, 4)] == [4, 4, 2]


def test_embed_with_an_outlier_warns_and_matches_unbatched(tmp_path, capsys):
    rng = np.random.default_rng(0)
    seqs = ["".join(rng.choice(list("ACGT"), 40)) for _ in range(30)] + ["".join(rng.choice(list("ACGT"), 3000))]
    (tmp_path / "in.fa").write_text("".join(f">s{i}\n{s}\n" for i, s in enumerate(seqs)))
    rc, out, err = run_cli(capsys, ["embed", "--model", "preset:had-tiny", "--input", tmp_path / "in.fa",
                                    "--out", tmp_path / "e.npy", "--batch-size", "16"])
    assert rc == 0 and "over 10x the median length" in err
    from hadna.eval.models import load_eval_model, parse_model_spec

    # the same network as the command's (preset:had-tiny is initialised with seed 0), one sequence at a time

    model = load_eval_model(parse_model_spec("preset:had-tiny"), 2, seed=0, device="cpu")
    alone = model.eval().features([seqs[-1]]).detach().numpy()[0]
    np.testing.assert_allclose(np.load(tmp_path / "e.npy")[-1], alone, rtol=1e-4, atol=1e-5)


# ------------------------------------------------------------------------------------------------
# 11/12. Temporaries of dead processes are cleaned; published files follow the umask; overrides anywhere
# ------------------------------------------------------------------------------------------------

def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_stale_temporaries_of_dead_processes_are_removed(tmp_path):
    from hadna.utils.io import atomic_directory, atomic_path

    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])  # a live process we own
    dead, alive = _dead_pid(), live.pid
    (tmp_path / f".final.tmp-{dead}").mkdir()                 # a crashed export of final/
    (tmp_path / f".final.tmp-{dead}" / "model.safetensors").write_bytes(b"half")
    (tmp_path / f".final.tmp-{alive}").mkdir()                # another live process's export: kept
    (tmp_path / f".e.npy.tmp-{dead}-abc123.npy.tmp").write_bytes(b"half")   # embed killed by SIGKILL
    (tmp_path / f".other.npy.tmp-{dead}-abc.npy.tmp").write_bytes(b"x")     # another target: not ours to clean
    try:
        with atomic_directory(tmp_path / "final") as d:
            (d / "x").write_text("x")
        with atomic_path(tmp_path / "e.npy") as t:
            t.write_bytes(b"data")
    finally:
        live.kill()
        live.wait()
    hidden = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("."))
    assert hidden == sorted([f".final.tmp-{alive}", f".other.npy.tmp-{dead}-abc.npy.tmp"])


def test_published_files_follow_the_umask(tmp_path):
    from hadna.utils.io import atomic_write_json

    old = os.umask(0o027)
    try:
        atomic_write_json(tmp_path / "a.json", {"x": 1})
    finally:
        os.umask(old)
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o640   # was 0600 (mkstemp's private mode)


def test_overrides_are_accepted_anywhere_on_the_line():
    from hadna.cli import build_parser, parse_args

    args = parse_args(build_parser(), ["pretrain", "--config", "c.yaml", "a.b=1", "--output-dir", "d", "optim.lr=2",
                                       "--resume"])
    assert args.overrides == ["a.b=1", "optim.lr=2"] and args.output_dir == "d" and args.resume
    with pytest.raises(SystemExit):                             # still an error when not key=value
        parse_args(build_parser(), ["pretrain", "--config", "c.yaml", "a=1", "--output-dir", "d", "oops"])
    with pytest.raises(SystemExit):                             # and for commands without overrides
        parse_args(build_parser(), ["info", "x=1"])


# ------------------------------------------------------------------------------------------------
# 4. Resuming a fine-tune on other data is refused (seeds of two data sets are never averaged)
# ------------------------------------------------------------------------------------------------

def test_finetune_resume_with_another_training_file_is_refused(tmp_path, capsys):
    train_a, _ = write_task(tmp_path / "a")
    train_b, _ = write_task(tmp_path / "b", labels=(np.arange(40) + 1) % 2)  # same rows, other labels
    common = ["finetune", "--model", "preset:had-tiny", "--task-name", "t", "--mode", "probe",
              "--output-dir", tmp_path / "runs"]
    rc, _, err = run_cli(capsys, common + ["--train-file", train_a, "--seeds", "1,"])
    assert rc == 0, err[-2000:]
    record = tmp_path / "runs" / "t" / "had-tiny_random_init.probe.json"
    before = snapshot(tmp_path / "runs")
    rc, _, err = run_cli(capsys, common + ["--train-file", train_b, "--seeds", "1,2"])
    assert_one_line_error(rc, err, f"{record} holds seeds run on other data")
    assert snapshot(tmp_path / "runs") == before
    rc, _, err = run_cli(capsys, common + ["--train-file", train_a, "--seeds", "1,2"])  # same data: resumes
    assert rc == 0 and [r["seed"] for r in json.loads(record.read_text())["results"]] == [1, 2]


# ------------------------------------------------------------------------------------------------
# 5. pretrain --resume with settings the checkpoint fixes is refused; schedule changes are applied
# ------------------------------------------------------------------------------------------------

def test_pretrain_resume_refuses_changed_optimiser_settings(tmp_path, capsys, genome_fasta):
    out = tmp_path / "pt"
    cfg = pretrain_config(tmp_path, genome_fasta, out)
    rc, _, err = run_cli(capsys, ["pretrain", "--config", cfg])
    assert rc == 0, err[-2000:]
    before = snapshot(out)
    stale = out / f".final.tmp-{_dead_pid()}"  # what a run killed while exporting final/ leaves
    stale.mkdir()
    (stale / "model.safetensors").write_bytes(b"half")
    for override, shown in (("optim.lr=1e-2", "optim.lr: 0.003 -> 0.01"),
                            ("optim.weight_decay=0.5", "optim.weight_decay: 0.01 -> 0.5")):
        rc, _, err = run_cli(capsys, ["pretrain", "--config", cfg, "--resume", override, "train.max_steps=3"])
        assert_one_line_error(rc, err, shown)
        assert snapshot(out) == before  # training_summary.json never records values that were not used
        assert not stale.exists()        # the lock holder removed the dead process's temporary at the start
    rc, _, err = run_cli(capsys, ["pretrain", "--config", cfg, "--resume", "train.max_steps=3"])
    assert rc == 0, err[-2000:]
    summary = json.loads((out / "final" / "training_summary.json").read_text())
    assert summary["steps"] == 3 and summary["config"]["optim"]["lr"] == 3e-3


# ------------------------------------------------------------------------------------------------
# 6. Cached data is checksummed: an overwritten cache (same shape and dtype) is never used silently
# ------------------------------------------------------------------------------------------------

def test_overwritten_teacher_feature_cache_is_refused(tmp_path, genome_fasta, nt_teacher, capsys):
    from hadna.config import from_dict, read_yaml
    from hadna.errors import DataError
    from hadna.train.config import PretrainConfig
    from hadna.train.feature_cache import FeatureCache, build_feature_cache
    from hadna.train.pretrain import HadPretraining

    cfg_file = pretrain_config(tmp_path, genome_fasta, tmp_path / "pt", teacher=str(nt_teacher))
    cfg = from_dict(PretrainConfig, read_yaml(cfg_file))
    task = HadPretraining(cfg)
    cache = build_feature_cache(cfg, tmp_path / "cache", 8, task.teacher, task.windows, batch_size=4)
    FeatureCache.open(cache)  # intact: opens
    arr = np.lib.format.open_memmap(cache / "train.npy", mode="r+")
    arr[3] = arr[3] + np.float16(1)  # overwritten in place: same shape and dtype
    arr.flush()
    del arr
    with pytest.raises(DataError, match=r"teacher feature cache .*train\.npy: bytes 0-[\d,]+ fail their checksum"):
        FeatureCache.open(cache)
    rc, _, err = run_cli(capsys, ["pretrain", "--config", cfg_file, f"teacher.cache={cache}"])
    assert_one_line_error(rc, err, "fail their checksum")


def test_overwritten_genome_token_cache_is_detected(tmp_path, genome_fasta, caplog):
    from hadna.data.genome import GenomeStore
    from hadna.errors import DataError

    store = GenomeStore.from_fasta(genome_fasta, tmp_path / "gcache")
    original = np.array(store.tokens)
    tokens_file = next((tmp_path / "gcache").glob("genome-*.tokens.npy"))
    arr = np.load(tokens_file, mmap_mode="r+")
    arr[100:200] = np.where(arr[100:200] == 4, 7, 4)  # A <-> T on 100 bases: same shape, same dtype
    arr.flush()
    del arr
    with pytest.raises(DataError, match="genome token cache .* fail their checksum"):
        GenomeStore.load(next((tmp_path / "gcache").glob("genome-*.json")))
    again = GenomeStore.from_fasta(genome_fasta, tmp_path / "gcache")  # training: rebuilt, with a warning
    assert "fail their checksum" in caplog.text and not again.cache_hit
    np.testing.assert_array_equal(np.array(again.tokens), original)


# ------------------------------------------------------------------------------------------------
# 7. Two processes writing one output directory: exactly one runs, the other names the lock holder
# ------------------------------------------------------------------------------------------------

HOLD_SCRIPT = r'''
import sys, time
from pathlib import Path
import hadna.train.launch as launch
from hadna.cli import main

start, hold = Path(sys.argv[1]), Path(sys.argv[2])  # wait for `start` before running; hold the lock until `hold`
run = launch.check_inputs  # the launcher's first step inside the output-directory lock

def held(*args, **kwargs):  # inside the output-directory lock
    while not hold.exists():
        time.sleep(0.02)
    return run(*args, **kwargs)

launch.check_inputs = held
while not start.exists():
    time.sleep(0.02)
sys.exit(main(sys.argv[3:]))
'''


def test_two_pretrain_processes_on_one_directory(tmp_path, genome_fasta):
    """Two real processes, different configs, one output directory. The first takes the lock (and keeps it
    until the test says so); the second then exits 2 naming the first one's pid; the first runs to the end.
    Both import hadna in parallel (signal files order them), so the test costs about one process start."""
    import time

    out = tmp_path / "pt"
    cfg_a = pretrain_config(tmp_path, genome_fasta, out)
    cfg_b = tmp_path / "other.yaml"
    cfg_b.write_text(cfg_a.read_text().replace("seed: 1", "seed: 2"))
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    go_a, go_b, release = tmp_path / "go-a", tmp_path / "go-b", tmp_path / "release"
    go_a.touch()
    procs = [subprocess.Popen([sys.executable, "-c", HOLD_SCRIPT, str(go), str(release), "pretrain", "--config",
                               str(cfg)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for go, cfg in ((go_a, cfg_a), (go_b, cfg_b))]
    first, second = procs
    lock = out / ".hadna.lock"
    deadline = time.monotonic() + 120
    while first.poll() is None and not (lock.is_file() and "pid" in lock.read_text()):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    go_b.touch()  # the second process tries now, while the first holds the lock
    _, err_second = second.communicate(timeout=300)
    release.touch()
    _, err_first = first.communicate(timeout=300)
    assert first.returncode == 0, err_first[-2000:]
    assert_one_line_error(second.returncode, err_second, f"is in use by hadna pid {first.pid} on ")
    assert json.loads((out / "final" / "training_summary.json").read_text())["config"]["train"]["seed"] == 1
    rows = (out / "metrics.csv").read_text().splitlines()
    assert len(rows) == 1 + 2  # a header and one row per step of the first run only
    assert not lock.read_text()  # released: the file no longer names a holder
