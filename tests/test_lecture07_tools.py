"""Figures, animation, explorers and timing rows of lecture 07 (spline and residual flows): the
spline figure and its explorer, the sine residual maps and their fixed-point iteration, the
cobweb animation, the series-convergence plot and the architecture cost table."""
import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from scipy import optimize, stats  # noqa: E402

from course_lib.bench.autoregressive import architecture_rows  # noqa: E402
from course_lib.flows import rq_spline  # noqa: E402
from course_lib.jacobian import jacobian  # noqa: E402
from course_lib.plotting import (MIN_ANIMATION_WIDTH, animate_cobweb,  # noqa: E402
                                 fixed_point_iterates,
                                 plot_architecture_costs, plot_residual_fold,
                                 plot_series_convergence, plot_spline, sine_branch_1d,
                                 sine_branch_2d, spline_knots)
from course_lib.widgets import lipschitz_explorer, spline_explorer  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:Animation was deleted without rendering")

WIDTHS, HEIGHTS, SLOPES, BOUND = [1.0, 2.0, 1.5, 1.5], [2.0, 1.0, 0.5, 2.5], [0.5, 2.0, 1.5], 3.0


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def line_labelled(ax, label):
    (line,) = [line for line in ax.get_lines() if line.get_label() == label]
    return line


# -- the spline figure -------------------------------------------------------------------------

def test_spline_knots_are_the_cumulative_sizes_from_minus_b_to_b():
    x, y = spline_knots(WIDTHS, HEIGHTS, BOUND)
    np.testing.assert_allclose(x, [-3.0, -2.0, 0.0, 1.5, 3.0])
    np.testing.assert_allclose(y, [-3.0, -1.0, 0.0, 0.5, 3.0])


def test_plot_spline_draws_the_spline_and_its_inverse_as_mirror_images():
    figure = plot_spline(WIDTHS, HEIGHTS, SLOPES, BOUND)
    ax = figure.axes[0]
    spline, inverse = line_labelled(ax, "$y = g(x)$"), line_labelled(ax, "$g^{-1}$")
    # g(g^{-1}(y)) = y, evaluated with the library's spline as the oracle
    back = rq_spline(torch.as_tensor(inverse.get_ydata()), *(torch.tensor(v) for v in
                     (WIDTHS, HEIGHTS, SLOPES)), BOUND)[0]
    np.testing.assert_allclose(back.numpy(), inverse.get_xdata(), atol=1e-10)
    knots = ax.collections[-1].get_offsets()
    np.testing.assert_allclose(np.asarray(knots), np.stack(spline_knots(WIDTHS, HEIGHTS, BOUND), 1))
    assert np.all(np.diff(spline.get_ydata()) > 0)


def test_plot_spline_marks_the_given_slopes_at_the_knots():
    figure = plot_spline(WIDTHS, HEIGHTS, SLOPES, BOUND)
    marked = np.asarray(figure.axes[1].collections[-1].get_offsets())[:, 1]
    np.testing.assert_allclose(marked, [1.0, *SLOPES, 1.0])


def test_plot_spline_pushed_density_integrates_to_one_and_matches_the_normal_for_the_identity():
    figure = plot_spline([1.5] * 4, [1.5] * 4, [1.0] * 3, BOUND)
    density = line_labelled(figure.axes[2], "$p_Y(y)$ (formula)")
    grid, values = density.get_xdata(), density.get_ydata()
    np.testing.assert_allclose(values, stats.norm.pdf(grid), atol=1e-12)
    curved = line_labelled(plot_spline(WIDTHS, HEIGHTS, SLOPES, BOUND).axes[2], "$p_Y(y)$ (formula)")
    mass = np.trapezoid(curved.get_ydata(), curved.get_xdata())
    assert mass == pytest.approx(stats.norm.cdf(4.5) - stats.norm.cdf(-4.5), abs=1e-3)


def test_spline_explorer_rescales_the_heights_to_sum_to_2b():
    explorer = spline_explorer()
    assert explorer.png.startswith(b"\x89PNG")
    explorer.set(h1=1.0, h2=1.0, h3=2.0, h4=4.0)
    knots = np.asarray(explorer.figure.axes[0].collections[-1].get_offsets())
    np.testing.assert_allclose(knots[:, 1], -3.0 + np.cumsum([0.0, 0.75, 0.75, 1.5, 3.0]))
    np.testing.assert_allclose(knots[:, 0], [-3.0, -1.5, 0.0, 1.5, 3.0])


def test_spline_explorer_rejects_a_wrong_number_of_derivatives_and_non_positive_values():
    with pytest.raises(ValueError, match="K - 1 derivatives"):
        spline_explorer(heights=(1.0, 1.0, 1.0), derivatives=(1.0,))
    with pytest.raises(ValueError, match="positive"):
        spline_explorer(heights=(1.0, 0.0), derivatives=(1.0,))


# -- residual maps and the fixed-point iteration -------------------------------------------------

@pytest.mark.parametrize("c", [0.3, 0.9, 1.6])
def test_sine_branch_1d_has_lipschitz_constant_c(c):
    z = torch.linspace(-7, 7, 2001, dtype=torch.float64)[:, None]
    slopes = jacobian(sine_branch_1d(c), z)[:, 0, 0]
    assert slopes.abs().max().item() == pytest.approx(c, rel=1e-5)


