"""The training loop fits what it should, is reproducible, and fails clearly."""
import math
import re

import pytest
import torch

import course_lib
from course_lib import datasets
from course_lib.flows import Affine, AffineCoupling, LULinear
from course_lib.model import NormalizingFlow
from course_lib.training import TrainingDiverged, fit
from course_lib.validation import CourseValueError


def test_forward_kl_training_recovers_the_mean_and_scale_of_gaussian_data():
    data = 3.0 + 2.0 * torch.randn(4000, 1, generator=torch.Generator().manual_seed(0))
    model = NormalizingFlow(1, [Affine(1)])
    history = fit(model, data, steps=600, batch_size=256, lr=0.05, progress=False)
    assert history[-1] < history[0]
    assert abs(model.flows[0].shift.item() - data.mean().item()) < 0.1
    assert abs(model.flows[0].scale.abs().item() - data.std().item()) < 0.1


def test_reverse_kl_training_matches_an_unnormalised_gaussian_target():
    target = lambda x: -0.5 * ((x[:, 0] + 1.0) / 0.5) ** 2 + 4.0  # N(-1, 0.5^2) up to a constant
    model = NormalizingFlow(1, [Affine(1)])
    fit(model, objective="reverse_kl", log_target=target, steps=500, batch_size=256, lr=0.05,
        progress=False)
    assert abs(model.flows[0].shift.item() + 1.0) < 0.05
    assert abs(model.flows[0].scale.abs().item() - 0.5) < 0.05


def test_training_with_the_same_seed_gives_the_same_history():
    runs = []
    for _ in range(2):
        model = NormalizingFlow(2, [Affine(2)])
        runs.append(fit(model, datasets.get("eight_gaussians"), steps=20, lr=0.01, progress=False))
    assert runs[0] == runs[1]


@pytest.mark.parametrize("kwargs,message", [
    (dict(data=torch.zeros(0, 2)), "at least one training sample, got an empty tensor"),
    (dict(data=torch.zeros(10, 2), batch_size=0), "expected batch_size to be an integer >= 1"),
    (dict(data=torch.zeros(10, 2), schedule="linear"), "schedule must be None .* got 'linear'"),
    (dict(data=torch.zeros(10, 2), steps=0), "expected steps to be an integer >= 1"),
    (dict(data=torch.zeros(10, 2), lr=-1.0), "expected lr to be a finite positive number"),
    (dict(data="two_moons"), "cannot draw training batches from a str"),
    (dict(data=None), "needs data"),
    (dict(objective="reverse_kl"), "needs log_target"),
    (dict(data=torch.zeros(10, 2), objective="kl"), "objective must be"),
])
def test_bad_arguments_are_clear_errors(kwargs, message):
    with pytest.raises(CourseValueError, match=message):
        fit(NormalizingFlow(2, [Affine(2)]), **{"progress": False, **kwargs})


def test_a_model_without_trainable_parameters_is_refused():
    with pytest.raises(CourseValueError, match="no trainable parameters"):
        fit(NormalizingFlow(2, [Affine(2, learnable=False)]), torch.zeros(10, 2), progress=False)


def test_a_non_finite_training_batch_is_blamed_on_the_data():
    data = torch.zeros(10, 2)
    data[3, 1] = math.nan
    with pytest.raises(CourseValueError, match="training batch of step 1 contains") as info:
        fit(NormalizingFlow(2, [Affine(2)]), data, batch_size=64, progress=False)
    assert not isinstance(info.value, TrainingDiverged)


@pytest.mark.parametrize("validating", [True, False])
def test_a_huge_learning_rate_is_reported_as_divergence_naming_the_step(validating):
    # finite parameters after the first steps that make the flows overflow later: the loss
    # must not surface as a raw error from inside torch
    model = NormalizingFlow(2, [LULinear(2), AffineCoupling(2)])
    with course_lib.validation(validating), pytest.raises(TrainingDiverged) as info:
        fit(model, datasets.get("two_moons"), steps=50, lr=1e4, progress=False)
    step = int(re.search(r"at step (\d+) of 50", str(info.value)).group(1))
    assert step > 1 and "smaller learning rate" in str(info.value)


def test_a_nan_loss_is_divergence_at_its_step():
    calls = []

    def loss_fn(model, batch):
        calls.append(1)
        return model.forward_kl(batch) * (math.nan if len(calls) == 4 else 1.0)

    with pytest.raises(TrainingDiverged, match="at step 4 of 10 the loss became nan"):
        fit(NormalizingFlow(2, [Affine(2)]), torch.randn(100, 2), steps=10, loss_fn=loss_fn,
            progress=False)


def test_a_non_finite_gradient_of_a_finite_loss_is_caught_while_validating():
    def loss_fn(model, batch):
        s = model.flows[0].shift.sum()
        return model.forward_kl(batch) + torch.sqrt(s - s)  # loss finite, d sqrt(0) = inf * 0

    with pytest.raises(TrainingDiverged, match="at step 1 of 5 the gradient became non-finite"):
        fit(NormalizingFlow(2, [Affine(2)]), torch.randn(100, 2), steps=5, loss_fn=loss_fn,
            progress=False)
    # without validation the NaN gradient reaches the parameters, and the next loss shows it
    with course_lib.validation(False), \
            pytest.raises(TrainingDiverged, match="at step 2 of 5 the loss became nan"):
        fit(NormalizingFlow(2, [Affine(2)]), torch.randn(100, 2), steps=5, loss_fn=loss_fn,
            progress=False)


def test_a_float32_model_trains_on_float64_data():
    model = NormalizingFlow(1, [Affine(1)]).float()
    data = 3.0 + 2.0 * torch.randn(2000, 1, dtype=torch.float64,
                                   generator=torch.Generator().manual_seed(1))
    fit(model, data, steps=400, batch_size=256, lr=0.05, progress=False)
    assert model.flows[0].shift.dtype == torch.float32
    assert abs(model.flows[0].shift.item() - data.mean().item()) < 0.1
