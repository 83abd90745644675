"""Tools of lecture 09 (the continuity equation): Euler's method on dz/dt = a z, the flux through
a box, a density moved by a field (on a grid and along paths), their figures and explorers."""
import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from scipy import integrate, linalg, stats  # noqa: E402

from course_lib import plotting, widgets  # noqa: E402
from course_lib.continuity import cell_centres, outward_flux, total_mass  # noqa: E402
from course_lib.jacobian import divergence_exact  # noqa: E402
from course_lib.plotting import (SPIRAL, SPIRAL_MATRIX, SWIRL, MovingDensity,  # noqa: E402
                                 euler_path, gaussian_flux, plot_euler, plot_flux_box)

pytestmark = pytest.mark.filterwarnings("ignore:Animation was deleted without rendering")


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def rotation(z):
    return torch.stack([-z[:, 1], z[:, 0]], dim=1)


# -- Euler's method ------------------------------------------------------------------------------

@pytest.mark.parametrize("a, step", [(1.0, 0.25), (-0.5, 0.5), (-2.5, 1.0)])
def test_euler_multiplies_z_by_one_plus_a_h_at_every_step(a, step):
    t, z = euler_path(a, step, t_end=2.0, z0=1.5)
    np.testing.assert_allclose(t, step * np.arange(len(t)), rtol=0, atol=1e-15)
    np.testing.assert_allclose(z, 1.5 * (1 + a * step) ** np.arange(len(t)), rtol=1e-13)


def test_euler_refuses_an_end_time_that_is_not_a_whole_number_of_steps():
    with pytest.raises(ValueError, match="whole number of steps"):
        euler_path(1.0, 0.3, t_end=1.0)


def test_euler_error_halves_when_the_step_halves():
    errors = [abs(euler_path(1.0, h, t_end=1.0)[1][-1] - math.e) for h in (1 / 64, 1 / 128, 1 / 256)]
    assert errors[0] / errors[1] == pytest.approx(2.0, abs=0.02)
    assert errors[1] / errors[2] == pytest.approx(2.0, abs=0.01)


def test_euler_figure_circles_the_error_of_the_chosen_step():
    fig = plot_euler(0.5, 0.125, t_end=2.0)
    error = abs((1 + 0.5 * 0.125) ** 16 - math.exp(1.0))
    labels = [text.get_text() for text in fig.axes[1].get_legend().get_texts()]
    assert f"h = 0.125: error {error:.4f}" in labels


def test_euler_figure_calls_growth_of_a_decaying_solution_unstable():
    assert "unstable" in plot_euler(-2.5, 1.0).axes[0].get_title()
    assert "unstable" not in plot_euler(-2.5, 0.5).axes[0].get_title()
    assert "unstable" not in plot_euler(1.0, 1.0).axes[0].get_title()


def test_euler_figure_with_a_zero_rate_says_euler_is_exact():
    fig = plot_euler(0.0, 0.25)
    assert any("exactly" in text.get_text() for text in fig.axes[1].texts)


# -- flux through a box -----------------------------------------------------------------------------

