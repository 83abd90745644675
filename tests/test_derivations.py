"""The sympy derivations prove their claims, and their results agree with scipy and numpy."""
import numpy as np
import pytest
import scipy.stats
import sympy as sp
import torch

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


def test_derivative_of_a_product_keeps_its_operand_in_parentheses():
    z1, t = sp.symbols("z_1 t")
    f1, p = sp.Function("f_1")(z1, t), sp.Function("p")(z1, t)
    text = D.latex(sp.Derivative(f1 * p, z1, evaluate=False))
    assert text.startswith(r"\frac{\partial}{\partial z_{1}} \left(")
    assert text.endswith(r"\right)")
    # a single function is not wrapped, and sympy's plain LaTeX is the one being corrected
    assert D.latex(sp.Derivative(f1, z1)) == sp.latex(sp.Derivative(f1, z1))
    assert sp.latex(sp.Derivative(f1 * p, z1, evaluate=False)) != text


def test_continuity_steps_show_the_flux_derivative_with_parentheses():
    text = D.continuity_equation()._repr_markdown_()
    assert r"\frac{\partial}{\partial z_{1}} \left(f_{1}" in text
    assert r"\frac{\partial}{\partial z_{1}} f_{1}{\left(z_{1},z_{2},t \right)} p" not in text


def test_notation_symbols_print_verbatim():
    assert D.latex(D.Shown(r"\log p_t(z_t)")) == r"\log p_t(z_t)"
    assert r"\log p_t(z_t)" in D.linear_field_1d()._repr_markdown_()
    assert "p_{t(z t)}" not in D.linear_field_1d()._repr_markdown_()


def test_log_density_ode_passes_through_the_eulerian_form():
    derivation = D.log_density_ode()
    residual = derivation.residuals()["d/dt log p = -div f - f . grad log p at a fixed place"]
    assert residual == 0
    assert any("Eulerian" in step.text for step in derivation.steps)
    # the Eulerian claim is not vacuous: dropping the transport term breaks it
    (z1, z2), t, _ = D._box_2d()
    p = sp.Function("p")(z1, z2, t)
    f = sp.Matrix([sp.Function("f_1")(z1, z2, t), sp.Function("f_2")(z1, z2, t)])
    continuity = {sp.Derivative(p, t): -D.divergence(p * f, (z1, z2))}
    wrong = sp.diff(sp.log(p), t).subs(continuity) + D.divergence(f, (z1, z2))
    assert sp.simplify(wrong) != 0


def test_gaussian_linear_field_rejects_unsupported_dimension():
    with pytest.raises(ValueError, match="dim must be 1 or 2, got 3"):
        D.gaussian_linear_field(3)


# -- the divergence is the trace of the Jacobian ----------------------------------------------------

def _all_partials(f, z):
    return sp.Add(*[sp.diff(f[i], z[j]) for i in range(len(z)) for j in range(len(z))])


def _shifted_partials(f, z):
    return sp.Add(*[sp.diff(f[i], z[(i + 1) % len(z)]) for i in range(len(z))])


def _half_the_sum(f, z):
    return D.divergence(f, z) / 2


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("wrong", [_all_partials, _shifted_partials, _half_the_sum],
                         ids=["all partials", "shifted index", "half"])
def test_a_wrong_definition_of_the_divergence_fails_the_proof(dim, wrong):
    derivation = D.divergence_is_trace(dim, definition=wrong)
    assert not derivation.check()
    assert all(r != 0 for r in derivation.residuals().values())


def test_the_default_definition_passes_in_every_dimension_up_to_three():
    for dim in (1, 2, 3):
        derivation = D.divergence_is_trace(dim)
        assert derivation.check(), derivation.residuals()
        assert len(derivation.claims) == 2


def _concrete_field():
    z = sp.symbols("z_1:4", real=True)
    f = sp.Matrix([sp.sin(z[0] * z[1]) + z[2] ** 2, z[0] ** 2 * sp.exp(-z[1]), z[0] * z[2] ** 3])
    return f, z


def _torch_field(x):
    z1, z2, z3 = x.unbind(-1)
    return torch.stack([torch.sin(z1 * z2) + z3 ** 2, z1 ** 2 * torch.exp(-z2), z1 * z3 ** 3], -1)


def test_divergence_from_the_components_agrees_with_autograd_on_a_concrete_field():
    from course_lib.jacobian import divergence_exact
    f, z = _concrete_field()
    div = sp.lambdify(z, D.divergence(f, z), "numpy")
    x = torch.randn(20, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    want = divergence_exact(_torch_field, x, create_graph=False).numpy()
    np.testing.assert_allclose(div(*x.numpy().T), want, rtol=1e-12, atol=1e-12)


def test_sympys_jacobian_has_the_orientation_of_autograds_and_the_same_trace():
    from course_lib.jacobian import jacobian
    f, z = _concrete_field()
    J = sp.lambdify(z, f.jacobian(z), "numpy")
    x = torch.randn(5, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    auto = jacobian(_torch_field, x).numpy()
    for k in range(5):
        np.testing.assert_allclose(np.asarray(J(*x[k].numpy()), dtype=float), auto[k], rtol=1e-12,
                                   atol=1e-12)


def test_a_field_with_too_few_components_has_no_divergence():
    z = sp.symbols("z_1:3")
    with pytest.raises(ValueError, match="one component per coordinate, got 1 components and 2"):
        D.divergence(sp.Matrix([z[0]]), z)
