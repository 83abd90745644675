"""The figures and explorers of lecture 02 (the Jacobian as local geometry) show what they
claim: areas, determinants and densities are checked against closed forms."""
import math

import matplotlib
import numpy as np
import pytest
import torch
from torch.distributions import MultivariateNormal

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from course_lib import plotting, widgets  # noqa: E402
from course_lib.flows import Exp  # noqa: E402

K, OMEGA = 0.7, 1.5


def wave(z, k=K):
    """A triangular map with ``det J = (1 + k cos(w z_1)) (1 + k cos(w z_2))``."""
    z1, z2 = z[:, 0], z[:, 1]
    return torch.stack([z1 + k * torch.sin(OMEGA * z1) / OMEGA,
                        z2 + k * torch.sin(OMEGA * z2) / OMEGA - 0.25 * z1 ** 2], dim=1)


def wave_det(z, k=K):
    return (1 + k * np.cos(OMEGA * z[..., 0])) * (1 + k * np.cos(OMEGA * z[..., 1]))


def cell_centres(lim, cells):
    ticks = np.linspace(-lim, lim, cells + 1)
    mid = (ticks[:-1] + ticks[1:]) / 2
    return np.stack(np.meshgrid(mid, mid), axis=-1)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_polygon_area_of_the_image_of_the_unit_square_is_abs_det():
    J = torch.randn(2, 2, generator=torch.Generator().manual_seed(3))
    square = torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    assert plotting.polygon_area(square @ J.T) == pytest.approx(abs(torch.linalg.det(J).item()))


def test_polygon_area_is_the_same_in_both_orientations():
    triangle = np.array([[0.0, 0.0], [4.0, 0.0], [1.0, 3.0]])
    assert plotting.polygon_area(triangle) == plotting.polygon_area(triangle[::-1]) == 6.0


def test_square_boundary_lies_on_the_square_and_encloses_its_area():
    edge = plotting.square_boundary((0.5, -1.0), 0.25, n_per_side=7)
    assert edge.shape == (28, 2)
    on = lambda values, *sides: sum(torch.isclose(values, torch.tensor(s)) for s in sides) > 0
    assert bool((on(edge[:, 0], 0.5, 0.75) | on(edge[:, 1], -1.0, -0.75)).all())
    assert plotting.polygon_area(edge) == pytest.approx(0.0625)


def test_image_area_of_a_curving_map_is_the_integral_of_its_jacobian_determinant():
    # f(z) = z + 0.5 (sin z_2, sin z_1): det J = 1 - 0.25 cos z_1 cos z_2 > 0, one-to-one
    f = lambda z: z + 0.5 * torch.sin(z.flip(1))
    a, b, h = 0.3, -0.7, 0.6
    exact = h * h - 0.25 * (math.sin(a + h) - math.sin(a)) * (math.sin(b + h) - math.sin(b))
    assert plotting.image_area(f, (a, b), h, n_per_side=400) == pytest.approx(exact, rel=1e-5)


def test_image_area_accepts_a_flow_and_matches_the_exp_closed_form():
    a, b, h = -0.5, 0.2, 0.3
    exact = (math.exp(a + h) - math.exp(a)) * (math.exp(b + h) - math.exp(b))
    assert plotting.image_area(Exp(2), (a, b), h) == pytest.approx(exact, rel=1e-9)


def test_linear_map_title_states_det_and_area_also_for_a_flip():
    J = np.array([[0.0, 2.0], [1.0, 0.0]])  # swaps and stretches: det -2, area 2
    ax = plotting.plot_linear_map(J).axes[0]
    assert ax.get_title() == "det J = -2.00, area of the image = 2.00"


def test_pushed_gaussian_density_is_the_normal_with_covariance_J_J_transpose():
    J = torch.tensor([[3.0, 1.0], [0.0, 2.0]])
    ax = plotting.plot_pushed_gaussian(J, lim=5.0).axes[0]
    mesh = ax.collections[0]
    ticks = torch.linspace(-5.0, 5.0, 120)
    gx, gy = torch.meshgrid(ticks, ticks, indexing="xy")
    oracle = MultivariateNormal(torch.zeros(2), J @ J.T).log_prob(torch.stack([gx, gy], -1)).exp()
    np.testing.assert_allclose(np.asarray(mesh.get_array()).reshape(120, 120), oracle.numpy(),
                               rtol=1e-9, atol=1e-15)


def test_pushed_gaussian_says_collapse_when_det_is_zero():
    ax = plotting.plot_pushed_gaussian([[1.0, 2.0], [0.5, 1.0]]).axes[0]
    assert any("collapse: no density" in t.get_text() for t in ax.texts)