@pytest.mark.parametrize("c", [0.5, 1.4])
def test_sine_branch_2d_has_spectral_norm_at_most_c_and_the_stated_determinant(c):
    z = 4 * torch.rand(500, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) - 2
    J = jacobian(sine_branch_2d(c), z)
    assert torch.linalg.matrix_norm(J, ord=2).max().item() <= c + 1e-12
    det = torch.linalg.det(torch.eye(2, dtype=torch.float64) + J)
    torch.testing.assert_close(det, 1 - c ** 2 * z[:, 0].cos() * z[:, 1].cos())


def test_fixed_point_iteration_converges_to_the_root_for_a_contraction():
    c, x = 0.6, 1.0
    iterates = fixed_point_iterates(sine_branch_1d(c), torch.tensor(x, dtype=torch.float64), 60)
    root = optimize.brentq(lambda z: z + c * math.sin(z) - x, -5, 5, xtol=1e-14)
    assert iterates[0].item() == x
    assert iterates[-1].item() == pytest.approx(root, abs=1e-12)


def test_fixed_point_iteration_locks_into_a_two_cycle_when_c_is_above_one():
    iterates = fixed_point_iterates(sine_branch_1d(1.6), torch.tensor(1.0, dtype=torch.float64), 200)
    last = iterates[-4:]
    assert last[0].item() == pytest.approx(last[2].item(), abs=1e-9)
    assert abs(last[0].item() - last[1].item()) > 1.0


@pytest.mark.parametrize("c, x, count", [(0.6, 1.0, 1), (1.6, 1.0, 1), (2.5, 2.5, 3)])
def test_plot_residual_fold_marks_every_solution_and_the_backward_parts(c, x, count):
    figure = plot_residual_fold(c, x)
    roots = np.asarray(figure.axes[0].collections[-1].get_offsets())[:, 0]
    assert len(roots) == count
    np.testing.assert_allclose(roots + c * np.sin(roots), x, atol=1e-2)
    backward = line_labelled(figure.axes[0], "slope < 0: folds back").get_ydata()
    assert np.isfinite(backward).any() == (c > 1)


def test_animate_cobweb_has_one_frame_per_step_and_ends_at_the_last_iterate():
    animation = animate_cobweb(x=1.0, lipschitz=(0.6,), n_steps=3, dpi=30)
    assert len(list(animation.new_frame_seq())) == 4
    web = animation._fig.axes[0].get_lines()[-1]
    expected = fixed_point_iterates(sine_branch_1d(0.6), torch.tensor(1.0, dtype=torch.float64), 3)
    assert web.get_xdata()[-1] == pytest.approx(expected[-1].item())
    assert web.get_ydata()[-1] == pytest.approx(expected[-1].item())


@pytest.mark.parametrize("lipschitz, dpi", [((0.6, 1.6), None), ((0.6,), 30)])
def test_animate_cobweb_renders_wide_enough_to_read_its_labels(lipschitz, dpi):
    options = {} if dpi is None else {"dpi": dpi}
    animation = animate_cobweb(x=1.0, lipschitz=lipschitz, n_steps=2, **options)
    figure = animation._fig
    assert figure.get_size_inches()[0] * figure.dpi >= MIN_ANIMATION_WIDTH
    tick_sizes = [label.get_fontsize() for ax in figure.axes for label in ax.get_xticklabels()]
    assert min(tick_sizes) * figure.dpi / 72 >= 8  # pixels per character height


def test_lipschitz_explorer_redraws_a_fold_when_c_passes_one():
    explorer = lipschitz_explorer(c=0.6, x=1.0)
    assert "invertible" in explorer.figure.axes[0].get_title()
    explorer.set(c=1.6)
    assert "folds" in explorer.figure.axes[0].get_title()
    assert "-1.56" in explorer.figure.axes[2].get_title()


# -- series convergence and the cost table ---------------------------------------------------------

def test_plot_series_convergence_draws_every_curve_and_the_bound_on_a_log_scale():
    errors = {"a": ([1, 2, 3], [1.0, 0.1, 0.01]), "b": ([1, 2, 3], [1.0, 0.5, 0.4])}
    figure = plot_series_convergence(errors, bound=([1, 2, 3], [2.0, 0.2, 0.02]))
    ax = figure.axes[0]
    assert ax.get_yscale() == "log"
    assert [line.get_label() for line in ax.get_lines()] == ["a", "b", "truncation bound"]


def test_architecture_rows_time_every_architecture_at_every_dimension():
    rows = architecture_rows(dims=(2, 4), repeats=1, batch=8)
    names = [r[0] for r in rows if r[2] == 2]
    assert names == [r[0] for r in rows if r[2] == 4] and len(set(names)) == len(names) >= 9
    assert all(r[3] > 0 and r[4] > 0 and math.isfinite(r[3] + r[4]) for r in rows)
    figure = plot_architecture_costs(rows)
    assert len(figure.axes[0].patches) == len(rows) == len(figure.axes[1].patches)
    assert [t.get_text() for t in figure.axes[0].get_yticklabels()] == names
