"""The sympy derivations prove their claims, and their results agree with scipy and numpy."""
import numpy as np
import pytest
import scipy.stats
import sympy as sp

from course_lib import derivations as D


@pytest.mark.parametrize("name", sorted(D.DERIVATIONS))
def test_every_claim_simplifies_to_zero_or_true(name):
    derivation = D.DERIVATIONS[name]()
    assert derivation.claims, f"{name} proves nothing"
    assert derivation.check(), derivation.residuals()


def test_check_rejects_a_false_claim():
    x = sp.Symbol("x", real=True)
    wrong = D.Derivation("wrong", [], {"x is 1": x - 1, "1 = 2": sp.Eq(1, 2)})
    assert not wrong.check()


def test_lecture_example_2z_plus_3_is_normal_with_mean_3_and_std_2():
    derivation = D.change_of_variables_affine(2, 3)
    assert derivation.check()
    density = sp.lambdify(sp.Symbol("x", real=True), derivation.steps[-1].expr.rhs)
    xs = np.linspace(-4.0, 10.0, 29)
    np.testing.assert_allclose(density(xs), scipy.stats.norm(3, 2).pdf(xs), rtol=1e-12)


def test_log_normal_density_matches_scipy():
    density_step = D.log_normal().steps[1].expr
    density = sp.lambdify(sp.Symbol("x", positive=True), density_step.rhs)
    xs = np.linspace(0.05, 6.0, 40)
    np.testing.assert_allclose(density(xs), scipy.stats.lognorm(s=1.0).pdf(xs), rtol=1e-12)


def test_linear_map_determinant_matches_numpy():
    J = np.array(D.linear_map_determinant().steps[0].expr, dtype=float)
    assert np.linalg.det(J) == pytest.approx(6.0)


def test_steps_render_as_markdown_with_latex():
    text = D.continuity_equation()._repr_markdown_()
    assert "$$" in text and r"\int" in text and "divergence theorem" in text.lower()


def test_gaussian_linear_field_rejects_unsupported_dimension():
    with pytest.raises(ValueError, match="dim must be 1 or 2, got 3"):
        D.gaussian_linear_field(3)
