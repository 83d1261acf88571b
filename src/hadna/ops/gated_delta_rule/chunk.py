"""Chunkwise-parallel gated delta rule in pure PyTorch (the CPU fast path).

Notation (per sequence-head; rows are time steps inside one chunk of C tokens):
``gamma_i = g_1 + ... + g_i`` (cumulative log decay from the chunk start),
``D_ij = exp(gamma_i - gamma_j)`` for ``j <= i`` else 0.

Unrolling the recurrence over a chunk that starts in state ``S0`` gives the WY/UT form

    A  = strictly_lower(diag(beta) (K K^T o D))          (C x C)
    W  = (I + A)^-1 diag(beta exp(gamma)) K               (C x K)
    U0 = (I + A)^-1 diag(beta) V                          (C x V)
    U  = U0 - W S0                                        ("new values")
    O  = diag(exp(gamma)) (sQ) S0 + ((sQ K^T) o D) U
    S_next = exp(gamma_C) S0 + Kd^T U,   Kd = diag(exp(gamma_C - gamma)) K

Everything except the state hand-off is independent of ``S0``, so it is computed for all chunks at once
(one batched triangular solve). Substituting ``U`` into ``S_next`` gives an affine recurrence

    S_next = M S0 + N,   M = exp(gamma_C) I - Kd^T W  (K x K),   N = Kd^T U0  (K x V)

so the only sequential work is one small batched matmul-add per chunk. The chunk start states are then
used to form ``U`` and ``O`` for all chunks at once.

Gradients: by default a hand-written backward (:mod:`.chunk_autograd`: the adjoint recurrence in reverse
over chunks, everything else batched; ~1.6x faster forward+backward than autograd through these ops on
CPU). ``grad_impl="autograd"`` selects plain PyTorch autograd through :func:`_chunk_forward_autograd`.
Without gradients, ``inference_impl`` picks the forward: the explicit-inverse one of the hand-written
path (default) or :func:`_chunk_forward_autograd`'s triangular solve. The helpers both paths share
(:func:`~.common.chunk_inputs`, :func:`~.common.decay_terms`) live in :mod:`.common`.

On CPU the op is memory-bound, so the C x C decay weighting is folded into the matmuls when it is safe:
with ``m`` the chunk's mid-point log decay, ``D_ij = exp(gamma_i - m) exp(m - gamma_j)``, i.e.
``(K K^T) o D = (exp(gamma - m) K)(exp(m - gamma) K)^T``. The factors must stay well inside fp32's range,
so this is used only when every chunk's total decay ``-gamma_C`` is at most ``FACTORIZE_MAX_DECAY`` (120:
factors within exp(+-60) ~ 1e+-26); otherwise ``D`` is formed explicitly (exp of masked differences).
"""

from __future__ import annotations

from typing import Literal

import torch

from .chunk_autograd import chunk_gated_delta_rule_custom_grad, explicit_inverse_forward
from .common import FACTORIZE_MAX_DECAY, chunk_inputs, decay_terms

#: how gradients of the kernel are computed: the hand-written backward or autograd through the forward ops
GradImpl = Literal["custom", "autograd"]
#: forward without gradients: "inverse" (T = (I + A)^-1 formed by a blocked inverse, then matmuls) or
#: "solve" (one wide batched triangular solve; the autograd twin's forward)
InferenceImpl = Literal["inverse", "solve"]
GRAD_IMPLS: tuple[str, ...] = ("custom", "autograd")
INFERENCE_IMPLS: tuple[str, ...] = ("inverse", "solve")


