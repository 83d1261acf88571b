"""The hand-written backward of the chunked gated delta rule against its autograd twin, gradcheck and naive."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from numerics import relative_error
from hadna.ops import chunk_gated_delta_rule, naive_recurrent_gated_delta_rule
from hadna.ops.gated_delta_rule.chunk import _chunk_forward_autograd, chunk_gated_delta_rule_head_first
from hadna.ops.gated_delta_rule.chunk_autograd import unit_lower_inverse

TOL = 1e-5
PATHS = {"factorized": float("inf"), "explicit-decay": -1.0}  # factorize_max_decay forcing each decay path
NAMES = ["q", "k", "v", "g", "beta", "initial_state"]


def head_first_inputs(N, T, K, V, with_state, dtype=torch.float32, log_decay_shift=2.0, seed=0):
    gen = torch.Generator().manual_seed(seed)
    q = torch.randn(N, T, K, generator=gen, dtype=dtype)
    k = F.normalize(torch.randn(N, T, K, generator=gen, dtype=dtype), dim=-1)
    v = torch.randn(N, T, V, generator=gen, dtype=dtype)
    g = F.logsigmoid(torch.randn(N, T, generator=gen, dtype=dtype) + log_decay_shift)
    beta = torch.rand(N, T, generator=gen, dtype=dtype)
    h0 = torch.randn(N, K, V, generator=gen, dtype=dtype) if with_state else None
    return [q, k, v, g, beta, h0]


def run(inputs, grad_impl, chunk_size, path, do=None, ds=None):
    """Forward with both outputs and backward of <o, do> + <S, ds>; returns o, S and the input grads."""
    leaves = [x.detach().clone().requires_grad_() if x is not None else None for x in inputs]
    o, s = chunk_gated_delta_rule_head_first(*leaves[:5], leaves[0].shape[-1] ** -0.5, leaves[5], chunk_size,
                                             PATHS[path], grad_impl=grad_impl)
    loss = 0.0
    if do is not None:
        loss = loss + (o * do).sum()
    if ds is not None:
        loss = loss + (s * ds).sum()
    loss.backward()
    return o.detach(), s.detach(), [x.grad if x is not None else None for x in leaves]


def close(a: torch.Tensor, b: torch.Tensor, tol: float = TOL) -> bool:
    """Relative error <= tol, with an absolute floor for gradients that are exactly zero in exact arithmetic
    (e.g. dg of a single step from a zero state: both sides hold only rounding noise ~1e-8)."""
    return float((a.double() - b.double()).norm()) <= tol * float(b.double().norm()) + 1e-6


def assert_close(custom, twin, tol=TOL):
    (o1, s1, g1), (o2, s2, g2) = custom, twin
    assert relative_error(o1, o2) <= tol, "output"
    assert relative_error(s1, s2) <= tol, "final state"
    for name, a, b in zip(NAMES, g1, g2):
        if b is None:
            assert a is None, name
        else:
            assert a is not None and close(a, b, tol), f"grad of {name}: {relative_error(a, b):.2e}"


@pytest.mark.parametrize("path", list(PATHS))
@pytest.mark.parametrize("with_state", [False, True], ids=["no-h0", "h0"])
@pytest.mark.parametrize(
    "N,T,K,V,chunk_size",
    [
        pytest.param(2, 1, 8, 8, 64, id="T1"),
        pytest.param(2, 63, 16, 32, 64, id="T63-one-short-chunk"),
        pytest.param(3, 64, 32, 16, 64, id="T64"),
        pytest.param(2, 65, 16, 24, 64, id="T65-padded"),
        pytest.param(2, 200, 32, 64, 64, id="T200"),
        pytest.param(2, 100, 7, 5, 37, id="T100-C37-oddKV"),
        pytest.param(1, 50, 8, 8, 1, id="C1"),
    ],
)
def test_custom_backward_matches_autograd_twin(N, T, K, V, chunk_size, with_state, path):
    inputs = head_first_inputs(N, T, K, V, with_state)
    gen = torch.Generator().manual_seed(1)
    do, ds = torch.randn(N, T, V, generator=gen), torch.randn(N, K, V, generator=gen)
    custom = run(inputs, "custom", chunk_size, path, do, ds)
    twin = run(inputs, "autograd", chunk_size, path, do, ds)
    assert_close(custom, twin)


@pytest.mark.parametrize("path", list(PATHS))
@pytest.mark.parametrize("loss_on", ["output-only", "final-state-only"])
def test_one_output_without_upstream_gradient(loss_on, path):
    """Autograd passes None for an unused output: dO = 0 or dS_final = 0 must be handled."""
    inputs = head_first_inputs(2, 90, 16, 8, with_state=True)
    do = torch.randn(2, 90, 8) if loss_on == "output-only" else None
    ds = torch.randn(2, 16, 8) if loss_on == "final-state-only" else None
    assert_close(run(inputs, "custom", 32, path, do, ds), run(inputs, "autograd", 32, path, do, ds))


def test_expanded_upstream_gradient():
    """o.sum() hands back a stride-0 gradient; the matmuls must still see a proper tensor."""
    inputs = head_first_inputs(2, 70, 16, 16, with_state=False)
    grads = []
    for impl in ("custom", "autograd"):
        leaves = [x.clone().requires_grad_() for x in inputs[:5]]
        o, _ = chunk_gated_delta_rule_head_first(*leaves, 0.25, None, 32, grad_impl=impl)
        o.sum().backward()
        grads.append([x.grad for x in leaves])
    for name, a, b in zip(NAMES, *grads):
        assert relative_error(a, b) <= TOL, name


@pytest.mark.parametrize("path", list(PATHS))
@pytest.mark.parametrize("T,chunk_size", [(1, 4), (7, 3), (9, 4)], ids=["T1", "T7-C3", "T9-C4"])
def test_gradcheck_float64(T, chunk_size, path):
    q, k, v, g, beta, h0 = head_first_inputs(2, T, 3, 2, with_state=True, dtype=torch.float64)
    g = g * 3.0  # decays up to a few nats per step
    inputs = tuple(x.requires_grad_() for x in (q, k, v, g, beta, h0))

    def fn(*xs):
        return chunk_gated_delta_rule_head_first(*xs[:5], 0.7, xs[5], chunk_size, PATHS[path], grad_impl="custom")

    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-7, rtol=1e-5)


@pytest.mark.parametrize("log_decay", [-3.0, -30.0], ids=["g-3", "g-30"])
def test_strong_decay_gradients_match_float64_naive(log_decay):
    """Explicit-decay path: dg sums only the terms that depend on g_t, so it stays accurate for g << 0
    (autograd through the forward loses dg entirely at g = -30, where gamma reaches -2000 in a chunk)."""
    q, k, v, g, beta, h0 = head_first_inputs(2, 130, 16, 16, with_state=True)
    g = torch.full_like(g, log_decay) + 0.01 * torch.rand(g.shape, generator=torch.Generator().manual_seed(3))
    inputs = [q, k, v, g, beta, h0]
    _, _, grads = run(inputs, "custom", 64, "explicit-decay", do=torch.ones(2, 130, 16), ds=torch.ones(2, 16, 16))

    ref = [x.double().reshape(2, 1, *x.shape[1:]).transpose(1, 2).requires_grad_() for x in inputs[:5]]
    h_ref = h0.double().reshape(2, 1, 16, 16).requires_grad_()
    o, s = naive_recurrent_gated_delta_rule(*ref, scale=0.25, initial_state=h_ref, output_final_state=True)
    (o.sum() + s.sum()).backward()
    for name, a, b in zip(NAMES, grads, [x.grad.transpose(1, 2).squeeze(1) for x in ref] + [h_ref.grad[:, 0]]):
        assert relative_error(a, b) <= (1e-4 if name == "g" else TOL), name  # fp32 gamma ~ 2000 costs ~1e-4


@pytest.mark.parametrize("impl", ["solve", "inverse"])
def test_no_grad_runs_the_chosen_plain_forward(impl):
    from hadna.ops.gated_delta_rule.chunk_autograd import explicit_inverse_forward
    from hadna.ops.gated_delta_rule.common import FACTORIZE_MAX_DECAY

    inputs = head_first_inputs(2, 100, 16, 8, with_state=True)
    leaves = [x.clone().requires_grad_() for x in inputs]
    with torch.no_grad():
        o, s = chunk_gated_delta_rule_head_first(*leaves[:5], 0.25, leaves[5], 32, inference_impl=impl)
        if impl == "solve":
            o_ref, s_ref = _chunk_forward_autograd(*inputs[:5], 0.25, inputs[5], 32)
        else:
            o_ref, s_ref, _ = explicit_inverse_forward(*inputs[:5], inputs[5], 0.25, 32, FACTORIZE_MAX_DECAY)
    assert o.grad_fn is None and torch.equal(o, o_ref) and torch.equal(s, s_ref)
    o, _ = chunk_gated_delta_rule_head_first(*leaves[:5], 0.25, leaves[5], 32, grad_impl="custom")
    assert type(o.grad_fn).__name__ == "ChunkGatedDeltaRuleFunctionBackward"
    o, _ = chunk_gated_delta_rule_head_first(*leaves[:5], 0.25, leaves[5], 32, grad_impl="autograd")
    assert "ChunkGatedDeltaRule" not in type(o.grad_fn).__name__


def test_only_some_inputs_require_grad():
    q, k, v, g, beta, _ = head_first_inputs(1, 40, 8, 8, with_state=False)
    v = v.requires_grad_()
    o, _ = chunk_gated_delta_rule_head_first(q, k, v, g, beta, 0.3, None, 16, grad_impl="custom")
    o.pow(2).sum().backward()
    v_ref = v.detach().clone().requires_grad_()
    o_ref, _ = _chunk_forward_autograd(q, k, v_ref, g, beta, 0.3, None, 16)
    o_ref.pow(2).sum().backward()
    assert q.grad is None and relative_error(v.grad, v_ref.grad) <= TOL


def test_public_op_half_precision_inputs_get_gradients_in_their_dtype():
    gen = torch.Generator().manual_seed(0)
    B, T, H, K, V = 1, 30, 2, 8, 8
    inputs = [torch.randn(B, T, H, K, generator=gen), F.normalize(torch.randn(B, T, H, K, generator=gen), dim=-1),
              torch.randn(B, T, H, V, generator=gen), F.logsigmoid(torch.randn(B, T, H, generator=gen) + 2),
              torch.rand(B, T, H, generator=gen), torch.randn(B, H, K, V, generator=gen)]
    grads = []
    for impl in ("custom", "autograd"):
        xs = [x.bfloat16().requires_grad_() for x in inputs]
        o, s = chunk_gated_delta_rule(*xs[:5], initial_state=xs[5], output_final_state=True, grad_impl=impl)
        (o.float().sum() + s.sum()).backward()
        assert o.dtype == torch.bfloat16 and all(x.grad.dtype == torch.bfloat16 for x in xs)
        grads.append([x.grad for x in xs])
    for name, a, b in zip(NAMES, *grads):
        assert relative_error(a, b) <= 1e-2, name  # both in fp32 inside; only the bf16 rounding differs


def test_unknown_grad_impl_is_rejected():
    q, k, v, g, beta, _ = head_first_inputs(1, 4, 4, 4, with_state=False)
    with pytest.raises(ValueError, match="grad_impl"):
        chunk_gated_delta_rule_head_first(q, k, v, g, beta, 0.5, grad_impl="fast")


@pytest.mark.parametrize("C", [1, 5, 16, 17, 37, 63, 64, 100])
def test_unit_lower_inverse(C):
    A = torch.randn(3, 2, C, C, dtype=torch.float64, generator=torch.Generator().manual_seed(C)).mul_(0.3)
    A.tril_(-1)
    expected = torch.linalg.inv(torch.eye(C, dtype=torch.float64) + A)
    assert torch.allclose(unit_lower_inverse(A), expected, atol=1e-10)
    assert torch.allclose(unit_lower_inverse(A, block=5), expected, atol=1e-10)


def test_model_parameter_gradients_agree_between_grad_impls():
    """The student (bidirectional GDN) trains through the same kernel: both backwards give its gradients."""
    from hadna.models.configuration_had import HadConfig
    from hadna.models.modeling_had import HadModel
    from hadna.modules import GatedDeltaNet

    torch.manual_seed(0)
    model = HadModel(HadConfig.preset("had-tiny", chunk_size=16))
    ids = torch.randint(4, 9, (2, 45))
    mask = torch.ones(2, 45, dtype=torch.long)
    mask[1, 30:] = 0
    grads = []
    for impl in ("custom", "autograd"):
        for m in model.modules():
            if isinstance(m, GatedDeltaNet):
                m.grad_impl = impl
        model.zero_grad(set_to_none=True)
        model(input_ids=ids, attention_mask=mask).last_hidden_state.pow(2).mean().backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys() and len(grads[0]) > 0
    for name in grads[0]:
        assert relative_error(grads[0][name], grads[1][name]) <= 1e-4, name
