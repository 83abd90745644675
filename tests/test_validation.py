"""The shared argument helpers and the switch for value checks."""
import math

import pytest
import torch

import course_lib
from course_lib.flows import Affine, FlowInputError
from course_lib.validation import (CourseValueError, check_finite, finite_float, positive_float,
                                   positive_int)


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "3", None, torch.tensor(3)])
def test_positive_int_refuses(bad):
    with pytest.raises(CourseValueError, match="expected n to be an integer >= 1"):
        positive_int(bad, "n", "here")


def test_positive_int_accepts_and_names_place():
    assert positive_int(3, "n") == 3
    with pytest.raises(CourseValueError, match=r"^Thing: expected width"):
        positive_int(0, "width", "Thing")


@pytest.mark.parametrize("bad", [0.0, -1.0, math.nan, math.inf, "1", True])
def test_positive_float_refuses(bad):
    with pytest.raises(CourseValueError, match="positive number"):
        positive_float(bad, "scale")


def test_positive_float_inf_when_allowed():
    assert positive_float(math.inf, "bound", allow_inf=True) == math.inf
    assert finite_float(torch.tensor(2.0), "a") == 2.0
    with pytest.raises(CourseValueError, match="finite"):
        finite_float(math.nan, "a")


def test_switch_turns_value_checks_off_and_restores():
    x = torch.tensor([[math.nan, 1.0]])
    assert course_lib.is_validating()
    with pytest.raises(CourseValueError, match="1 non-finite"):
        check_finite(x, "x", "test")
    with course_lib.validation(False):
        assert not course_lib.is_validating()
        check_finite(x, "x", "test")
        Affine(2)(x)  # the structural checks pass, the value scan is off
    assert course_lib.is_validating()
    with pytest.raises(FlowInputError, match="non-finite"):
        Affine(2)(x)


def test_shape_checks_stay_on_without_validation():
    with course_lib.validation(False):
        with pytest.raises(FlowInputError, match=r"expected z of shape \(batch, 2\)"):
            Affine(2)(torch.zeros(3, 4))


def test_set_validation_refuses_non_bool():
    with pytest.raises(CourseValueError):
        course_lib.set_validation("no")