def test_gaussian_flux_is_density_times_velocity():
    mean, cov = (0.5, -0.2), ((0.8, 0.3), (0.3, 0.5))
    z = torch.randn(7, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    want = stats.multivariate_normal(mean, cov).pdf(z.numpy())[:, None] * rotation(z).numpy()
    np.testing.assert_allclose(gaussian_flux(rotation, mean, cov)(z).numpy(), want, rtol=1e-12)


def test_flux_box_title_gives_both_sides_of_the_divergence_theorem():
    box = (0.5, 2.0, -0.5, 1.0)
    # div(p z) = p (2 - |z|^2) for the standard normal p, integrated by scipy
    density = stats.multivariate_normal(np.zeros(2), np.eye(2)).pdf
    volume = integrate.dblquad(lambda z2, z1: density([z1, z2]) * (2 - z1 * z1 - z2 * z2),
                               box[0], box[1], box[2], box[3], epsabs=1e-12)[0]
    title = plot_flux_box(gaussian_flux(lambda z: z), box).axes[0].get_title()
    assert title.count(f"= {volume:.4f}") == 2


def test_rotation_of_a_round_density_has_no_net_outflow_from_any_box():
    title = plot_flux_box(gaussian_flux(rotation), (0.3, 1.9, -1.2, 0.1)).axes[0].get_title()
    assert title.count("= 0.0000") + title.count("= -0.0000") == 2


def test_box_around_the_source_of_an_expanding_flux_shows_only_outflow():
    fig = plot_flux_box(gaussian_flux(lambda z: z), (-1.0, 1.0, -0.5, 0.5))
    sides = fig.axes[0].collections[-4:]
    red = matplotlib.colors.to_rgba("tab:red")
    assert all(np.allclose(c, red) for side in sides for c in side.get_facecolors())


# -- a density moved by a field ----------------------------------------------------------------------

def test_spiral_divergence_is_the_trace_of_its_matrix_and_the_swirl_has_none():
    z = 2 * torch.randn(50, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    spiral = divergence_exact(lambda v: SPIRAL.field(0.0, v), z, create_graph=False)
    swirl = divergence_exact(lambda v: SWIRL.field(0.0, v), z, create_graph=False)
    torch.testing.assert_close(spiral, torch.full_like(spiral, np.trace(SPIRAL_MATRIX)))
    torch.testing.assert_close(swirl, torch.zeros_like(swirl), atol=1e-13, rtol=0)


@pytest.mark.parametrize("moving", [SPIRAL, SWIRL], ids=["spiral", "swirl"])
def test_density_on_the_grid_keeps_total_mass_one(moving):
    p = moving.on_grid([0.0, 0.5, 1.0], cells=40)
    _, _, h = cell_centres(moving.half_width, 40)
    torch.testing.assert_close(total_mass(p, h), torch.ones(3, dtype=torch.float64),
                               atol=1e-6, rtol=0)


def pushed_gaussian(t):
    """``N(m, S)`` carried by ``f = A z`` for time ``t``, by scipy's matrix exponential."""
    M = linalg.expm(np.array(SPIRAL_MATRIX) * t)
    return stats.multivariate_normal(M @ np.array(SPIRAL.mean), M @ np.array(SPIRAL.cov) @ M.T)


def test_linear_closed_form_is_the_gaussian_pushed_by_the_matrix_exponential():
    z = torch.randn(9, 2, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    np.testing.assert_allclose(SPIRAL.exact_log_density(0.7, z).numpy(),
                               pushed_gaussian(0.7).logpdf(z.numpy()), rtol=1e-10)


def test_change_of_variables_2_gives_the_linear_closed_form():
    z = torch.randn(9, 2, generator=torch.Generator().manual_seed(4), dtype=torch.float64) + 1.0
    np.testing.assert_allclose(SPIRAL.log_density(0.7, z).numpy(),
                               pushed_gaussian(0.7).logpdf(z.numpy()), atol=1e-5)


def test_log_density_at_time_zero_is_the_starting_gaussian():
    z = torch.tensor([[0.0, 0.0], [1.2, 0.3]], dtype=torch.float64)
    np.testing.assert_allclose(SWIRL.log_density(0.0, z).numpy(),
                               stats.multivariate_normal(SWIRL.mean, SWIRL.cov).logpdf(z.numpy()))


def test_linear_paths_follow_the_matrix_exponential():
    z0 = SPIRAL.sample(5)
    z_t, _ = SPIRAL.paths(z0, [0.0, 0.4, 1.0])
    for k, t in enumerate([0.0, 0.4, 1.0]):
        np.testing.assert_allclose(z_t[k].numpy(),
                                   z0.numpy() @ linalg.expm(np.array(SPIRAL_MATRIX) * t).T, atol=1e-5)


def test_swirl_keeps_the_log_density_of_every_particle():
    z0 = SWIRL.sample(6)
    _, log_p = SWIRL.paths(z0, [0.0, 0.5, 1.0])
    start = stats.multivariate_normal(SWIRL.mean, SWIRL.cov).logpdf(z0.numpy())
    np.testing.assert_allclose(log_p.numpy(), np.broadcast_to(start, (3, 6)), atol=1e-5)


def test_log_density_along_a_spiral_path_falls_by_the_trace_times_t():
    z0 = SPIRAL.sample(4)
    _, log_p = SPIRAL.paths(z0, [0.0, 1.0])
    np.testing.assert_allclose((log_p[1] - log_p[0]).numpy(), -np.trace(SPIRAL_MATRIX), atol=1e-5)


def test_paths_refuse_times_that_do_not_start_at_zero():
    with pytest.raises(ValueError, match="starting at 0"):
        SPIRAL.paths(SPIRAL.sample(2), [0.5, 1.0])


def test_nonlinear_field_has_no_closed_form():
    with pytest.raises(ValueError, match="not linear"):
        SWIRL.exact_log_density(0.5, torch.zeros(1, 2, dtype=torch.float64))


def test_samples_repeat_with_the_seed_and_leave_the_global_generator_alone():
    torch.manual_seed(0)
    before = torch.rand(1)
    torch.manual_seed(0)
    first = SPIRAL.sample(3, seed=5)
    torch.testing.assert_close(torch.rand(1), before)
    torch.testing.assert_close(SPIRAL.sample(3, seed=5), first)


def test_samples_have_the_mean_and_covariance_of_the_start():
    x = MovingDensity("test", SPIRAL.field, (1.0, -2.0), ((0.5, 0.2), (0.2, 0.3))).sample(40_000)
    np.testing.assert_allclose(x.mean(0).numpy(), [1.0, -2.0], atol=0.02)
    np.testing.assert_allclose(np.cov(x.numpy().T), [[0.5, 0.2], [0.2, 0.3]], atol=0.02)


# -- figures ------------------------------------------------------------------------------------------

def test_density_on_grid_colours_each_cell_by_its_value():
    p = torch.rand(12, 12, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    fig = plotting.plot_density_on_grid(p, 2.0, field=SPIRAL.field)
    np.testing.assert_allclose(np.asarray(fig.axes[0].collections[0].get_array()).ravel(),
                               p.numpy().ravel())


def test_animation_shows_one_time_per_frame_with_its_total_mass():
    times = [0.0, 0.5, 1.0]
    animation = plotting.animate_moving_density(SWIRL, times, cells=30, particles=3)
    assert len(list(animation.new_frame_seq())) == len(times)
    animation._func(2)
    title = animation._fig.axes[0].get_title()
    assert title.startswith("t = 1.00: total mass 1.0000")


def test_animation_is_at_least_640_pixels_wide():
    animation = plotting.animate_moving_density(SWIRL, [0.0, 1.0], cells=20, particles=2)
    width, height = animation._fig.get_size_inches() * animation._fig.dpi
    assert width >= 640 and height >= 480


def test_linear_field_1d_dots_sit_on_the_closed_form():
    a = 0.5
    fig = plotting.plot_linear_field_1d(a, starts=(-1.0, 2.0))
    log_ax = fig.axes[1]
    dots = [line for line in log_ax.lines if line.get_marker() == "o"]
    for dot, start in zip(dots, (-1.0, 2.0)):
        t, log_p = dot.get_data()
        want = stats.norm(0, np.exp(a * t)).logpdf(start * np.exp(a * t))
        np.testing.assert_allclose(log_p, want, atol=1e-6)


# -- explorers -----------------------------------------------------------------------------------------

def test_euler_explorer_draws_when_built_and_redraws_for_a_new_step():
    explorer = widgets.euler_explorer(a=1.0, step=0.25)
    assert explorer.png.startswith(b"\x89PNG")
    assert explorer.figure.axes[0].get_title().startswith("dz/dt = 1 z: 8 Euler steps")
    explorer.controls["step"].value = 0.0625
    assert explorer.figure.axes[0].get_title().startswith("dz/dt = 1 z: 32 Euler steps")


def test_flux_box_explorer_integrates_over_the_box_its_sliders_describe():
    explorer = widgets.flux_box_explorer()
    explorer.set(field="drift f = (1, 0)", c1=-1.0, c2=0.5, width=1.0, height=2.0)
    box = (-1.5, -0.5, -0.5, 1.5)
    flux = outward_flux(gaussian_flux(widgets.FLUX_FIELDS["drift f = (1, 0)"]), box)
    assert explorer.figure.axes[0].get_title().count(f"= {flux:.4f}") == 2


def test_flux_box_explorer_refuses_an_unknown_field():
    with pytest.raises(ValueError, match="expected a field among"):
        widgets.flux_box_explorer(field="vortex")


@pytest.fixture(scope="module")
def continuity():
    return widgets.continuity_explorer(t=0.5, frames=3, cells=40, resolution=30, particles=3)


def test_continuity_explorer_shows_both_views_with_their_mass(continuity):
    left, right = continuity.figure.axes[:2]
    assert "on a grid" in left.get_title() and "change of variables 2.0" in right.get_title()
    assert left.get_title().endswith("total mass 1.0000")
    assert right.get_title().endswith("total mass 1.0000")


def test_continuity_explorer_switches_example_and_time(continuity):
    continuity.set(example="swirl", t=1.0)
    assert continuity.figure._suptitle.get_text() == f"{SWIRL.title}, t = 1.00"
    continuity.set(example="spiral", t=0.0)
    assert continuity.figure._suptitle.get_text() == f"{SPIRAL.title}, t = 0.00"


def test_continuity_explorer_refuses_an_unknown_example():
    with pytest.raises(ValueError, match="expected an example among"):
        widgets.continuity_explorer(example="vortex")
