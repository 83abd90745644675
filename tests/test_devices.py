"""Device-agnosticism without a GPU: on torch's ``meta`` device tensors have shapes, dtypes and
devices but no values, so every tensor a model creates on the wrong device, and every value
read into Python, fails there. Validation is off (its value checks need values)."""
import os
import pathlib
import subprocess
import sys

import pytest
import torch

import course_lib
from course_lib import models
from course_lib.flows import Affine
from course_lib.model import NormalizingFlow, dtype_device
from course_lib.training import _adam, fit

ROOT = pathlib.Path(__file__).resolve().parents[1]
META = torch.device("meta")

BUILDERS = {
    "realnvp": lambda: models.realnvp(2, n_layers=2, hidden=8),
    "maf": lambda: models.maf(3, n_layers=2, hidden=8),
    "nsf": lambda: models.nsf(2, n_layers=2, hidden=8, bins=4),
    "glow": lambda: models.glow((1, 8, 8), n_levels=2, n_steps=1, hidden=8),
}


@pytest.mark.parametrize("make", BUILDERS.values(), ids=BUILDERS.keys())
def test_a_model_is_built_evaluated_stepped_and_sampled_on_meta(make):
    with course_lib.validation(False):
        model = make().to(META)
        assert all(t.device == META for t in [*model.parameters(), *model.buffers()])
        x = torch.empty(5, *model.event_shape, device=META)
        log_p = model.log_prob(x)
        assert log_p.shape == (5,) and log_p.device == META
        (-log_p.mean()).backward()
        assert all(p.grad is not None and p.grad.device == META
                   for p in model.parameters() if p.requires_grad)
        torch.optim.Adam(model.parameters(), lr=1e-3).step()
        samples = model.sample((2, 3))
        assert samples.shape == (2, 3, *model.event_shape) and samples.device == META
        x, log_q = model.sample_and_log_prob(4)
        assert x.device == log_q.device == META and log_q.shape == (4,)


def test_the_dtype_and_device_of_a_model_come_from_its_parameters_then_buffers():
    model = NormalizingFlow(2, [Affine(2)]).float()
    assert dtype_device(model) == (torch.float32, torch.device("cpu"))
    assert dtype_device(model.to(META, torch.float64)) == (torch.float64, META)
    frozen = NormalizingFlow(2, [Affine(2, learnable=False)]).to(META)  # buffers only
    assert dtype_device(frozen) == (torch.float64, META)


def test_fit_moves_and_casts_each_batch_to_the_model():
    model = models.realnvp(2, n_layers=1, hidden=4).to(META, torch.float32)
    seen = []
    anchor = torch.zeros((), requires_grad=True)  # a CPU loss the loop can read

    def loss_fn(m, batch):
        seen.append((batch.device, batch.dtype, tuple(batch.shape)))
        assert m.log_prob(batch).device == META
        return (anchor - 1.0) ** 2

    data = torch.randn(50, 2, dtype=torch.float64)  # on the CPU, in float64
    with course_lib.validation(False):
        fit(model, data, steps=3, batch_size=7, loss_fn=loss_fn, progress=False)
    assert seen == [(META, torch.float32, (7, 2))] * 3


def test_fused_adam_only_where_torch_has_the_kernel():
    # the oracle: does torch's fused kernel actually run a step on a CPU parameter?
    p = torch.nn.Parameter(torch.ones(3))
    p.grad = torch.ones(3)
    try:
        torch.optim.Adam([p], fused=True).step()
        cpu_has_kernel = True
    except RuntimeError:
        cpu_has_kernel = False
    cpu = _adam(NormalizingFlow(2, [Affine(2)]), 1e-3)
    assert bool(cpu.defaults.get("fused")) == cpu_has_kernel
    meta = _adam(NormalizingFlow(2, [Affine(2)]).to(META), 1e-3)
    assert not meta.defaults.get("fused")


def test_the_device_option_puts_the_device_modules_on_that_device():
    """``--device meta`` (the one device besides the CPU every machine has) reaches the tests."""
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    # without the suite's addopts and notebook plugins: a bare run of one test
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-o", "addopts=", "-p", "no:nbval",
                          "-p", "no:xdist", "-p", "no:cacheprovider", "--device", "meta",
                          "tests/test_distribution.py::test_runs_on_the_requested_device"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert "1 passed" in run.stdout, run.stdout + run.stderr


@pytest.mark.parametrize("value", ["nonsense", "cuda:x"])
def test_an_unknown_device_is_a_usage_error(value):
    import conftest

    class Config:
        def getoption(self, name):
            return value

    with pytest.raises(pytest.UsageError, match="--device"):
        conftest.pytest_configure(Config())
