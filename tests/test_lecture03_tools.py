"""Figures, animation and explorer of lecture 03 (composing flows): stages of a stack,
the layer-by-layer animation, a model beside its target, and the stack explorer."""
import math

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import torch
from matplotlib.collections import QuadMesh
from scipy import stats

from course_lib.flows import Affine, Planar, Radial
from course_lib.model import NormalizingFlow
from course_lib.plotting import (animate_layers, flow_stages, log_mass_on_window,
                                 plot_model_and_target)
from course_lib.widgets import PLANAR_LAYERS, RADIAL_LAYERS, stack_explorer, stack_layer

# frames are drawn by hand here, never rendered to a movie
pytestmark = pytest.mark.filterwarnings("ignore:Animation was deleted without rendering")


def moved_stack(n_layers=3, seed=0):
    torch.manual_seed(seed)
    layers = [Planar(2) if k % 2 == 0 else Radial(2) for k in range(n_layers)]
    model = NormalizingFlow(2, layers).double()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.5 * torch.randn_like(p))
    return model


def grid_points(lim, resolution):
    ticks = np.linspace(-lim, lim, resolution)
    gx, gy = np.meshgrid(ticks, ticks)
    return gx, gy


def density_mesh(ax):
    meshes = [c for c in ax.collections if isinstance(c, QuadMesh)]
    assert len(meshes) == 1
    return np.asarray(meshes[0].get_array()).reshape(-1)


# -- stages of a stack ------------------------------------------------------------------------

def test_flow_stages_go_from_z_through_every_layer_to_x():
    model = moved_stack()
    z = torch.randn(7, 2)
    stages = flow_stages(model, z)
    assert len(stages) == len(model.flows) + 1
    assert stages[0] is z
    for k, layer in enumerate(model.flows):
        torch.testing.assert_close(stages[k + 1], layer(stages[k])[0], atol=1e-12, rtol=0)
    torch.testing.assert_close(stages[-1], model.flow(z)[0], atol=1e-12, rtol=0)


def test_flow_stages_of_a_single_flow_are_its_input_and_output():
    flow = Affine(2, scale=2.0, shift=1.0)
    z = torch.randn(4, 2)
    stages = flow_stages(flow, z)
    assert len(stages) == 2
    torch.testing.assert_close(stages[1], 2 * z + 1)


# -- the layer-by-layer animation --------------------------------------------------------------

def test_animation_has_frames_per_layer_for_each_layer_plus_the_start():
    model = moved_stack(n_layers=3)
    animation = animate_layers(model, torch.randn(50, 2), frames_per_layer=4)
    assert len(list(animation.new_frame_seq())) == 3 * 4 + 1


def test_animation_ends_on_the_output_of_the_stack():
    model = moved_stack(n_layers=3)
    z = torch.randn(50, 2)
    animation = animate_layers(model, z, frames_per_layer=2)
    dots, title = animation._func(3 * 2)
    np.testing.assert_allclose(dots.get_offsets(), model.flow(z)[0].detach().numpy(), atol=1e-12)
    assert "after layer 3 of 3" in title.get_text()


def test_animation_halfway_through_a_layer_is_the_midpoint_of_its_stages():
    model = moved_stack(n_layers=2)
    z = torch.randn(20, 2)
    stages = flow_stages(model, z)
    animation = animate_layers(model, z, frames_per_layer=2)
    dots, _ = animation._func(3)
    np.testing.assert_allclose(dots.get_offsets(), ((stages[1] + stages[2]) / 2).numpy(),
                               atol=1e-12)


def test_animation_rejects_a_non_positive_number_of_frames_per_layer():
    with pytest.raises(ValueError, match="frames_per_layer"):
        animate_layers(moved_stack(), torch.randn(5, 2), frames_per_layer=0)


# -- mass on a window ------------------------------------------------------------------------

def test_mass_of_a_standard_normal_on_a_wide_window_is_one():
    log_p = lambda x: torch.distributions.MultivariateNormal(
        torch.zeros(2), torch.eye(2)).log_prob(x)
    assert math.exp(log_mass_on_window(log_p, (-7, 7), (-7, 7), 301)) == pytest.approx(1, abs=1e-3)


