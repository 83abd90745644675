"""Every bad input is refused with a ValueError that says what was expected and what was given."""
import math

import pytest
import torch

from course_lib import datasets
from course_lib.flows import Affine, Compose, Exp, FlowInputError, Inverse, Sigmoid
from course_lib.jacobian import divergence_hutchinson, jacobian
from course_lib.model import NormalizingFlow
from course_lib.training import TrainingDiverged, fit
from course_lib.validation import CourseValueError


def test_wrong_number_of_features_names_expected_and_given_shapes():
    with pytest.raises(ValueError, match=r"expected z of shape \(batch, 3\), got \(4, 2\)"):
        Affine(3)(torch.zeros(4, 2))


def test_missing_batch_dimension_is_refused():
    with pytest.raises(ValueError, match=r"shape \(batch, 2\), got \(2,\)"):
        Affine(2).inverse(torch.zeros(2))


def test_integer_input_is_refused_with_its_dtype():
    with pytest.raises(ValueError, match="floating dtype.*torch.int64"):
        Affine(2)(torch.zeros(3, 2, dtype=torch.long))


def test_dtype_mismatch_with_parameters_is_refused():
    with pytest.raises(ValueError, match="dtype torch.float64.*got torch.float32"):
        Affine(2).double()(torch.zeros(3, 2, dtype=torch.float32))


def test_non_tensor_input_is_refused():
    with pytest.raises(ValueError, match="torch.Tensor, got list"):
        Exp(2)([[0.0, 1.0]])


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_non_finite_input_is_refused(bad):
    z = torch.zeros(3, 2)
    z[1, 0] = bad
    with pytest.raises(ValueError, match="1 non-finite value"):
        Compose(Affine(2), Exp(2))(z)


def test_zero_scale_is_refused_as_not_invertible():
    with pytest.raises(ValueError, match=r"scale is 0 in dimension\(s\) \[1\].*not invertible"):
        Affine(2, scale=torch.tensor([1.0, 0.0]))(torch.zeros(1, 2))


def test_logarithm_of_a_negative_value_names_the_domain():
    with pytest.raises(ValueError, match=r"defined on \(0, inf\)"):
        Exp(1).inverse(torch.tensor([[-1.0]]))


def test_logit_outside_the_unit_interval_names_the_domain():
    with pytest.raises(ValueError, match=r"\(0, 1\), got 1.5"):
        Inverse(Sigmoid(1))(torch.tensor([[1.5]]))


@pytest.mark.parametrize("call", [
    lambda: Exp(1).inverse(torch.tensor([[-1.0]])),                          # a domain error
    lambda: Affine(2)(torch.zeros(3, 4)),                                   # a shape error
    lambda: Affine(-1),                                                     # a bad argument
    lambda: Compose(torch.nn.Linear(2, 2)),                                 # not a flow
], ids=["domain", "shape", "argument", "not a flow"])
def test_every_refusal_is_caught_as_a_value_error_naming_expected_and_given(call):
    try:
        call()
    except ValueError as error:
        assert isinstance(error, CourseValueError)
        assert "expected" in str(error) or "defined on" in str(error)
        assert "got" in str(error)
    else:
        pytest.fail("the call was accepted")


def test_compose_refuses_non_flows():
    with pytest.raises(ValueError, match="Compose: expected Flow instances.*got Linear at position 1"):
        Compose(Affine(2), torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="Compose: expected Flow instances.*got Linear at position 0"):
        Compose(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="Compose: expected Flow instances or one list of them, got int"):
        Compose(3)
    with pytest.raises(ValueError, match="at least one flow, got none"):
        Compose([])


def test_affine_refuses_a_scale_of_the_wrong_length():
    with pytest.raises(ValueError, match=r"shape \(3,\), got shape \(2,\)"):
        Affine(3, scale=torch.ones(2))


@pytest.mark.parametrize("n", [-5, 2.5, (2, -1)])
def test_sampling_refuses_a_bad_number_of_samples(n):
    # torch's semantics: a sample shape of sizes >= 0, so sample(0) is an empty batch
    with pytest.raises(ValueError, match="NormalizingFlow.rsample: expected"):
        NormalizingFlow(2, [Affine(2)]).sample(n)


def test_reverse_kl_refuses_a_target_of_the_wrong_shape():
    model = NormalizingFlow(2, [Affine(2)])
    with pytest.raises(ValueError, match=r"shape \(8,\).*got \(8, 2\)"):
        model.reverse_kl(lambda x: -x ** 2, 8)


def test_jacobian_refuses_input_without_a_batch_dimension():
    with pytest.raises(ValueError, match=r"shape \(batch, ...\), got shape \(3,\)"):
        jacobian(torch.sin, torch.zeros(3))


def test_hutchinson_refuses_an_unknown_noise():
    with pytest.raises(ValueError, match="'gaussian' or 'rademacher'"):
        divergence_hutchinson(torch.sin, torch.zeros(2, 3), noise="uniform")


def test_dataset_log_prob_refuses_the_wrong_shape():
    with pytest.raises(ValueError, match=r"expected shape \(batch, 2\), got \(5,\)"):
        datasets.get("checkerboard").log_prob(torch.zeros(5))


def test_training_stops_with_the_step_when_the_loss_becomes_nan():
    model = NormalizingFlow(1, [Affine(1)])
    target = lambda x: torch.where(torch.tensor(len(calls) >= 3), math.nan, 0.0) * x[:, 0]
    calls = []
    with pytest.raises(TrainingDiverged, match="at step 4 of 10"):
        fit(model, objective="reverse_kl", log_target=target, steps=10, progress=False,
            callback=lambda step, loss: calls.append(step))


def test_training_refuses_an_unknown_objective():
    with pytest.raises(ValueError, match="'forward_kl' or 'reverse_kl'"):
        fit(NormalizingFlow(1, [Affine(1)]), torch.zeros(4, 1), objective="kl")


def test_reverse_kl_training_needs_a_target():
    with pytest.raises(ValueError, match="needs log_target"):
        fit(NormalizingFlow(1, [Affine(1)]), objective="reverse_kl")
