"""Chunkwise-parallel gated delta rule in pure PyTorch (the CPU fast path).

Notation (per batch element and head; rows are time steps inside one chunk of C tokens):
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
used to form ``U`` and ``O`` for all chunks at once. Backward is PyTorch autograd through these ops.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


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
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Pure-PyTorch chunked op; arguments as :func:`hadna.ops.chunk_gated_delta_rule`."""
    B, T, H, K = q.shape
    V = v.shape[-1]
    out_dtype = q.dtype
    C = max(1, min(chunk_size, T))  # short sequences: one chunk of exactly T, no padding work
    pad = (-T) % C
    N = (T + pad) // C

    # [B, T, H, *] -> [B, H, T, *] in fp32. Padded steps have k = v = beta = g = 0: they leave the
    # state untouched, so the final state is exact.
    def prep(x: torch.Tensor) -> torch.Tensor:
        x = x.transpose(1, 2).float()
        if pad:
            x = F.pad(x, (0, 0, 0, pad) if x.dim() == 4 else (0, pad))
        return x

    q, k, v, g, beta = prep(q) * scale, prep(k), prep(v), prep(g), prep(beta)
    BH = B * H
    q = q.reshape(BH, N, C, K)
    k = k.reshape(BH, N, C, K)
    v = v.reshape(BH, N, C, V)
    beta = beta.reshape(BH, N, C, 1)
    gamma = g.reshape(BH, N, C).cumsum(-1)                                  # [BH, N, C]

    causal = torch.ones(C, C, dtype=torch.bool, device=q.device).tril()
    decay = (gamma[..., :, None] - gamma[..., None, :]).masked_fill(~causal, float("-inf")).exp()  # D [BH,N,C,C]
    exp_gamma = gamma.exp()[..., None]                                     # [BH, N, C, 1]

    # Intra-chunk WY form for all chunks at once.
    A = (beta * (k @ k.transpose(-1, -2)) * decay).tril(-1)                # [BH, N, C, C]
    rhs = torch.cat([k * (beta * exp_gamma), v * beta], dim=-1)            # [BH, N, C, K+V]
    wu = torch.linalg.solve_triangular(A, rhs, upper=False, unitriangular=True)
    W, U0 = wu.split([K, V], dim=-1)                                       # [BH,N,C,K], [BH,N,C,V]

    gamma_last = gamma[..., -1:]                                           # [BH, N, 1]
    k_decayed = k * (gamma_last - gamma).exp()[..., None]                  # Kd [BH, N, C, K]
    eye = torch.eye(K, dtype=q.dtype, device=q.device)
    M = gamma_last.exp()[..., None] * eye - k_decayed.transpose(-1, -2) @ W  # [BH, N, K, K]
    Nk = k_decayed.transpose(-1, -2) @ U0                                  # [BH, N, K, V]

    # Sequential inter-chunk recurrence: S_{n+1} = M_n S_n + N_n.
    if initial_state is None:
        S = q.new_zeros(BH, K, V)
    else:
        S = initial_state.float().reshape(BH, K, V)
    starts = []
    for n in range(N):
        starts.append(S)
        S = torch.baddbmm(Nk[:, n], M[:, n], S)
    S0 = torch.stack(starts, dim=1)                                        # [BH, N, K, V]

    U = U0 - W @ S0                                                        # [BH, N, C, V]
    O = (q * exp_gamma) @ S0 + ((q @ k.transpose(-1, -2)) * decay) @ U     # [BH, N, C, V]
    o = O.reshape(B, H, N * C, V)[:, :, :T].transpose(1, 2).to(out_dtype)  # [B, T, H, V]
    final_state = S.reshape(B, H, K, V) if output_final_state else None
    return o, final_state