def chunk_gated_delta_rule_torch(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    g: torch.Tensor,
    beta: torch.Tensor,
    scale: float,
    initial_state: torch.Tensor | None = None,
    output_final_state: bool = False,
    chunk_size: int = 64,
    grad_impl: GradImpl = "custom",
    inference_impl: InferenceImpl = "inverse",
    head_first: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Pure-PyTorch chunked op, ``[B, T, H, *]`` layout (``[B, H, T, *]`` if ``head_first``); arguments as
    :func:`hadna.ops.chunk_gated_delta_rule`."""
    if not head_first:
        q, k, v, g, beta = (x.transpose(1, 2) for x in (q, k, v, g, beta))  # views: [B, H, T, *]
    B, H, T, K = q.shape
    V = v.shape[-1]

    def flat(x: torch.Tensor) -> torch.Tensor:  # [B, H, T, *] -> [B*H, T, *] fp32, at most one copy
        x = x.float()
        return x.reshape(B * H, T, *x.shape[3:])

    h0 = None if initial_state is None else initial_state.float().reshape(B * H, K, V)
    o, state = chunk_gated_delta_rule_head_first(flat(q), flat(k), flat(v), flat(g), flat(beta), scale, h0,
                                                 chunk_size, grad_impl=grad_impl, inference_impl=inference_impl)
    o = o.view(B, H, T, V)
    o = (o if head_first else o.transpose(1, 2).contiguous()).to(q.dtype)     # back to the caller's layout
    return o, (state.view(B, H, K, V) if output_final_state else None)


def chunk_gated_delta_rule_head_first(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    g: torch.Tensor,
    beta: torch.Tensor,
    scale: float,
    initial_state: torch.Tensor | None = None,
    chunk_size: int = 64,
    factorize_max_decay: float = FACTORIZE_MAX_DECAY,
    grad_impl: GradImpl = "custom",
    inference_impl: InferenceImpl = "inverse",
) -> tuple[torch.Tensor, torch.Tensor]:
    """The kernel on head-first fp32 tensors (callers that already hold this layout skip two copies).

    q, k: ``[N, T, K]``; v: ``[N, T, V]``; g, beta: ``[N, T]`` (N = batch x heads); initial_state
    ``[N, K, V]`` or None. Returns o ``[N, T, V]`` and the final state ``[N, K, V]`` (both fp32).

    grad_impl: how gradients are computed when one is needed: "custom" (the hand-written backward of
    :mod:`.chunk_autograd`) or "autograd" (PyTorch autograd through the forward ops). Without gradients
    neither matters: ``inference_impl`` ("inverse" or "solve", see :data:`InferenceImpl`) picks the forward.
    """
    if grad_impl not in GRAD_IMPLS:
        raise ValueError(f"grad_impl must be 'custom' or 'autograd', got {grad_impl!r}")
    if inference_impl not in INFERENCE_IMPLS:
        raise ValueError(f"inference_impl must be 'inverse' or 'solve', got {inference_impl!r}")
    needs_grad = torch.is_grad_enabled() and any(
        x is not None and x.requires_grad for x in (q, k, v, g, beta, initial_state))
    if grad_impl == "custom" and q.shape[1] and needs_grad:
        return chunk_gated_delta_rule_custom_grad(q, k, v, g, beta, scale, initial_state, chunk_size,
                                                  factorize_max_decay)
    if inference_impl == "inverse" and q.shape[1] and not needs_grad:
        h0 = None if initial_state is None else initial_state.to(q.dtype)
        o, state, _ = explicit_inverse_forward(q, k, v, g, beta, h0, scale, chunk_size, factorize_max_decay)
        return o, state
    return _chunk_forward_autograd(q, k, v, g, beta, scale, initial_state, chunk_size, factorize_max_decay)


def _chunk_forward_autograd(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    g: torch.Tensor,
    beta: torch.Tensor,
    scale: float,
    initial_state: torch.Tensor | None = None,
    chunk_size: int = 64,
    factorize_max_decay: float = FACTORIZE_MAX_DECAY,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The forward of :func:`chunk_gated_delta_rule_head_first` as plain differentiable ops.

    This is the inference path, and the "autograd" twin of the hand-written backward (its gradients are
    PyTorch autograd's).
    """
    Nh, T, K = q.shape
    V = v.shape[-1]
    x, C = chunk_inputs(q, k, v, g, beta, chunk_size)
    n = x.gamma.shape[1]
    d = decay_terms(x, scale, factorize_max_decay)
    e_m = d.e_m

    # Intra-chunk WY form for all chunks at once: one batched unit-lower-triangular solve.
    # wu = [W | U0] (W scaled by e^-m on the factorised path): [Nh, n, C, K+V]
    wu = torch.linalg.solve_triangular(d.A, torch.cat([d.k_rhs, x.v * x.beta], dim=-1), upper=False,
                                       unitriangular=True)
    W, U0 = wu.split([K, V], dim=-1)
    MN = d.k_decayed.transpose(-1, -2) @ wu                                # [Kd^T W | Kd^T U0]: [Nh,n,K,K+V]
    KdW = MN[..., :K] if e_m is None else MN[..., :K] * e_m
    eye = torch.eye(K, dtype=q.dtype, device=q.device)
    M = x.gamma_last.exp()[..., None] * eye - KdW                          # [Nh, n, K, K]
    Nk = MN[..., K:]                                                       # [Nh, n, K, V]

    # Sequential inter-chunk recurrence: S_{i+1} = M_i S_i + N_i.
    S = q.new_zeros(Nh, K, V) if initial_state is None else initial_state.to(q.dtype)
    starts = []
    for i in range(n):
        starts.append(S)
        S = torch.baddbmm(Nk[:, i], M[:, i], S)
    S0 = torch.stack(starts, dim=1) if starts else q.new_zeros(Nh, 0, K, V)  # [Nh, n, K, V]
    if e_m is not None:
        S0 = S0 * e_m                                                      # so that W S0, q_dec S0 are exact

    U = torch.matmul(W, S0).neg_().add_(U0)                                # U0 - W S0: [Nh, n, C, V]
    O = torch.matmul(d.P, U).add_(torch.matmul(d.q_dec, S0))               # e^g sQ S0 + P U
    return O.reshape(Nh, n * C, V)[:, :T], S
