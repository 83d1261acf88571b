"""The students shipped inside hadna: they load offline by name, are the models their cards describe, embed exactly
as they did when they were packed, and (the recommended one) fine-tune through the real command.

``had-1m-primates`` is the student hadna recommends; ``mlm-1m-primates`` is its equal-budget masked-LM baseline,
shipped so that the comparison can be rerun offline. The expected embeddings below were computed once from the
packed weights (fp16 on disk, fp32 in memory) with ``reference_embedding``; they change only if the shipped
weights or the model's forward pass change, and either must then be a deliberate decision (re-pack the student,
update these numbers, say why in the commit).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from hadna.models import HadForSequenceClassification, HadModel
from hadna.models.pretrained import available_pretrained, pretrained_path
from hadna.sequence import encode_sequence

NAME = "had-1m-primates"
N_PARAMS = 1_096_480  # had-1m: 4 bidirectional GDN blocks + 1 attention block, width 128
# per shipped student: mean-pooled last hidden state of reference_sequence(), dimensions 0..7, and its L2 norm (fp32)
EXPECTED = {
    "had-1m-primates": ([-0.070778, -0.057147, 1.456047, -0.090556, -0.483181, 0.163565, -0.028651, -0.010791],
                        5.998896),
    "mlm-1m-primates": ([0.05673, 0.176672, -0.026133, 0.577298, 0.107775, -0.657555, 0.666068, 0.266178], 4.481699),
}


def reference_sequence(length: int = 300) -> str:
    return "".join(np.random.default_rng(2026).choice(list("ACGT"), length))


@torch.no_grad()
def reference_embedding(model: HadModel) -> torch.Tensor:
    ids = torch.as_tensor(encode_sequence(reference_sequence()), dtype=torch.long)[None]
    return model(input_ids=ids).last_hidden_state.mean(dim=1)[0]


@pytest.fixture(scope="module", params=sorted(EXPECTED))
def shipped(request) -> tuple[str, HadModel]:
    name = request.param
    assert name in available_pretrained(), f"pretrained:{name} is missing from hadna/resources/pretrained"
    return name, HadModel.from_pretrained(f"pretrained:{name}").eval()


def test_exactly_the_tested_students_are_shipped():
    assert available_pretrained() == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_the_shipped_student_is_small_fp16_on_disk_and_has_a_card(name):
    d = pretrained_path(f"pretrained:{name}")
    size = (d / "model.safetensors").stat().st_size
    assert size < 5 * 2**20, f"{size:,} bytes"
    assert abs(size - 2 * N_PARAMS) < 64 * 1024  # fp16: two bytes per parameter plus the header
    card = (d / "README.md").read_text()
    for part in ("## Training", "## Results", "## Intended use", "## Licence", f"pretrained:{name}"):
        assert part in card, part
    assert json.loads((d / "config.json").read_text())["model_type"] == "hadna"


def test_the_shipped_student_loads_by_name_with_the_expected_size_and_embedding(shipped):
    name, model = shipped
    head, norm = EXPECTED[name]
    assert sum(p.numel() for p in model.parameters()) == N_PARAMS
    assert next(model.parameters()).dtype == torch.float32
    emb = reference_embedding(model)
    torch.testing.assert_close(emb[:8], torch.tensor(head), rtol=1e-4, atol=2e-5)
    assert emb.norm().item() == pytest.approx(norm, rel=1e-4)


def test_the_shipped_student_is_not_a_random_init(shipped):
    _, model = shipped
    torch.manual_seed(0)
    fresh = HadModel(model.config).eval()
    a, b = reference_embedding(model), reference_embedding(fresh)
    assert torch.nn.functional.cosine_similarity(a, b, dim=0) < 0.9


def test_the_two_shipped_students_differ():
    had, mlm = (reference_embedding(HadModel.from_pretrained(f"pretrained:{n}").eval()) for n in sorted(EXPECTED))
    assert torch.nn.functional.cosine_similarity(had, mlm, dim=0) < 0.9


def test_the_shipped_student_fine_tunes_through_the_cli(tmp_path):
    from hadna.cli import main
    from hadna.eval.results import RunRecord
    import pandas as pd

    rng = np.random.default_rng(0)
    seqs = ["".join(rng.choice(list("GC" if i % 2 else "AT"), 40)) for i in range(48)]
    df = pd.DataFrame({"sequence": seqs, "label": np.arange(48) % 2})
    df.iloc[:36].to_csv(tmp_path / "train.csv", index=False)
    df.iloc[36:].to_csv(tmp_path / "test.csv", index=False)
    out = tmp_path / "runs"
    argv = ["finetune", "--model", f"pretrained:{NAME}", "--train-file", str(tmp_path / "train.csv"),
            "--test-file", str(tmp_path / "test.csv"), "--task-name", "gc", "--mode", "finetune", "--seeds", "1",
            "--epochs", "2", "--lr", "2e-3", "--batch-size", "8", "--output-dir", str(out)]
    assert main(argv) == 0
    rec = RunRecord.load(next((out / "gc").glob("*.finetune.json")))
    assert rec.done_seeds == [1] and rec.results[0].epochs_run >= 1
    assert rec.results[0].metrics["accuracy"] > 0.5  # GC-rich vs AT-rich is easy after 2 epochs


def test_a_classifier_starts_from_the_shipped_backbone():
    clf = HadForSequenceClassification.from_pretrained(f"pretrained:{NAME}", num_labels=3)
    ref = HadModel.from_pretrained(f"pretrained:{NAME}")
    for name, p in ref.state_dict().items():
        assert torch.equal(clf.had.state_dict()[name], p), name