def test_mass_on_a_window_is_the_probability_of_the_window():
    log_p = lambda x: torch.distributions.MultivariateNormal(
        torch.zeros(2), torch.eye(2)).log_prob(x)
    expected = (stats.norm.cdf(1) - stats.norm.cdf(-1)) * (stats.norm.cdf(2) - stats.norm.cdf(-2))
    mass = math.exp(log_mass_on_window(log_p, (-1, 1), (-2, 2), 801))
    assert mass == pytest.approx(expected, rel=1e-2)


def test_mass_of_an_unnormalised_density_is_its_normaliser():
    sigma = 0.7
    log_unnormalised = lambda x: -0.5 * (x ** 2).sum(1) / sigma ** 2
    log_z = log_mass_on_window(log_unnormalised, (-6, 6), (-6, 6), 401)
    assert log_z == pytest.approx(math.log(2 * math.pi * sigma ** 2), abs=1e-4)


# -- a model beside its target ----------------------------------------------------------------

def test_model_and_target_needs_exactly_one_of_target_or_samples():
    model = NormalizingFlow(2, [Affine(2)])
    with pytest.raises(ValueError, match="neither"):
        plot_model_and_target(model, (-3, 3), (-3, 3))
    with pytest.raises(ValueError, match="both"):
        plot_model_and_target(model, (-3, 3), (-3, 3), log_target=lambda x: -x.sum(1),
                              samples=np.zeros((3, 2)))


def test_unnormalised_target_is_shown_normalised_on_the_window():
    model = NormalizingFlow(2, [Affine(2)])
    figure = plot_model_and_target(model, (-5, 5), (-5, 5), resolution=101,
                                   log_target=lambda x: 3.0 - 0.5 * ((x - 1) ** 2).sum(1))
    cell = (10 / 100) ** 2
    assert density_mesh(figure.axes[0]).sum() * cell == pytest.approx(1, abs=1e-9)


def test_model_panel_is_the_density_of_the_model():
    model = NormalizingFlow(2, [Affine(2, scale=2.0, shift=[1.0, -1.0])])
    figure = plot_model_and_target(model, (-4, 4), (-4, 4), resolution=41,
                                   log_target=lambda x: -(x ** 2).sum(1))
    gx, gy = grid_points(4, 41)
    expected = stats.norm.pdf(gx.ravel(), 1, 2) * stats.norm.pdf(gy.ravel(), -1, 2)
    np.testing.assert_allclose(density_mesh(figure.axes[1]), expected, rtol=1e-9)


def test_data_are_shown_as_a_normalised_histogram():
    model = NormalizingFlow(2, [Affine(2)])
    samples = np.random.default_rng(0).uniform(-1, 1, size=(2000, 2))
    figure = plot_model_and_target(model, (-2, 2), (-2, 2), samples=samples, resolution=40)
    heights = density_mesh(figure.axes[0])
    assert heights.sum() * (4 / 20) ** 2 == pytest.approx(1, abs=1e-9)


# -- the stack explorer ------------------------------------------------------------------------

def test_stack_layer_planar_is_the_formula_with_the_given_parameters():
    p = {"u1": 0.5, "u2": -1.0, "w1": 1.5, "w2": 0.3, "b": -0.2}
    z = torch.randn(6, 2)
    x, _ = stack_layer("planar", p)(z)
    u, w = torch.tensor([0.5, -1.0]), torch.tensor([1.5, 0.3])
    torch.testing.assert_close(x, z + u * torch.tanh(z @ w - 0.2)[:, None])


def test_stack_layer_radial_is_the_formula_with_the_given_parameters():
    p = {"c1": 1.0, "c2": -0.5, "alpha": 0.7, "beta": 0.4}
    z = torch.randn(6, 2)
    x, _ = stack_layer("radial", p)(z)
    centre = torch.tensor([1.0, -0.5])
    r = (z - centre).norm(dim=1, keepdim=True)
    torch.testing.assert_close(x, z + 0.4 / (0.7 + r) * (z - centre))


