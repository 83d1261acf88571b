"""Public entry point: validates inputs, then runs fla's Triton kernel on CUDA or our PyTorch kernel.

flash-linear-attention (``pip install 'hadna[fla]'``, API range ``>=0.4,<0.7``; 0.6.0's signature and
semantics checked from its source) is optional. It is used only when the tensors live on a CUDA device,
``fla`` imports and its ``chunk_gated_delta_rule`` has the signature and defaults hadna relies on
(:func:`fla_signature_problems`: log-space ``g``, post-sigmoid ``beta``, ``[K, V]`` state, no in-kernel
q/k normalisation); otherwise the PyTorch kernel runs, with a one-line warning saying why. Set
``HADNA_DISABLE_FLA=1`` (or pass ``backend="torch"``) to force the PyTorch path anywhere.
"""

from __future__ import annotations

import functools
import inspect
import os
import warnings
from typing import Any, Callable, Literal

import torch

from .chunk import GradImpl, InferenceImpl, chunk_gated_delta_rule_torch

#: Parameters of fla's kernel that hadna passes, in this positional order, then by keyword.
_FLA_POSITIONAL = ("q", "k", "v", "g", "beta")
_FLA_KEYWORDS = ("scale", "initial_state", "output_final_state")
#: Optional fla parameters whose default must keep hadna's semantics (absent in older releases).
_FLA_DEFAULTS: dict[str, Any] = {"use_qk_l2norm_in_kernel": False, "use_beta_sigmoid_in_kernel": False,
                                 "state_v_first": False, "allow_neg_eigval": False}


def fla_signature_problems(kernel: Callable[..., Any]) -> list[str]:
    """What in ``kernel``'s signature differs from the fla API hadna calls (empty list: compatible)."""
    try:
        params = inspect.signature(kernel).parameters
    except (TypeError, ValueError):
        return ["its signature cannot be inspected"]
    names = list(params)
    problems = []
    if names[:len(_FLA_POSITIONAL)] != list(_FLA_POSITIONAL):
        problems.append(f"positional parameters are {names[:5]}, expected {list(_FLA_POSITIONAL)}")
    problems += [f"no parameter {k!r}" for k in _FLA_KEYWORDS if k not in params]
    problems += [f"{k} defaults to {params[k].default!r}, expected {v!r}" for k, v in _FLA_DEFAULTS.items()
                 if k in params and params[k].default != v]
    return problems


@functools.lru_cache(maxsize=None)
def _fla_kernel():
    try:
        from fla.ops.gated_delta_rule import chunk_gated_delta_rule as fla_chunk  # type: ignore
    except Exception:  # ImportError, or a broken Triton install
        return None
    problems = fla_signature_problems(fla_chunk)
    if problems:
        warnings.warn("flash-linear-attention's chunk_gated_delta_rule differs from the API hadna supports ("
                      + "; ".join(problems) + "); using hadna's PyTorch kernel", RuntimeWarning, stacklevel=2)
        return None
    return fla_chunk


def fla_available() -> bool:
    """True when flash-linear-attention's gated delta rule kernel can be imported."""
    return _fla_kernel() is not None


def _check_inputs(q, k, v, g, beta, initial_state, head_first: bool = False) -> None:
    dims = "B, H, T" if head_first else "B, T, H"
    if q.dim() != 4 or k.shape != q.shape:
        raise ValueError(f"q and k must be [{dims}, K] of the same shape; got q {tuple(q.shape)}, k {tuple(k.shape)}")
    lead = tuple(q.shape[:3])
    B, H, K = q.shape[0], q.shape[1 if head_first else 2], q.shape[3]
    sizes = ", ".join(map(str, lead))
    if v.dim() != 4 or tuple(v.shape[:3]) != lead:
        raise ValueError(f"v must be [{dims}, V] = [{sizes}, V]; got {tuple(v.shape)}")
    for name, x in (("g", g), ("beta", beta)):
        if tuple(x.shape) != lead:
            raise ValueError(f"{name} must be [{dims}] = [{sizes}]; got {tuple(x.shape)}")
    if initial_state is not None and initial_state.shape != (B, H, K, v.shape[-1]):
        raise ValueError(f"initial_state must be [B, H, K, V] = [{B}, {H}, {K}, {v.shape[-1]}]; "
                         f"got {tuple(initial_state.shape)}")


