"""The contract every exported flow satisfies, in float64, with parameters moved off
their initial values: the inverse undoes the forward map, the reported log-determinants
equal ``log|det|`` of the autograd Jacobian in both directions, and they are opposite."""
import inspect

import pytest
import torch

import course_lib.flows as flows
from course_lib.jacobian import log_abs_det_bruteforce
from flow_cases import build as build_case, collect

CASES = collect(solvers=True)  # the CNF too: its maps are ODE solves
PARAMS = [(name, dim) for name, case in sorted(CASES.items()) for dim in case.dims]


def exported_flow_classes():
    return {name for name in flows.__all__
            if inspect.isclass(getattr(flows, name))
            and issubclass(getattr(flows, name), flows.Flow) and name != "Flow"}


def build(name, dim, seed=0):
    case = CASES[name]
    flow, z = build_case(case, dim, seed)
    return case, flow, z


def test_every_exported_flow_is_in_the_contract():
    missing = exported_flow_classes() - set(CASES)
    assert not missing, f"exported flows without a contract case: {sorted(missing)}"


@pytest.mark.parametrize("name,dim", PARAMS)
def test_inverse_undoes_forward(name, dim):
    case, flow, z = build(name, dim)
    x, _ = flow(z)
    z_back, _ = flow.inverse(x)
    torch.testing.assert_close(z_back, z, atol=case.atol, rtol=0)


@pytest.mark.parametrize("name,dim", PARAMS)
def test_forward_logdet_matches_autograd_jacobian(name, dim):
    case, flow, z = build(name, dim)
    _, logdet = flow(z)
    assert logdet.shape == (z.shape[0],)
    expected = log_abs_det_bruteforce(lambda t: flow(t)[0], z)
    torch.testing.assert_close(logdet, expected, atol=case.atol, rtol=0)


@pytest.mark.parametrize("name,dim", PARAMS)
def test_inverse_logdet_is_minus_forward_and_matches_autograd(name, dim):
    case, flow, z = build(name, dim)
    x, logdet = flow(z)
    x = x.detach()
    _, inv_logdet = flow.inverse(x)
    torch.testing.assert_close(inv_logdet, -logdet, atol=case.atol, rtol=0)
    expected = log_abs_det_bruteforce(lambda t: flow.inverse(t)[0], x)
    torch.testing.assert_close(inv_logdet, expected, atol=case.atol, rtol=0)


def has_parameters(name, dim):
    return any(True for _ in CASES[name].make(dim).parameters())


@pytest.mark.parametrize("name,dim", [p for p in PARAMS if has_parameters(*p)])
def test_parameters_moved_off_initialisation_change_the_map(name, dim):
    case = CASES[name]
    torch.manual_seed(0)
    flow = case.make(dim).double()
    _, moved, z = build(name, dim)
    if case.warmup is not None:
        case.warmup(flow, z)
    assert not torch.allclose(flow(z)[0], moved(z)[0])


@pytest.mark.parametrize("name,dim", PARAMS)
def test_runs_in_float32(name, dim):
    case, flow, z = build(name, dim)
    flow, z = flow.float(), z.float()
    x, logdet = flow(z)
    z_back, inv_logdet = flow.inverse(x)
    assert x.dtype == logdet.dtype == z_back.dtype == torch.float32
    torch.testing.assert_close(z_back, z, atol=max(1e-3, case.atol), rtol=1e-3)
    torch.testing.assert_close(inv_logdet, -logdet, atol=max(1e-3, case.atol), rtol=1e-3)
