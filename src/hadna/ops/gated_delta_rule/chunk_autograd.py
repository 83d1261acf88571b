"""Hand-written backward for the chunked gated delta rule (a ``torch.autograd.Function``).

Forward: the equations of :mod:`.chunk` (its ``chunk_inputs``/``decay_terms``), run without an autograd
graph, keeping what the backward needs. Per chunk (rows = its C steps; on the factorised path ``'`` marks
the ``e^-m``-scaled tensors, exact once paired: ``W' S0' = W S0``, ``q_dec' S0' = q_dec S0``):

    X = [k_rhs | diag(beta) V],  [W | U0] = T X  with  T = (I + A)^-1,  k_rhs = diag(beta e^gamma) K
    U = U0 - W S0,   O = q_dec S0 + P U,   S_next = e^(gamma_C) S0 + Kd^T U = M S0 + N

Backward, given dO (all chunks) and dS_final; everything but step 2 is batched over all chunks.

1. What a chunk's start state receives from the chunk's own outputs: ``R = q_dec^T dO - W^T (P^T dO)``.
2. Adjoint of ``S_{i+1} = M_i S_i + N_i``, in reverse over chunks (dSn_i = gradient of chunk i's end
   state): ``dSn_{n-1} = dS_final``, ``dSn_{i-1} = M_i^T dSn_i + R_i``; ``d initial_state = M_0^T dSn_0 + R_0``.
3. New values: ``dU = P^T dO + Kd dSn``, ``dW = -dU S0^T``, ``dU0 = dU``.
4. Solve adjoint: ``[W | U0] = T X`` and ``dT = -T dA T`` give ``dX = T^T [dW | dU0]`` and
   ``dA = -strictly_lower(dX [W | U0]^T)``; then ``dv = beta o dX_v``, ``dbeta += rowsum(dX_v o V)``.
5. ``dP = lower(dO U^T)``, ``dq_dec = dO S0^T``, ``dKd = U dSn^T``; the state's own decay adds
   ``e^(gamma_C) <S0, dSn>`` to ``d gamma_C``.
6. Back through the decay weighting to q, k, beta and gamma (= cumsum of g within the chunk):

   Factorised path: ``A = lower(Kl Kr^T)``, ``P = lower(Qd Kr^T)``, ``Kd = c Kr`` with ``Kl = k_rhs'``,
   ``Qd = q_dec'``, ``Kr = e^(m - gamma) K``, ``c = e^(gamma_C - m)``. Then ``dKl = dX_k + dA Kr``,
   ``dQd = dq_dec + dP Kr``, ``dKr = dA^T Kl + dP^T Qd + c dKd``, and k, q, beta follow from the row
   scalings. Each of these tensors is row-scaled by ``e^(+gamma_i)`` (Kl, Qd) or ``e^(-gamma_i)`` (Kr), so
   ``d gamma = rowsum(dKl o Kl) + rowsum(dQd o Qd) - rowsum(dKr o Kr)``, ``d gamma_C += sum(dKd o Kd)``,
   and ``dg`` = suffix sums of ``d gamma``. The mid-point m is held fixed (the result does not depend on
   it), and every product stays within the forward's ranges (row scalings within e^+-60).

   Explicit path (``A = diag(beta)(K K^T) o D``, ``P = s (Q K^T) o D``): with ``GA = dA o D``,
   ``GP = dP o D``: ``dk += diag(beta) GA K + GA^T diag(beta) K + s GP^T Q``, ``dq += s GP K``,
   ``dbeta += rowsum(K o GA K)``. For dg the suffix-sum form above would cancel large equal terms (with
   strong decays gamma reaches ~-2000 within a chunk and dg is lost entirely, as it is by autograd through
   the forward), so dg_t sums only the terms that depend on g_t (:func:`_g_grad`): ``e^(gamma_i)``-scaled
   ones for ``i >= t``, ``e^(gamma_C - gamma_j)``-scaled ones for ``j < t``, ``e^(gamma_C)``-scaled ones,
   and ``E = dA o A + dP o P`` over ``i >= t > j`` (a cumulative sum over j, masked, summed over i).

Solve: T = (I + A)^-1 is formed once in the forward by block forward substitution (one batched LAPACK
solve for the 16 x 16 diagonal blocks, matmuls for the rest). On CPU a batched triangular solve with many
right-hand sides is several times slower than a matmul of the same size, and the backward needs the
transposed solve too; with T explicit, both are matmuls.

Saved for backward: the forward's intermediates (A, P, T, W, U0, U, chunk start states, M, decayed q/k);
nothing is recomputed. Padding steps have k = v = beta = g = 0 and their gradients are dropped. The
backward is not itself differentiable (no double backward: use ``grad_impl="autograd"`` for that).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from .common import chunk_inputs, decay_terms, mm, mm_add_, mT

INVERSE_BLOCK = 16


def unit_lower_inverse(A: torch.Tensor, block: int = INVERSE_BLOCK) -> torch.Tensor:
    """``(I + A)^-1`` for strictly lower triangular A: ``[..., C, C]`` (a fresh tensor).

    Block forward substitution: the whole ``block x block`` diagonal blocks are inverted by one batched
    LAPACK solve, the block rows below them by ``T[i, :i] = -T_ii A[i, :i] T[:i, :i]`` (matmuls).
    """
    C = A.shape[-1]
    b = min(block, C)
    eye = torch.eye(b, dtype=A.dtype, device=A.device)
    if C == b:
        return torch.linalg.solve_triangular(A, eye.expand(A.shape), upper=False, unitriangular=True)
    nb = -(-C // b)                                                    # block rows; the last may be short
    T = torch.empty_like(A)
    whole = C // b
    blocks = A[..., : whole * b, : whole * b].unflatten(-1, (whole, b)).unflatten(-3, (whole, b))
    diag = torch.diagonal(blocks, dim1=-4, dim2=-2).movedim(-1, -3)   # [..., whole, b, b] (a view)
    diag_inv = torch.linalg.solve_triangular(diag, eye.expand(diag.shape), upper=False, unitriangular=True)
    for i in range(nb):
        lo, hi = i * b, min(C, (i + 1) * b)
        if i < whole:
            t_ii = diag_inv[..., i, :, :]
        else:  # the short last block
            t_ii = torch.linalg.solve_triangular(A[..., lo:, lo:], eye[: hi - lo, : hi - lo].expand(
                *A.shape[:-2], hi - lo, hi - lo), upper=False, unitriangular=True)
        T[..., lo:hi, lo:hi] = t_ii
        T[..., lo:hi, hi:] = 0.0                                       # (an empty slice on the last row)
        if i:
            T[..., lo:hi, :lo] = torch.matmul(t_ii, torch.matmul(A[..., lo:hi, :lo], T[..., :lo, :lo])).neg_()
    return T


def _g_grad(rho: torch.Tensor, kappa: torch.Tensor, sigma: torch.Tensor, E: torch.Tensor) -> torch.Tensor:
    """dg per chunk from its four kinds of decay dependence, summing only the terms that depend on g_t.

    rho ``[Nh, n, C]``: terms scaled by ``e^(gamma_i)`` (depend on g_1..g_i: suffix sums);
    kappa ``[Nh, n, C]``: terms scaled by ``e^(gamma_C - gamma_j)`` (depend on g_(j+1)..g_C: exclusive
    prefix sums); sigma ``[Nh, n]``: terms scaled by ``e^(gamma_C)`` (depend on every g of the chunk);
    E ``[Nh, n, C, C]`` (overwritten): ``dA o A + dP o P``, entry (i, j) scaled by ``e^(gamma_i - gamma_j)``
    and so depending on g_t for ``j < t <= i``: ``dg_t += sum_{i >= t} sum_{j < t} E_ij``.
    """
    dg = rho.flip(-1).cumsum(-1).flip(-1)
    dg[..., 1:] += kappa[..., :-1].cumsum(-1)
    dg += sigma[..., None]
    # column t-1 of cumsum_j(E), summed over the rows i >= t, is sum_{i >= t} sum_{j < t} E_ij
    dg[..., 1:] += E.cumsum_(-1).tril_(-1).sum(-2)[..., :-1]
    return dg


def _factorised_decay_backward(k, beta, q_dec, k_rhs, left, right_scale, right, U, dSn, c, ndk, dA, dP, dq_dec,
                               sigma, dbeta, scale):
    """Step (6) on the factorised path; returns dk, dq, dg (chunked) and adds to dbeta in place.

    ``A = lower(Kl Kr^T)``, ``P = lower(Qd Kr^T)``, ``Kd = c Kr`` with ``Kl = k_rhs'``, ``Qd = q_dec'``,
    ``Kr = right``, ``c = e^(gamma_C - m)``. Consumes ndk, dq_dec (overwritten).
    """
    dKr = mm(U, mT(dSn * c[..., None]))                                # c dKd = grad wrt Kr via Kd
    kappa = (dKr * right).sum(-1)                                        # rowsum(dKd o Kd)
    mm_add_(mm_add_(dKr, mT(dA), k_rhs), mT(dP), q_dec)               # + dA^T Kl + dP^T Qd
    dKl = mm_add_(ndk, dA, right, beta=-1.0)                            # d k_rhs' + dA Kr
    dQd = mm_add_(dq_dec, dP, right)                                    # d q_dec' + dP Kr
    # e^(+gamma) on Kl and Qd, e^(-gamma) on Kr, e^(gamma_C) on Kd and the state term (m held fixed)
    dgamma = (dKl * k_rhs).sum(-1).sub_((dKr * right).sum(-1)).add_((dQd * q_dec).sum(-1))
    dgamma[..., -1] += sigma + kappa.sum(-1)
    dg = dgamma.flip(-1).cumsum(-1).flip(-1)                             # gamma = cumsum(g) per chunk
    dbeta.addcmul_((dKl * k).sum(-1), left[..., 0])
    dk = dKl.mul_(beta * left).addcmul_(dKr, right_scale)
    dq = dQd.mul_(left * scale)
    return dk, dq, dg


def _explicit_decay_backward(q, k, beta, gamma, gamma_last, q_dec, k_rhs, k_decayed, A, P, decay, exp_gamma, U,
                             dSn, ndk, dA, dP, dq_dec, sigma, dbeta, scale):
    """Step (6) on the explicit-decay path; returns dk, dq, dg (chunked) and adds to dbeta in place.

    ``A = diag(beta)(K K^T) o D``, ``P = s (Q K^T) o D``. Consumes dA, dP, dq_dec (overwritten).
    """
    dKd = mm(U, mT(dSn))
    kappa = (dKd * k_decayed).sum(-1)
    rho = (dq_dec * q_dec).sum(-1).sub_((ndk * k_rhs).sum(-1))           # e^(gamma_i)-scaled terms
    E = (dA * A).addcmul_(dP, P)                                          # e^(gamma_i - gamma_j)-scaled terms
    GA = dA.mul_(decay)                                                   # dA o D
    GP = dP.mul_(decay)
    dk = mm_add_(mm(mT(GA), k * beta), mT(GP), q, alpha=scale)
    GAK = mm(GA, k)
    dbeta += (k * GAK).sum(-1).sub_((ndk * k).sum(-1).mul_(exp_gamma[..., 0]))
    dk.addcmul_(GAK, beta).addcmul_(ndk, beta * exp_gamma, value=-1.0)
    dk.addcmul_(dKd, (gamma_last - gamma).exp()[..., None])
    dq = mm_add_(dq_dec.mul_(exp_gamma * scale), GP, k, alpha=scale)
    return dk, dq, _g_grad(rho, kappa, sigma, E)


def explicit_inverse_forward(q, k, v, g, beta, initial_state, scale: float, chunk_size: int,
                             factorize_max_decay: float, keep_for_backward: bool = False):
    """The chunked forward with ``T = (I + A)^-1`` formed explicitly (matmuls instead of a wide solve).

    Shapes as :func:`hadna.ops.gated_delta_rule.chunk.chunk_gated_delta_rule_head_first` (fp32, T >= 1).
    Returns ``(o [N, T, V], final state [N, K, V], tensors saved for the backward or ())``.
    """
    Nh, T, K = q.shape
    V = v.shape[-1]
    x, C = chunk_inputs(q, k, v, g, beta, chunk_size)
    n = x.gamma.shape[1]
    d = decay_terms(x, scale, factorize_max_decay)
    Tinv = unit_lower_inverse(d.A)                                      # (I + A)^-1: [Nh, n, C, C]
    W = mm(Tinv, d.k_rhs)                                             # W' (e^-m W when factorised)
    U0 = mm(Tinv, x.v * x.beta)                                       # [Nh, n, C, V]
    M = mm(mT(d.k_decayed), W).neg_()                                # -Kd^T W': [Nh, n, K, K]
    if d.e_m is not None:
        M.mul_(d.e_m)
    M.diagonal(dim1=-2, dim2=-1).add_(x.gamma_last.exp())              # M = e^(gamma_C) I - Kd^T W
    Nk = mm(mT(d.k_decayed), U0)                                     # N = Kd^T U0: [Nh, n, K, V]
    S = q.new_zeros(Nh, K, V) if initial_state is None else initial_state
    S0 = q.new_empty(Nh, n, K, V)                                      # each chunk's start state
    for i in range(n):
        S0[:, i] = S
        S = torch.baddbmm(Nk[:, i], M[:, i], S)
    if d.e_m is not None:
        S0.mul_(d.e_m)                                                 # S0' = e^m S0
    U = torch.baddbmm(U0.view(-1, C, V), W.view(-1, C, K), S0.view(-1, K, V), alpha=-1.0).view(U0.shape)
    O = mm_add_(mm(d.q_dec, S0), d.P, U)                             # q_dec S0 + P U
    saved = ((x.q, x.k, x.v, x.beta, x.gamma, x.gamma_last, d.q_dec, d.k_rhs, d.k_decayed, d.A, d.P, d.e_m,
              d.left, d.right_scale, d.right, d.decay, d.exp_gamma, Tinv, W, U0, M, S0, U)
             if keep_for_backward else ())
    return O.view(Nh, n * C, V)[:, :T], S, saved


class ChunkGatedDeltaRuleFunction(torch.autograd.Function):
    """Chunked gated delta rule with a hand-written backward; see the module docstring.

    apply(q, k, v, g, beta, initial_state, scale, chunk_size, factorize_max_decay) -> (o, final_state),
    shapes as :func:`hadna.ops.gated_delta_rule.chunk.chunk_gated_delta_rule_head_first` (fp32, T >= 1).
    """

    @staticmethod
    def forward(ctx, q, k, v, g, beta, initial_state, scale: float, chunk_size: int,
                factorize_max_decay: float):
        O, S, saved = explicit_inverse_forward(q, k, v, g, beta, initial_state, scale, chunk_size,
                                               factorize_max_decay, keep_for_backward=True)
        ctx.save_for_backward(*saved)
        ctx.scale, ctx.T, ctx.has_h0 = scale, q.shape[1], initial_state is not None
        ctx.set_materialize_grads(False)  # an unused output's gradient arrives as None, not as zeros
        return O, S

    @staticmethod
    @once_differentiable
    def backward(ctx, dO, dS_final):
        (q, k, v, beta, gamma, gamma_last, q_dec, k_rhs, k_decayed, A, P, e_m, left, right_scale, right, decay,
         exp_gamma, Tinv, W, U0, M, S0, U) = ctx.saved_tensors
        scale, T = ctx.scale, ctx.T
        Nh, n, C, K = q.shape
        V = v.shape[-1]
        has_dO = dO is not None  # without it q has no influence (autograd's twin leaves q.grad None)
        if dO is None:
            dO = q.new_zeros(Nh, n, C, V)
        else:
            # contiguous: an upstream gradient may be expanded (e.g. from o.sum()), and BLAS cannot
            # take stride-0 operands (torch then falls back to a very slow generic matmul)
            dO = dO.to(q.dtype)
            dO = F.pad(dO, (0, 0, 0, n * C - T)) if n * C != T else dO.contiguous()
            dO = dO.view(Nh, n, C, V)

        # (1) what each chunk's start state receives from the chunk's own outputs (grad wrt S0', then S0)
        PtdO = mm(mT(P), dO)                                               # [Nh, n, C, V]
        R = mm_add_(mm(mT(q_dec), dO), mT(W), PtdO, alpha=-1.0)          # [Nh, n, K, V]
        if e_m is not None:
            R.mul_(e_m)
        # (2) adjoint recurrence in reverse over chunks
        dS = q.new_zeros(Nh, K, V) if dS_final is None else dS_final.to(q.dtype).contiguous()
        dSn = q.new_empty(Nh, n, K, V)                                       # grad of each chunk's end state
        for i in range(n - 1, -1, -1):
            dSn[:, i] = dS
            dS = torch.baddbmm(R[:, i], mT(M[:, i]), dS)
        # (3) new values: dU = P^T dO + Kd dSn, dW' = -dU S0'^T
        dU = mm_add_(PtdO, k_decayed, dSn)
        # (4) solve adjoint, signs folded: ndk = -d k_rhs', dvb = d (beta v); dA = -strict_lower(dX WU^T)
        ndk = mm(mT(Tinv), mm(dU, mT(S0)))
        dvb = mm(mT(Tinv), dU)
        dA = mm_add_(mm(ndk, mT(W)), dvb, mT(U0), alpha=-1.0).tril_(-1)   # [Nh, n, C, C]
        # (5) output and state-passing terms
        dP = mm(dO, mT(U)).tril_()                                         # [Nh, n, C, C]
        dq_dec = mm(dO, mT(S0))                                            # grad wrt q_dec'
        c = gamma_last.exp() if e_m is None else (0.5 * gamma_last).exp()    # e^(gamma_C) / e^m: [Nh, n, 1]
        sigma = torch.bmm(S0.view(-1, 1, K * V), dSn.view(-1, K * V, 1)).view(Nh, n) * c[..., 0]  # <S0, dSn>
        dbeta = (dvb * v).sum(-1)                                            # [Nh, n, C]
        dv = dvb.mul_(beta)
        # (6) through the decay weighting
        if e_m is not None:
            dk, dq, dg = _factorised_decay_backward(k, beta, q_dec, k_rhs, left, right_scale, right, U, dSn,
                                                    c, ndk, dA, dP, dq_dec, sigma, dbeta, scale)
        else:
            dk, dq, dg = _explicit_decay_backward(q, k, beta, gamma, gamma_last, q_dec, k_rhs, k_decayed, A, P,
                                                  decay, exp_gamma, U, dSn, ndk, dA, dP, dq_dec, sigma, dbeta,
                                                  scale)

        def unchunk(t: torch.Tensor) -> torch.Tensor:  # [Nh, n, C, *] -> [Nh, T, *]
            return t.reshape(Nh, n * C, *t.shape[3:])[:, :T]

        return (unchunk(dq) if has_dO else None, unchunk(dk), unchunk(dv), unchunk(dg), unchunk(dbeta),
                dS if ctx.has_h0 else None, None, None, None)


def chunk_gated_delta_rule_custom_grad(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    g: torch.Tensor,
    beta: torch.Tensor,
    scale: float,
    initial_state: torch.Tensor | None,
    chunk_size: int,
    factorize_max_decay: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Head-first kernel with the hand-written backward; arguments and results as
    :func:`hadna.ops.gated_delta_rule.chunk.chunk_gated_delta_rule_head_first` (T >= 1)."""
    h0 = None if initial_state is None else initial_state.to(q.dtype)
    return ChunkGatedDeltaRuleFunction.apply(q, k, v, g, beta, h0, scale, chunk_size, factorize_max_decay)