def chunk_gated_delta_rule(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    g: torch.Tensor,
    beta: torch.Tensor,
    scale: float | None = None,
    initial_state: torch.Tensor | None = None,
    output_final_state: bool = False,
    chunk_size: int = 64,
    backend: Literal["auto", "torch", "fla"] = "auto",
    grad_impl: GradImpl = "custom",
    inference_impl: InferenceImpl = "inverse",
    head_first: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Gated delta rule, chunkwise parallel, with flash-linear-attention's layout and semantics.

    Args:
        q: ``[B, T, H, K]`` queries; k: ``[B, T, H, K]`` keys (normalising q and k is the caller's job).
        v: ``[B, T, H, V]`` values.
        g: ``[B, T, H]`` log decay (<= 0); beta: ``[B, T, H]`` write strength in [0, 1].
        (With ``head_first=True`` every input is head-major instead: ``[B, H, T, *]`` and ``[B, H, T]``;
        the PyTorch kernel works in that layout, so a caller holding it saves two copies.)
        scale: query scale, default ``K ** -0.5``.
        initial_state: ``[B, H, K, V]`` state before the first step, or None for zeros.
        output_final_state: also return the state after the last step.
        chunk_size: the most tokens per chunk for the PyTorch kernel; any T works: it is split into
            ``n = ceil(T / chunk_size)`` chunks of ``ceil(T / n)`` tokens (the least padding).
        backend: "auto" (fla on CUDA when importable, else PyTorch), "torch", or "fla".
        grad_impl: PyTorch kernel only: "custom" (hand-written backward) or "autograd" (autograd through the
            forward ops).
        inference_impl: PyTorch kernel only, without gradients: "inverse" or "solve" (see
            :mod:`hadna.ops.gated_delta_rule.chunk`).
        head_first: inputs and ``o`` in the ``[B, H, T, *]`` layout.

    Returns:
        o: ``[B, T, H, V]`` (``[B, H, T, V]`` if head_first) in q's dtype; final_state: ``[B, H, K, V]``
        fp32, or None.

    Per step t: ``S = exp(g_t) S``; ``S = S + beta_t k_t (v_t - S^T k_t)^T``; ``o_t = scale q_t^T S``.
    """
    _check_inputs(q, k, v, g, beta, initial_state, head_first)
    if scale is None:
        scale = q.shape[-1] ** -0.5
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    use_fla = backend == "fla" or (
        backend == "auto" and q.is_cuda and os.environ.get("HADNA_DISABLE_FLA", "0") != "1" and fla_available()
    )
    if use_fla:
        kernel = _fla_kernel()
        if kernel is None:
            raise RuntimeError("backend='fla' requested but flash-linear-attention is not importable "
                               "(pip install 'hadna[fla]')")
        if head_first:  # fla's kernel is token-major
            q, k, v, g, beta = (x.transpose(1, 2) for x in (q, k, v, g, beta))
        o, final_state = kernel(q, k, v, g, beta, scale=scale, initial_state=initial_state,
                                output_final_state=output_final_state)
        return (o.transpose(1, 2) if head_first else o), (final_state.float() if final_state is not None else None)
    if backend not in ("auto", "torch"):
        raise ValueError(f"unknown backend {backend!r}; use 'auto', 'torch' or 'fla'")
    return chunk_gated_delta_rule_torch(q, k, v, g, beta, scale, initial_state, output_final_state, chunk_size,
                                        grad_impl, inference_impl, head_first)
