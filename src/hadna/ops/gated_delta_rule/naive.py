"""Naive per-step recurrent gated delta rule: the slow, obviously-correct twin of the chunked op.

Used by the tests (equivalence of outputs and all gradients) and by ``benchmarks/gdn_kernel.py``
(the speed baseline). One Python-level step per token; never use it for real work.
"""

from __future__ import annotations

import torch


def naive_recurrent_gated_delta_rule(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    g: torch.Tensor,
    beta: torch.Tensor,
    scale: float | None = None,
    initial_state: torch.Tensor | None = None,
    output_final_state: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Step-by-step reference with flash-linear-attention semantics (fp32 accumulation).

    Args:
        q, k: ``[B, T, H, K]``; v: ``[B, T, H, V]``; g (log decay, <= 0), beta: ``[B, T, H]``.
        initial_state: ``[B, H, K, V]`` or None (zeros).
    Returns:
        o: ``[B, T, H, V]`` in q's dtype; final state ``[B, H, K, V]`` (fp32) if requested.

    Per step: ``S = exp(g_t) S``; ``S = S + beta_t k_t (v_t - S^T k_t)^T``; ``o_t = scale q_t^T S``.
    """
    B, T, H, K = q.shape
    V = v.shape[-1]
    scale = K**-0.5 if scale is None else scale
    q, k, v, g, beta = (x.float() for x in (q, k, v, g, beta))
    S = q.new_zeros(B, H, K, V) if initial_state is None else initial_state.float()
    outs = []
    for t in range(T):
        S = S * g[:, t].exp()[..., None, None]                              # decay      [B, H, K, V]
        k_t = k[:, t]                                                       # [B, H, K]
        u = beta[:, t, :, None] * (v[:, t] - torch.einsum("bhkv,bhk->bhv", S, k_t))  # [B, H, V]
        S = S + k_t[..., :, None] * u[..., None, :]                         # delta update
        outs.append(torch.einsum("bhkv,bhk->bhv", S, q[:, t] * scale))      # [B, H, V]
    o = torch.stack(outs, dim=1) if outs else v.new_zeros(B, 0, H, V)
    return o.to(v.dtype if v.dtype == q.dtype else q.dtype), (S if output_final_state else None)