def test_stack_layer_rejects_an_unknown_kind():
    with pytest.raises(ValueError, match="planar"):
        stack_layer("spline", {})


def test_explorer_draws_a_first_figure_when_built():
    explorer = stack_explorer("planar", resolution=30, samples=200)
    assert explorer.png
    assert density_mesh(explorer.figure.axes[1]).size == 30 * 30


def test_explorer_with_an_identity_layer_shows_the_standard_normal():
    explorer = stack_explorer("planar", resolution=25, samples=100)
    explorer.controls["layers"].value = 1
    explorer.controls["u1"].value = 0.0
    explorer.controls["u2"].value = 0.0
    gx, gy = grid_points(4.0, 25)
    expected = stats.norm.pdf(gx.ravel()) * stats.norm.pdf(gy.ravel())
    np.testing.assert_allclose(density_mesh(explorer.figure.axes[1]), expected, rtol=1e-9)


def test_adding_a_layer_changes_the_density():
    explorer = stack_explorer("planar", resolution=25, samples=100)
    before = density_mesh(explorer.figure.axes[1]).copy()
    explorer.controls["layers"].value += 1
    assert not np.allclose(density_mesh(explorer.figure.axes[1]), before)


def test_choosing_a_layer_moves_the_sliders_to_its_parameters_and_keeps_edits():
    explorer = stack_explorer("planar", resolution=20, samples=100)
    explorer.controls["edit"].value = 3
    assert {k: explorer.controls[k].value for k in PLANAR_LAYERS[2]} == PLANAR_LAYERS[2]
    explorer.controls["b"].value = 1.25
    explorer.controls["edit"].value = 1
    assert explorer.controls["b"].value == PLANAR_LAYERS[0]["b"]
    explorer.controls["edit"].value = 3
    assert explorer.controls["b"].value == 1.25


def test_explorer_says_so_when_a_planar_layer_is_not_invertible():
    explorer = stack_explorer("planar", resolution=20, samples=100)
    explorer.controls["u1"].value = -1.0  # w = (2, 0): w^T u = -2 < -1
    texts = " ".join(t.get_text() for ax in explorer.figure.axes for t in ax.texts)
    assert "not invertible" in texts
    assert not any(isinstance(c, QuadMesh) for ax in explorer.figure.axes for c in ax.collections)


def test_explorer_says_so_when_a_radial_layer_is_not_invertible():
    explorer = stack_explorer("radial", resolution=20, samples=100)
    explorer.controls["beta"].value = -2.0  # alpha = 1: beta < -alpha
    texts = " ".join(t.get_text() for ax in explorer.figure.axes for t in ax.texts)
    assert "not invertible" in texts


def test_radial_explorer_starts_from_its_presets():
    explorer = stack_explorer("radial", resolution=20, samples=100)
    assert {k: explorer.controls[k].value for k in RADIAL_LAYERS[0]} == RADIAL_LAYERS[0]


def test_explorer_rejects_an_unknown_kind_or_too_many_layers():
    with pytest.raises(ValueError, match="kind"):
        stack_explorer("spline")
    with pytest.raises(ValueError, match="max_layers"):
        stack_explorer("planar", max_layers=len(PLANAR_LAYERS) + 1)


def test_model_and_target_share_one_colour_scale():
    model = NormalizingFlow(2, [Affine(2, scale=0.5)])          # peak 4 times the target's
    figure = plot_model_and_target(model, (-3, 3), (-3, 3), resolution=61,
                                   log_target=lambda x: -0.5 * (x ** 2).sum(1))
    meshes = [[c for c in ax.collections if isinstance(c, QuadMesh)][0] for ax in figure.axes[:2]]
    limits = {m.get_clim() for m in meshes}
    assert len(limits) == 1
    (low, high), = limits
    assert low == 0 and high == pytest.approx(density_mesh(figure.axes[1]).max())


def test_animation_is_at_least_640_pixels_wide_by_default():
    animation = animate_layers(moved_stack(), torch.randn(20, 2), frames_per_layer=1)
    width, _ = animation._fig.get_size_inches() * animation._fig.dpi
    assert width >= 640
