"""The chunked gated delta rule against the naive per-step recurrence: outputs and all gradients."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from numerics import relative_error
from hadna.ops import chunk_gated_delta_rule, naive_recurrent_gated_delta_rule

TOL = 1e-5


def make_inputs(B, T, H, K, V, with_state, dtype=torch.float32, seed=0):
    gen = torch.Generator().manual_seed(seed)
    q = torch.randn(B, T, H, K, generator=gen, dtype=dtype)
    k = F.normalize(torch.randn(B, T, H, K, generator=gen, dtype=dtype), dim=-1)  # as the layer does
    v = torch.randn(B, T, H, V, generator=gen, dtype=dtype)
    g = F.logsigmoid(torch.randn(B, T, H, generator=gen, dtype=dtype) + 2.0)      # decays near 1 and below
    beta = torch.rand(B, T, H, generator=gen, dtype=dtype)
    h0 = torch.randn(B, H, K, V, generator=gen, dtype=dtype) if with_state else None
    return q, k, v, g, beta, h0


def run_both(inputs, chunk_size=64, output_final_state=True):
    q, k, v, g, beta, h0 = inputs
    leaves = [x.clone().requires_grad_() for x in (q, k, v, g, beta)]
    h0_leaf = h0.clone().requires_grad_() if h0 is not None else None
    results = []
    for fn in ("chunk", "naive"):
        xs = [x.detach().clone().requires_grad_() for x in leaves]
        h = h0_leaf.detach().clone().requires_grad_() if h0_leaf is not None else None
        if fn == "chunk":
            o, s = chunk_gated_delta_rule(*xs, initial_state=h, output_final_state=output_final_state,
                                          chunk_size=chunk_size)
        else:
            o, s = naive_recurrent_gated_delta_rule(*xs, initial_state=h, output_final_state=output_final_state)
        results.append((o, s, xs, h))
    return results


SHAPES = [
    # (B, T, H, K, V)
    pytest.param(1, 1, 1, 8, 8, id="T1"),
    pytest.param(2, 63, 2, 16, 32, id="T63"),
    pytest.param(2, 64, 3, 32, 16, id="T64"),
    pytest.param(1, 65, 2, 16, 24, id="T65"),
    pytest.param(2, 500, 2, 32, 64, id="T500"),
    pytest.param(1, 1000, 2, 16, 16, id="T1000"),
    pytest.param(3, 129, 1, 7, 5, id="T129-oddKV"),
]


@pytest.mark.parametrize("with_state", [False, True], ids=["no-h0", "h0"])
@pytest.mark.parametrize("B,T,H,K,V", SHAPES)
def test_chunk_matches_naive_forward_and_backward(B, T, H, K, V, with_state):
    inputs = make_inputs(B, T, H, K, V, with_state)
    (o1, s1, x1, h1), (o2, s2, x2, h2) = run_both(inputs)
    assert o1.shape == (B, T, H, V) and s1.shape == (B, H, K, V)
    assert relative_error(o1, o2) <= TOL
    assert relative_error(s1, s2) <= TOL

    gen = torch.Generator().manual_seed(1)
    do = torch.randn(o1.shape, generator=gen)
    ds = torch.randn(s1.shape, generator=gen)
    ((o1 * do).sum() + (s1 * ds).sum()).backward()
    ((o2 * do).sum() + (s2 * ds).sum()).backward()
    for name, a, b in zip("q k v g beta".split(), x1, x2):
        assert relative_error(a.grad, b.grad) <= TOL, f"grad of {name}"
    if with_state:
        assert relative_error(h1.grad, h2.grad) <= TOL, "grad of initial_state"


@pytest.mark.parametrize("chunk_size", [1, 16, 37, 64, 128])
def test_any_chunk_size_gives_the_same_result(chunk_size):
    inputs = make_inputs(2, 100, 2, 16, 16, with_state=True)
    (o1, s1, *_), (o2, s2, *_) = run_both(inputs, chunk_size=chunk_size)
    assert relative_error(o1, o2) <= TOL
    assert relative_error(s1, s2) <= TOL


def test_no_final_state_unless_asked():
    q, k, v, g, beta, _ = make_inputs(1, 10, 1, 4, 4, with_state=False)
    o, s = chunk_gated_delta_rule(q, k, v, g, beta)
    assert s is None and o.shape == (1, 10, 1, 4)


def test_state_carries_across_calls():
    """Running two halves with the state handed over equals one call on the whole sequence."""
    q, k, v, g, beta, h0 = make_inputs(2, 150, 2, 16, 8, with_state=True)
    o_full, s_full = chunk_gated_delta_rule(q, k, v, g, beta, initial_state=h0, output_final_state=True)
    cut = 77
    o_a, s_a = chunk_gated_delta_rule(q[:, :cut], k[:, :cut], v[:, :cut], g[:, :cut], beta[:, :cut],
                                      initial_state=h0, output_final_state=True)
    o_b, s_b = chunk_gated_delta_rule(q[:, cut:], k[:, cut:], v[:, cut:], g[:, cut:], beta[:, cut:],
                                      initial_state=s_a, output_final_state=True)
    assert relative_error(torch.cat([o_a, o_b], 1), o_full) <= TOL
    assert relative_error(s_b, s_full) <= TOL


def test_strong_decay_and_zero_beta_are_stable():
    q, k, v, g, beta, _ = make_inputs(1, 200, 2, 16, 16, with_state=False)
    g = torch.full_like(g, -30.0)  # exp(g) ~ 1e-13: forgets everything each step
    beta[:, ::3] = 0.0
    o1, _ = chunk_gated_delta_rule(q, k, v, g, beta)
    o2, _ = naive_recurrent_gated_delta_rule(q, k, v, g, beta)
    assert torch.isfinite(o1).all()
    assert relative_error(o1, o2) <= TOL


def test_half_precision_inputs_accumulate_in_fp32():
    q, k, v, g, beta, _ = make_inputs(1, 70, 2, 16, 16, with_state=False)
    o_ref, _ = chunk_gated_delta_rule(q, k, v, g, beta)
    o_bf, _ = chunk_gated_delta_rule(*(x.bfloat16() for x in (q, k, v, g, beta)))
    assert o_bf.dtype == torch.bfloat16
    assert relative_error(o_bf.float(), o_ref) < 3e-2  # only input rounding, no bf16 accumulation


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param({"k": (1, 5, 2, 7)}, id="k-shape"),
        pytest.param({"v": (1, 6, 2, 4)}, id="v-T"),
        pytest.param({"g": (1, 5, 3)}, id="g-H"),
        pytest.param({"beta": (1, 5)}, id="beta-rank"),
        pytest.param({"initial_state": (1, 2, 8, 5)}, id="state-shape"),
    ],
)
def test_shape_errors_are_clear(bad):
    shapes = {"q": (1, 5, 2, 8), "k": (1, 5, 2, 8), "v": (1, 5, 2, 4), "g": (1, 5, 2), "beta": (1, 5, 2),
              "initial_state": None}
    shapes.update(bad)
    args = {n: (torch.zeros(s) if s is not None else None) for n, s in shapes.items()}
    with pytest.raises(ValueError, match="must be"):
        chunk_gated_delta_rule(**args)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_fla_kernel_matches_torch_kernel_on_gpu():
    from hadna.ops import fla_available

    if not fla_available():
        pytest.skip("flash-linear-attention not installed")
    inputs = make_inputs(2, 300, 4, 32, 64, with_state=True)
    cuda = [x.cuda().requires_grad_() for x in inputs]
    ref = [x.detach().clone().requires_grad_() for x in cuda]
    o1, s1 = chunk_gated_delta_rule(*cuda[:5], initial_state=cuda[5], output_final_state=True, backend="fla")
    o2, s2 = chunk_gated_delta_rule(*ref[:5], initial_state=ref[5], output_final_state=True, backend="torch")
    assert relative_error(o1, o2) <= 1e-3 and relative_error(s1, s2) <= 1e-3  # TF32 in Triton dots
    do = torch.randn_like(o1)
    ((o1 * do).sum() + s1.sum()).backward()
    ((o2 * do).sum() + s2.sum()).backward()
    for a, b in zip(cuda, ref):
        assert relative_error(a.grad, b.grad) <= 1e-2


@pytest.mark.parametrize("path", ["factorized", "explicit-decay"])
@pytest.mark.parametrize("T", [1, 64, 150], ids=lambda t: f"T{t}")
def test_both_decay_paths_match_naive_with_gradients(path, T):
    """The kernel folds the decay into the matmuls when that is safe and forms it explicitly otherwise."""
    from hadna.ops.gated_delta_rule.chunk import chunk_gated_delta_rule_head_first

    q, k, v, g, beta, h0 = make_inputs(2, T, 2, 16, 8, with_state=True)
    hf = lambda x: x.transpose(1, 2).reshape(4, T, *x.shape[3:]).contiguous()  # noqa: E731
    leaves = [hf(x).requires_grad_() for x in (q, k, v, g, beta)]
    h = h0.reshape(4, 16, 8).clone().requires_grad_()
    o1, s1 = chunk_gated_delta_rule_head_first(*leaves, 16 ** -0.5, h, chunk_size=32,
                                               factorize_max_decay=float("inf") if path == "factorized" else -1.0)
    ref_leaves = [x.detach().clone().requires_grad_() for x in (q, k, v, g, beta)]
    h_ref = h0.clone().requires_grad_()
    o2, s2 = naive_recurrent_gated_delta_rule(*ref_leaves, initial_state=h_ref, output_final_state=True)
    o2 = o2.transpose(1, 2).reshape(4, T, 8)
    assert relative_error(o1, o2) <= TOL and relative_error(s1, s2.reshape(4, 16, 8)) <= TOL
    (o1.pow(2).sum() + s1.sum()).backward()
    (o2.pow(2).sum() + s2.sum()).backward()
    for name, a, b in zip("q k v g beta".split(), leaves, ref_leaves):
        assert relative_error(a.grad, hf(b.grad)) <= TOL, f"grad of {name}"
    assert relative_error(h.grad, h_ref.grad.reshape(4, 16, 8)) <= TOL


@pytest.mark.parametrize("log_decay", [-1e-3, -1.5, -3.0], ids=["weak", "span96-factorized", "span192-explicit"])
def test_decay_strengths_near_the_factorization_threshold(log_decay):
    q, k, v, g, beta, h0 = make_inputs(1, 130, 2, 16, 16, with_state=True)
    g = torch.full_like(g, log_decay) + 0.01 * torch.rand_like(g) * log_decay
    (o1, s1, x1, h1), (o2, s2, x2, h2) = run_both((q, k, v, g, beta, h0))
    assert relative_error(o1, o2) <= TOL and relative_error(s1, s2) <= TOL
    (o1.sum() + s1.sum()).backward()
    (o2.sum() + s2.sum()).backward()
    for a, b in zip(x1 + [h1], x2 + [h2]):
        assert relative_error(a.grad, b.grad) <= TOL


@pytest.mark.parametrize("impl", ["inverse", "solve"])
@pytest.mark.parametrize("T", [1, 65, 300], ids=lambda t: f"T{t}")
def test_no_grad_forward_paths_match_naive(impl, T):
    """Inference (no gradients) runs a forward of its own choice; both choices must match the recurrence."""
    for log_decay in (None, -3.0):  # factorised and explicit decay paths
        q, k, v, g, beta, h0 = make_inputs(2, T, 2, 16, 24, with_state=True)
        if log_decay is not None:
            g = torch.full_like(g, log_decay)
        with torch.no_grad():
            o1, s1 = chunk_gated_delta_rule(q, k, v, g, beta, initial_state=h0, output_final_state=True,
                                            inference_impl=impl)
            o2, s2 = naive_recurrent_gated_delta_rule(q, k, v, g, beta, initial_state=h0, output_final_state=True)
        assert relative_error(o1, o2) <= TOL and relative_error(s1, s2) <= TOL


def test_fla_signature_check_accepts_the_supported_api_and_names_what_changed():
    from hadna.ops.gated_delta_rule.op import fla_signature_problems

    # The parameter lists of fla 0.6.0 and 0.4.1, as in their sources.
    def v060(q, k, v, g, beta, scale=None, initial_state=None, output_final_state=False,
             use_qk_l2norm_in_kernel=False, use_beta_sigmoid_in_kernel=False, allow_neg_eigval=False,
             state_v_first=False, cu_seqlens=None, cu_seqlens_cpu=None, chunk_indices=None, cp_context=None,
             **kwargs):
        pass

    def v04(q, k, v, g, beta, scale=None, initial_state=None, output_final_state=False,
            use_qk_l2norm_in_kernel=False, cu_seqlens=None, **kwargs):
        pass

    def changed(q, k, v, beta, g, scale=None, initial_state=None, state_v_first=True):
        pass

    assert fla_signature_problems(v060) == [] and fla_signature_problems(v04) == []
    problems = fla_signature_problems(changed)
    assert any("positional" in p for p in problems) and any("output_final_state" in p for p in problems)
    assert any("state_v_first defaults to True" in p for p in problems)


def test_installed_fla_matches_the_supported_api():
    pytest.importorskip("fla", reason="flash-linear-attention not installed")
    try:
        from fla.ops.gated_delta_rule import chunk_gated_delta_rule as kernel
    except Exception as exc:  # pragma: no cover - a broken Triton install
        pytest.skip(f"fla installed but its kernel does not import: {exc}")
    from hadna.ops.gated_delta_rule.op import fla_signature_problems

    assert fla_signature_problems(kernel) == []


@pytest.mark.parametrize("T", [1, 37, 130], ids=lambda t: f"T{t}")
def test_head_first_layout_equals_the_token_major_op(T):
    """``head_first=True`` is the same op on transposed inputs, forward and backward (what the layer calls)."""
    inputs = make_inputs(2, T, 3, 16, 24, with_state=True)
    token = [x.clone().requires_grad_() for x in inputs]
    heads = [x.detach().transpose(1, 2).contiguous().requires_grad_() for x in inputs[:5]]
    h0 = inputs[5].clone().requires_grad_()
    o1, s1 = chunk_gated_delta_rule(*token[:5], initial_state=token[5], output_final_state=True, chunk_size=16)
    o2, s2 = chunk_gated_delta_rule(*heads, initial_state=h0, output_final_state=True, chunk_size=16,
                                    head_first=True)
    assert o2.shape == (2, 3, T, 24)
    assert relative_error(o2.transpose(1, 2), o1) <= 1e-6 and relative_error(s2, s1) <= 1e-6
    (o1.pow(2).sum() + s1.sum()).backward()
    (o2.pow(2).sum() + s2.sum()).backward()
    for a, b in zip(heads, token[:5]):
        assert relative_error(a.grad.transpose(1, 2), b.grad) <= 1e-5
    assert relative_error(h0.grad, token[5].grad) <= 1e-5
    with pytest.raises(ValueError, match=r"g must be \[B, H, T\] = \[2, 3, " + str(T)):
        chunk_gated_delta_rule(*heads[:3], inputs[3], heads[4], head_first=True)


@pytest.mark.parametrize("T,chunk_size,C", [(100, 32, 25), (70, 32, 24), (1024, 32, 32), (33, 32, 17), (1, 64, 1),
                                            (64, 64, 64), (65, 64, 33)])
def test_chunk_length_wastes_the_least_padding(T, chunk_size, C):
    from hadna.ops.gated_delta_rule.common import chunk_inputs

    q, k, v, g, beta, _ = make_inputs(1, T, 1, 8, 8, with_state=False)
    x, got = chunk_inputs(*(t.transpose(1, 2).reshape(1, T, -1) for t in (q, k, v)), g.reshape(1, T),
                          beta.reshape(1, T), chunk_size)
    n = -(-T // chunk_size)
    assert got == C and got <= chunk_size and x.q.shape[1:3] == (n, C) and n * C - T < n