def test_grid_cells_are_coloured_by_log10_abs_det_at_their_centres():
    ax = plotting.plot_grid_deformation(wave, lim=3.0, cells=10).axes[0]
    colours = np.asarray(ax.collections[0].get_array()).reshape(10, 10)
    np.testing.assert_allclose(colours, np.log10(wave_det(cell_centres(3.0, 10))), atol=1e-12)


def test_grid_cells_where_the_map_folds_are_masked_and_reported():
    fold = lambda z: wave(z, k=1.4)
    ax = plotting.plot_grid_deformation(fold, lim=3.0, cells=10).axes[0]
    masked = np.ma.getmaskarray(ax.collections[0].get_array()).reshape(10, 10)
    np.testing.assert_array_equal(masked, wave_det(cell_centres(3.0, 10), k=1.4) <= 0)
    assert "folds" in ax.get_title()


def test_grid_at_t_zero_is_the_undeformed_grid():
    ax = plotting.plot_grid_deformation(wave, cells=6, t=0.0).axes[0]
    mesh = ax.collections[0]
    np.testing.assert_allclose(np.asarray(mesh.get_array()), 0.0, atol=1e-12)
    corners = mesh.get_coordinates()
    np.testing.assert_allclose(corners[0, 0], [-3.0, -3.0])
    np.testing.assert_allclose(corners[-1, -1], [3.0, 3.0])


def test_animation_has_the_requested_frames_and_ends_at_the_map():
    animation = plotting.animate_grid_deformation(wave, cells=6, frames=3, figsize=(2, 2), dpi=30)
    html = animation.to_jshtml()
    assert html.count("frames[2]") == 1 and html.count("frames[3]") == 0
    ax = animation._fig.axes[0]
    colours = np.asarray(ax.collections[0].get_array()).reshape(6, 6)
    np.testing.assert_allclose(colours, np.log10(wave_det(cell_centres(3.0, 6))), atol=1e-12)


def test_local_linearisation_outline_has_area_abs_det_times_the_square():
    z0, h = np.array([1.0, 0.5]), 0.2
    axes = plotting.plot_local_linearisation(wave, z0, h).axes
    outline = axes[1].lines[0].get_xydata()[:-1]
    assert plotting.polygon_area(outline) == pytest.approx(wave_det(z0) * h * h, rel=1e-9)


def test_pushforward_density_is_base_density_over_abs_det():
    axes = plotting.plot_pushforward(wave, lim=2.0, cells=8, samples=50).axes
    density = np.asarray(axes[2].collections[0].get_array()).reshape(8, 8)
    c = cell_centres(2.0, 8)
    expected = np.exp(-0.5 * (c ** 2).sum(-1)) / (2 * np.pi) / np.abs(wave_det(c))
    np.testing.assert_allclose(density, expected, rtol=1e-9)


def test_matrix_explorer_draws_its_first_figure_when_built():
    explorer = widgets.matrix_explorer()
    assert explorer.png.startswith(b"\x89PNG")
    assert explorer.figure.axes[0].get_title() == "det J = 6.00, area of the image = 6.00"


def test_matrix_explorer_redraws_and_shows_collapse_when_a_slider_makes_det_zero():
    explorer = widgets.matrix_explorer()
    explorer.controls["d"].value = 0.0  # J = [[3, 1], [0, 0]]
    assert explorer.figure.axes[0].get_title().startswith("det J = 0.00")
    assert any("collapse" in t.get_text() for t in explorer.figure.axes[1].texts)


def test_invertibility_explorer_reports_a_fold_once_k_passes_one():
    explorer = widgets.invertibility_explorer(wave, k=0.7)
    assert "no fold" in explorer.figure.axes[0].get_title()
    explorer.controls["k"].value = 1.3
    assert "folds" in explorer.figure.axes[0].get_title()


def test_grid_animation_is_at_least_640_pixels_wide_by_default():
    animation = plotting.animate_grid_deformation(wave, cells=4, frames=2)
    width, _ = animation._fig.get_size_inches() * animation._fig.dpi
    assert width >= 640


def test_grid_lines_are_thin_and_translucent_so_cell_colours_show():
    ax = plotting.plot_grid_deformation(lambda z: wave(z, 1.3), cells=8).axes[0]
    assert len(ax.collections) == 2                  # the cells, and the folded ones on top
    for mesh in ax.collections:
        edges = np.asarray(mesh.get_edgecolor()).reshape(-1, 4)
        if len(edges):                                # edges drawn: thin and translucent
            assert (edges[:, 3] <= 0.5).all()
            assert np.all(np.asarray(mesh.get_linewidth()) <= 0.3)


def test_matrix_explorer_sliders_start_strictly_inside_their_range():
    explorer = widgets.matrix_explorer()
    for name, slider in explorer.controls.items():
        assert slider.min < slider.value < slider.max, name
