"""With validation off, every flow runs under ``torch.func`` transforms and a model compiles
into one graph: the value checks were the only data-dependent Python control flow."""
import pytest
import torch
from torch.func import jacrev, vmap

import course_lib
from course_lib import models
from course_lib.jacobian import jacobian
from flow_cases import collect
from test_flow_contract import build as contract_build

CASES = collect()
PARAMS = [(name, dim) for name, case in sorted(CASES.items()) for dim in case.dims]


def build(name, dim):
    """The flow and input of the flow contract (parameters moved off their initial values)."""
    _, flow, z = contract_build(name, dim)
    return flow, z


@pytest.mark.parametrize("name,dim", PARAMS)
def test_vmap_of_jacrev_equals_the_batched_autograd_jacobian(name, dim):
    flow, z = build(name, dim)

    def one_sample(zi):
        return flow(zi.unsqueeze(0))[0].squeeze(0)

    with course_lib.validation(False):
        per_sample = vmap(jacrev(one_sample))(z)
    d = z[0].numel()
    expected = jacobian(flow, z)  # one backward pass per output coordinate, over the batch
    torch.testing.assert_close(per_sample.reshape(z.shape[0], d, d), expected, atol=1e-12, rtol=0)


@pytest.mark.parametrize("name,dim", PARAMS)
def test_vmap_of_the_log_determinant_equals_the_batched_one(name, dim):
    flow, z = build(name, dim)
    with course_lib.validation(False):
        per_sample = vmap(lambda zi: flow(zi.unsqueeze(0))[1].squeeze(0))(z)
    torch.testing.assert_close(per_sample, flow(z)[1], atol=1e-12, rtol=0)


def test_a_realnvp_log_prob_compiles_into_one_graph_with_validation_off():
    """``fullgraph=True`` makes dynamo raise at the first graph break, which is what course_lib
    controls; the eager backend runs the captured graph without code generation, which keeps
    this test at a few seconds (the benchmark compiles with the default backend, inductor)."""
    torch._dynamo.reset()
    torch.manual_seed(0)
    model = models.realnvp(2)
    x = torch.randn(64, 2)
    with course_lib.validation(False):
        compiled = torch.compile(model.log_prob, fullgraph=True, backend="eager")
        got = compiled(x)
        torch.testing.assert_close(got, model.log_prob(x), atol=1e-12, rtol=0)
    torch._dynamo.reset()


def test_with_validation_on_the_compiled_model_breaks_its_graph_at_the_value_checks():
    # the switch is what makes the difference: with the checks on, fullgraph tracing must fail
    torch._dynamo.reset()
    model = models.realnvp(2, n_layers=1, hidden=4)
    compiled = torch.compile(model.log_prob, fullgraph=True, backend="eager")
    # (the value checks read tensors into Python and keep per-call state; dynamo refuses both)
    with pytest.raises(torch._dynamo.exc.Unsupported):
        compiled(torch.randn(8, 2))
    torch._dynamo.reset()
