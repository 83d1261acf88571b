"""The student's nucleotide vocabulary and byte-level lookup tables.

One token per nucleotide. Ids are fixed (they are baked into checkpoints):

====  =========  ==================================================
id    token      meaning
====  =========  ==================================================
0     ``[PAD]``  padding (never attended to, never read by a convolution)
1     ``[MASK]`` a hidden nucleotide during pre-training
2     ``[CLS]``  optional sequence-start token (off by default)
3     ``[UNK]``  kept for Hugging Face compatibility; never produced by strict encoding
4-8   A C G T N  nucleotides; N = unknown base (IUPAC ambiguity codes map here)
====  =========  ==================================================

The tables below turn raw ASCII bytes into ids with one NumPy indexing operation, which is what
makes tokenising a whole genome fast. ``INVALID`` (255) marks bytes that are not DNA.
"""

from __future__ import annotations

import numpy as np

PAD_TOKEN, MASK_TOKEN, CLS_TOKEN, UNK_TOKEN = "[PAD]", "[MASK]", "[CLS]", "[UNK]"
SPECIAL_TOKENS = (PAD_TOKEN, MASK_TOKEN, CLS_TOKEN, UNK_TOKEN)
NUCLEOTIDES = ("A", "C", "G", "T", "N")
VOCAB = SPECIAL_TOKENS + NUCLEOTIDES
TOKEN_TO_ID = {tok: i for i, tok in enumerate(VOCAB)}

PAD_ID, MASK_ID, CLS_ID, UNK_ID = 0, 1, 2, 3
A_ID, C_ID, G_ID, T_ID, N_ID = 4, 5, 6, 7, 8
VOCAB_SIZE = len(VOCAB)  # 9
#: ids of the nucleotides in the order A C G T N; the reconstruction head predicts these 5 classes.
NUCLEOTIDE_IDS = (A_ID, C_ID, G_ID, T_ID, N_ID)

INVALID = 255

#: IUPAC ambiguity codes that strict encoding maps to N (documented choice: the models have no
#: ambiguity tokens, and N already means "some base").
IUPAC_AMBIGUITY = "RYSWKMBDHV"


def _build_encode_lut() -> np.ndarray:
    lut = np.full(256, INVALID, dtype=np.uint8)
    for base, idx in zip("ACGTN", (A_ID, C_ID, G_ID, T_ID, N_ID)):
        lut[ord(base)] = idx
        lut[ord(base.lower())] = idx  # soft-masked (lowercase) genome sequence
    lut[ord("U")] = lut[ord("u")] = T_ID  # RNA
    for code in IUPAC_AMBIGUITY:
        lut[ord(code)] = lut[ord(code.lower())] = N_ID
    return lut


#: byte -> token id (``INVALID`` for anything that is not a nucleotide code).
ENCODE_LUT = _build_encode_lut()
#: token id -> uppercase character (specials map to "?"; only used for nucleotides).
DECODE_LUT = np.frombuffer(b"????ACGTN", dtype=np.uint8).copy()
#: token id -> id of the complementary nucleotide; specials map to themselves, N to N.
COMPLEMENT_ID = np.arange(VOCAB_SIZE, dtype=np.int64)
COMPLEMENT_ID[[A_ID, C_ID, G_ID, T_ID]] = [T_ID, G_ID, C_ID, A_ID]
