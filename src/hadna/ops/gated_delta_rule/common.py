"""Helpers shared by the chunked kernel's forward (:mod:`.chunk`) and its hand-written backward
(:mod:`.chunk_autograd`): padding to whole chunks, the decay-weighted intra-chunk terms, and small
batched-matmul helpers. Both modules import from here; neither imports the other's internals.

The notation (``gamma``, ``D``, the centred factorisation and ``FACTORIZE_MAX_DECAY``) is explained in
:mod:`.chunk`'s docstring.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

#: the centred factorisation of the decay matrix is used while every chunk's total decay is at most this
FACTORIZE_MAX_DECAY = 120.0


def mT(t: torch.Tensor) -> torch.Tensor:
    """The transpose of the last two dimensions (a view)."""
    return t.transpose(-1, -2)


def mm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Batched matmul of ``[..., r, s]`` and ``[..., s, c]`` with equal batch shapes (transposed views are fine)."""
    return torch.bmm(a.reshape(-1, *a.shape[-2:]), b.reshape(-1, *b.shape[-2:])).view(*a.shape[:-1], b.shape[-1])


def mm_add_(out: torch.Tensor, a: torch.Tensor, b: torch.Tensor, alpha: float = 1.0,
            beta: float = 1.0) -> torch.Tensor:
    """In place ``out = beta * out + alpha * a @ b`` on a contiguous ``out`` (one pass: no temporary)."""
    out.view(-1, *out.shape[-2:]).baddbmm_(a.reshape(-1, *a.shape[-2:]), b.reshape(-1, *b.shape[-2:]),
                                            beta=beta, alpha=alpha)
    return out


class ChunkedInputs(NamedTuple):
    """The inputs padded to whole chunks and viewed per chunk (n chunks of C steps)."""

    q: torch.Tensor          # [Nh, n, C, K]
    k: torch.Tensor          # [Nh, n, C, K]
    v: torch.Tensor          # [Nh, n, C, V]
    beta: torch.Tensor       # [Nh, n, C, 1]
    gamma: torch.Tensor      # [Nh, n, C] cumulative log decay from each chunk's start
    gamma_last: torch.Tensor  # [Nh, n, 1] the chunk's total log decay gamma_C


class DecayTerms(NamedTuple):
    """The decay-weighted intra-chunk tensors of the module docstring (one chunk per [Nh, n] entry).

    On the factorised path every tensor that carries ``e^(gamma_i - m)`` is scaled by ``e^-m``
    (``q_dec``, ``k_rhs`` and hence ``W``); ``e_m`` is then ``e^m`` (``[Nh, n, 1, 1]``) and undoes it on
    the state. On the explicit path ``e_m`` is None, ``decay`` holds ``D`` and ``exp_gamma`` ``e^gamma``.
    """

    q_dec: torch.Tensor      # diag(e^gamma) sQ                         [Nh, n, C, K]
    k_rhs: torch.Tensor      # diag(beta e^gamma) K                     [Nh, n, C, K]
    k_decayed: torch.Tensor  # Kd = diag(e^(gamma_C - gamma)) K (exact)  [Nh, n, C, K]
    A: torch.Tensor          # strictly_lower(diag(beta) (K K^T o D))   [Nh, n, C, C]
    P: torch.Tensor          # (sQ K^T) o D, lower incl. the diagonal   [Nh, n, C, C]
    e_m: torch.Tensor | None
    left: torch.Tensor | None       # factorised: e^(gamma_i - m)      [Nh, n, C, 1]
    right_scale: torch.Tensor | None  # factorised: e^(m - gamma_j)    [Nh, n, C, 1]
    right: torch.Tensor | None      # factorised: e^(m - gamma_j) k_j  [Nh, n, C, K]
    decay: torch.Tensor | None      # explicit: D                      [Nh, n, C, C]
    exp_gamma: torch.Tensor | None  # explicit: e^gamma                [Nh, n, C, 1]


