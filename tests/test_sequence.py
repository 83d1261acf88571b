"""One reverse complement (hadna.sequence) for strings, RC augmentation of genome windows and RC averaging."""

from __future__ import annotations

import numpy as np
import torch

from hadna import vocab
from hadna.data import reverse_complement_ids as augmentation_rc
from hadna.models import reverse_complement_ids as averaging_rc
from hadna.sequence import decode_ids, encode_sequence, reverse_complement

A, C, G, T, N = vocab.A_ID, vocab.C_ID, vocab.G_ID, vocab.T_ID, vocab.N_ID
P, CLS, MASK, UNK = vocab.PAD_ID, vocab.CLS_ID, vocab.MASK_ID, vocab.UNK_ID


def test_mask_and_unk_move_with_their_position():
    """A [MASK]/[UNK] stands for an unknown base at its position: under RC it goes to the mirrored
    position like any base and stays [MASK]/[UNK]; [CLS] and [PAD] keep their places."""
    ids = torch.tensor([[CLS, A, MASK, C, UNK, G, P], [P, CLS, T, T, MASK, N, A]])
    expected = [[CLS, C, UNK, G, MASK, T, P], [P, CLS, T, N, MASK, A, A]]
    assert reverse_complement(ids).tolist() == expected
    assert averaging_rc(ids, (ids != P).long()).tolist() == expected  # RC test-time averaging
    assert torch.equal(reverse_complement(reverse_complement(ids)), ids)


def test_averaging_augmentation_and_strings_agree():
    rng = np.random.default_rng(0)
    windows = rng.integers(A, N + 1, size=(4, 33)).astype(np.uint8)  # genome windows: nucleotides only
    windows[1, 5] = MASK
    flipped = augmentation_rc(windows)
    assert flipped.dtype == np.uint8
    np.testing.assert_array_equal(flipped, averaging_rc(torch.from_numpy(windows.astype(np.int64))).numpy())
    plain = windows[0]
    assert decode_ids(augmentation_rc(plain)) == reverse_complement(decode_ids(plain))
    np.testing.assert_array_equal(augmentation_rc(plain), encode_sequence(reverse_complement(decode_ids(plain))))
