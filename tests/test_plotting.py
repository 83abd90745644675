"""The lecture figures draw what they claim: the formula as a line, samples as a histogram that
estimates the density, equal-mass regions that really are an interval and its image, and a
2D density coloured by its values."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.collections import PathCollection, PolyCollection, QuadMesh  # noqa: E402
from matplotlib.patches import StepPatch  # noqa: E402
from scipy import stats  # noqa: E402

from course_lib import NormalizingFlow  # noqa: E402
from course_lib.flows import Affine, Exp  # noqa: E402
from course_lib.plotting import (density_1d, model_dtype, plot_base_and_pushed,  # noqa: E402
                                 plot_density_2d, plot_equal_mass, plot_pushed_density)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def normal_samples(n=200_000, seed=0):
    return np.random.default_rng(seed).standard_normal(n)


def bars(ax):
    (patch,) = [p for p in ax.patches if isinstance(p, StepPatch)]
    data = patch.get_data()
    return data.values, data.edges


def test_density_1d_of_exp_is_the_log_normal():
    x = np.array([0.3, 1.0, 2.5])
    assert np.allclose(density_1d(NormalizingFlow(1, [Exp(1)]), x), stats.lognorm(s=1.0).pdf(x),
                       atol=1e-12)


def test_density_1d_keeps_the_shape_of_its_input():
    model = NormalizingFlow(1, [Affine(1, scale=2.0)])
    assert density_1d(model, 0.0).shape == ()
    assert density_1d(model, np.zeros((3, 2))).shape == (3, 2)


def test_density_1d_evaluates_in_the_model_dtype():
    model = NormalizingFlow(1, [Affine(1, scale=2.0)]).float()
    assert model_dtype(model) == torch.float32
    assert np.isclose(density_1d(model, 0.0), stats.norm(0, 2).pdf(0.0), atol=1e-6)


def test_pushed_density_draws_the_formula_as_a_line():
    grid = np.linspace(-4, 4, 50)
    fig = plot_pushed_density(normal_samples(1000), grid, stats.norm.pdf(grid))
    (line,) = fig.axes[0].lines
    assert np.array_equal(line.get_xdata(), grid)
    assert np.array_equal(line.get_ydata(), stats.norm.pdf(grid))


def test_pushed_density_bars_estimate_the_density():
    grid = np.linspace(-3, 3, 100)
    fig = plot_pushed_density(normal_samples(), grid, stats.norm.pdf(grid), bins=30)
    heights, edges = bars(fig.axes[0])
    centres = (edges[:-1] + edges[1:]) / 2
    assert len(heights) == 30
    assert np.abs(heights - stats.norm.pdf(centres)).max() < 0.01


def test_pushed_density_bars_count_mass_outside_the_window():
    grid = np.linspace(0, 4, 100)
    fig = plot_pushed_density(normal_samples(), grid, stats.norm.pdf(grid))
    heights, edges = bars(fig.axes[0])
    shown_mass = np.sum(heights * np.diff(edges))
    assert abs(shown_mass - (stats.norm.cdf(4) - stats.norm.cdf(0))) < 0.01


def test_plot_draws_into_the_given_axes_and_returns_their_figure():
    fig, ax = plt.subplots()
    grid = np.linspace(-1, 1, 10)
    assert plot_pushed_density(normal_samples(100), grid, grid * 0, ax=ax) is fig
    assert len(fig.axes) == 1


def test_base_and_pushed_shows_one_panel_per_variable():
    z = np.linspace(-4, 4, 50)
    x = 2 * z + 3
    z_samples = normal_samples(1000)
    fig = plot_base_and_pushed(z, stats.norm.pdf(z), x, stats.norm(3, 2).pdf(x),
                               z_samples=z_samples, x_samples=2 * z_samples + 3)
    left, right = fig.axes
    assert left.get_xlabel() == "$z$" and right.get_xlabel() == "$x$"
    assert np.array_equal(right.lines[0].get_xdata(), x)
    assert len(bars(left)[0]) == len(bars(right)[0]) == 60


def shaded_x_range(ax):
    (shade,) = [c for c in ax.collections if isinstance(c, PolyCollection)]
    xs = shade.get_paths()[0].vertices[:, 0]
    return xs.min(), xs.max()


def test_equal_mass_shades_an_interval_and_its_image():
    fig = plot_equal_mass(np.exp, stats.norm.pdf, stats.lognorm(s=1.0).pdf, (0.5, 1.0),
                          x_range=(0.01, 6))
    assert np.allclose(shaded_x_range(fig.axes[0]), (0.5, 1.0))
    assert np.allclose(shaded_x_range(fig.axes[1]), (np.exp(0.5), np.exp(1.0)))


def test_equal_mass_titles_state_the_same_probability():
    fig = plot_equal_mass(np.exp, stats.norm.pdf, stats.lognorm(s=1.0).pdf, (0.5, 1.0),
                          x_range=(0.01, 6))
    expected = f"{stats.norm.cdf(1.0) - stats.norm.cdf(0.5):.4f}"
    assert all(ax.get_title().endswith(f"= {expected}") for ax in fig.axes)


def test_equal_mass_of_a_decreasing_map_shades_the_sorted_image():
    fig = plot_equal_mass(lambda z: -2 * z + 1, stats.norm.pdf, stats.norm(1, 2).pdf, (0.0, 1.0))
    assert np.allclose(shaded_x_range(fig.axes[1]), (-1.0, 1.0))
    assert fig.axes[1].get_xlim() == pytest.approx((-7.0, 9.0))


def standard_normal_2d(x):
    return torch.distributions.MultivariateNormal(torch.zeros(2), torch.eye(2)).log_prob(x)


def test_density_2d_colours_each_grid_point_by_its_density():
    fig = plot_density_2d(standard_normal_2d, (-2, 2), (-1, 3), resolution=41)
    (mesh,) = [c for c in fig.axes[0].collections if isinstance(c, QuadMesh)]
    xs, ys = np.meshgrid(np.linspace(-2, 2, 41), np.linspace(-1, 3, 41))
    expected = stats.multivariate_normal(np.zeros(2)).pdf(np.stack([xs, ys], axis=-1))
    assert np.allclose(np.asarray(mesh.get_array()).reshape(41, 41), expected, atol=1e-12)


def test_density_2d_has_a_colour_bar():
    fig = plot_density_2d(standard_normal_2d, (-2, 2), (-2, 2), resolution=20)
    assert len(fig.axes) == 2 and fig.axes[1].get_ylabel() == "density"


def test_density_2d_scatters_the_samples():
    samples = np.random.default_rng(1).standard_normal((50, 2))
    fig = plot_density_2d(standard_normal_2d, (-3, 3), (-3, 3), samples=samples, resolution=20)
    (points,) = [c for c in fig.axes[0].collections if isinstance(c, PathCollection)]
    assert np.allclose(points.get_offsets(), samples)


def test_density_2d_of_a_model_shows_zero_outside_its_support():
    square = torch.distributions.Independent(
        torch.distributions.Uniform(torch.zeros(2), torch.ones(2), validate_args=False), 1)
    model = NormalizingFlow(square, [Affine(2, scale=torch.tensor([2.0, 1.0]))])
    fig = plot_density_2d(model.log_prob, (-0.5, 2.5), (-0.5, 1.5), resolution=61)
    (mesh,) = [c for c in fig.axes[0].collections if isinstance(c, QuadMesh)]
    assert set(np.unique(np.asarray(mesh.get_array()))) == {0.0, 0.5}


def test_pushed_density_leaves_room_for_the_legend_above_a_flat_histogram():
    samples = np.random.default_rng(0).uniform(1, 4, size=20_000)
    grid = np.linspace(0, 5, 501)
    density = np.where((grid >= 1) & (grid <= 4), 1 / 3, 0.0)
    ax = plot_pushed_density(samples, grid, density).axes[0]
    (bars,) = ax.patches                      # one StepPatch: the histogram
    bars = float(bars.get_data().values.max())
    top = ax.get_ylim()[1]
    assert top >= 1.25 * max(bars, 1 / 3)
    legend = ax.get_legend().get_window_extent(ax.figure.canvas.get_renderer())
    highest_bar = ax.transData.transform((0, max(bars, 1 / 3)))[1]
    assert legend.y0 > highest_bar


def test_a_negative_curve_drawn_afterwards_stays_in_view():
    grid = np.linspace(-4, 4, 201)
    ax = plot_pushed_density(normal_samples(2000), grid, stats.norm.pdf(grid)).axes[0]
    assert ax.get_ylim()[0] == 0
    ax.plot(grid, -stats.norm.pdf(grid))
    assert ax.get_ylim()[0] < -stats.norm.pdf(0)