def chunk_inputs(q, k, v, g, beta, chunk_size: int) -> tuple[ChunkedInputs, int]:
    """Pad ``[Nh, T, *]`` inputs to a multiple of the chunk length and view them per chunk; returns C too.

    The chunk length is at most ``chunk_size`` and chosen to waste the least padding: ``n = ceil(T /
    chunk_size)`` chunks of ``C = ceil(T / n)`` steps (T = 100, chunk_size 32: 4 chunks of 25, not 4 of 32
    with 28 padded steps; measured 1.3-1.5x faster at T = 70-100, where benchmark tasks live). The split
    is an execution detail: any C gives the same result up to fp32 rounding.
    """
    Nh, T, K = q.shape
    V = v.shape[-1]
    n_chunks = max(1, -(-T // max(1, chunk_size)))
    C = max(1, -(-T // n_chunks))
    pad = (-T) % C
    if pad:  # padded steps have k = v = beta = g = 0: they leave the state untouched
        q, k, v = (F.pad(x, (0, 0, 0, pad)) for x in (q, k, v))
        g, beta = F.pad(g, (0, pad)), F.pad(beta, (0, pad))
    n = (T + pad) // C
    gamma = g.reshape(Nh, n, C).cumsum(-1)                                  # [Nh, n, C]
    return ChunkedInputs(q.reshape(Nh, n, C, K), k.reshape(Nh, n, C, K), v.reshape(Nh, n, C, V),
                         beta.reshape(Nh, n, C, 1), gamma, gamma[..., -1:]), C


def decay_terms(x: ChunkedInputs, scale: float, factorize_max_decay: float) -> DecayTerms:
    """A, P, the decayed q/k and (factorised path) the e^m bookkeeping; see the module docstring."""
    q, k, beta, gamma, gamma_last = x.q, x.k, x.beta, x.gamma, x.gamma_last
    if gamma.numel() and bool((gamma_last >= -factorize_max_decay).all()):
        # Centred factorisation D_ij = e^(gamma_i - m) e^(m - gamma_j); everything that depends on
        # gamma_i - m carries a factor e^-m, undone on the (small) state tensors below.
        mid = 0.5 * gamma_last[..., None]                                  # m: [Nh, n, 1, 1]
        left = (gamma[..., None] - mid).exp()                              # e^(gamma_i - m)
        right_scale = (mid - gamma[..., None]).exp()                       # e^(m - gamma_j)
        right = k * right_scale                                            # e^(m - gamma_j) k_j
        k_rhs = k * (beta * left)                                          # e^-m diag(beta e^gamma) K
        q_dec = q * (left * scale)                                         # e^-m diag(e^gamma) sQ
        A = torch.matmul(k_rhs, right.transpose(-1, -2)).tril_(-1)         # [Nh, n, C, C]
        P = torch.matmul(q_dec, right.transpose(-1, -2)).tril_()           # (sQ K^T) o D
        k_decayed = right * (gamma_last[..., None] - mid).exp()            # Kd = diag(e^{gamma_C - gamma}) K
        return DecayTerms(q_dec, k_rhs, k_decayed, A, P, mid.exp(), left, right_scale, right, None, None)
    C = gamma.shape[-1]
    causal = torch.ones(C, C, dtype=torch.bool, device=q.device).tril()
    decay = (gamma[..., :, None] - gamma[..., None, :]).masked_fill_(~causal, float("-inf")).exp_()
    exp_gamma = gamma.exp()[..., None]
    k_rhs = k * (beta * exp_gamma)                                         # diag(beta e^gamma) K
    q_dec = q * (exp_gamma * scale)                                        # diag(e^gamma) sQ
    A = (beta * (k @ k.transpose(-1, -2)) * decay).tril_(-1)
    P = ((q @ k.transpose(-1, -2)) * decay).mul_(scale)
    k_decayed = k * (gamma_last - gamma).exp()[..., None]
    return DecayTerms(q_dec, k_rhs, k_decayed, A, P, None, None, None, None, decay, exp_gamma)
