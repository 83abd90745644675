"""Figures and explorer of lecture 04 (coupling layers): the Jacobian table, the stages of a
stack, the bounded log-scale, the layer-by-layer animation drawn into a given axes, and the
coupling explorer with its knob conditioner."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.collections import PathCollection, QuadMesh  # noqa: E402
from scipy import stats  # noqa: E402

from course_lib.flows import AdditiveCoupling, AffineCoupling, Compose  # noqa: E402
from course_lib.jacobian import jacobian, log_abs_det_bruteforce  # noqa: E402
from course_lib.model import NormalizingFlow  # noqa: E402
from course_lib.plotting import (animate_layers, flow_stages, plot_bounded_log_scale,  # noqa: E402
                                 plot_flow_stages, plot_jacobian_matrix)
from course_lib.widgets import coupling_explorer, knob_coupling  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:Animation was deleted without rendering")


def moved(flow, seed=0, size=0.3):
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(size * torch.randn_like(p))
    return flow


def knob_oracle(z, a, b, c):
    """RealNVP with s = 3 tanh((a z_1 + c)/3), t = b sin z_1, written out by hand."""
    s = 3 * np.tanh((a * z[:, 0] + c) / 3)
    return np.stack([z[:, 0], z[:, 1] * np.exp(s) + b * np.sin(z[:, 0])], axis=1), s


def meshes(ax):
    return [c for c in ax.collections if isinstance(c, QuadMesh)]


# -- the Jacobian as a table -----------------------------------------------------------------

def test_jacobian_table_colours_every_entry_and_leaves_exact_zeros_blank():
    layer = moved(AffineCoupling(4))
    J = jacobian(layer, torch.randn(1, 4))[0]
    figure = plot_jacobian_matrix(J, split=2)
    (image,) = figure.axes[0].images
    shown = image.get_array()
    np.testing.assert_allclose(shown.filled(0.0), J.numpy(), atol=1e-15)
    np.testing.assert_array_equal(np.ma.getmaskarray(shown), J.numpy() == 0)
    assert np.ma.getmaskarray(shown)[:2, 2:].all()
    plt.close(figure)


def test_jacobian_table_writes_each_value_and_marks_zeros_with_0():
    J = np.array([[1.0, 0.0], [-0.25, 2.5]])
    figure = plot_jacobian_matrix(J, decimals=2)
    texts = {(round(t.get_position()[1]), round(t.get_position()[0])): t.get_text()
             for t in figure.axes[0].texts}
    assert texts == {(0, 0): "1.00", (0, 1): "0", (1, 0): "-0.25", (1, 1): "2.50"}
    plt.close(figure)


def test_jacobian_table_draws_the_block_boundary_after_split_rows_and_columns():
    figure = plot_jacobian_matrix(np.eye(4), split=2)
    positions = sorted({float(line.get_xdata()[0]) for line in figure.axes[0].lines
                        if line.get_xdata()[0] == line.get_xdata()[1]})
    assert positions == [1.5]
    assert {float(line.get_ydata()[0]) for line in figure.axes[0].lines
            if line.get_ydata()[0] == line.get_ydata()[1]} == {1.5}
    plt.close(figure)


def test_jacobian_table_rejects_a_matrix_that_is_not_square():
    with pytest.raises(ValueError, match="square"):
        plot_jacobian_matrix(np.ones((2, 3)))


# -- stages of a stack ----------------------------------------------------------------------

def test_stage_panels_show_the_points_after_each_chosen_layer():
    stack = moved(Compose(AffineCoupling(2, parity=0), AffineCoupling(2, parity=1)))
    z = torch.randn(40, 2)
    figure = plot_flow_stages(stack, z, stages=[0, 2])
    expected = flow_stages(stack, z)
    for ax, k in zip(figure.axes, [0, 2]):
        (dots,) = [c for c in ax.collections if isinstance(c, PathCollection)]
        np.testing.assert_allclose(dots.get_offsets(), expected[k].numpy(), atol=1e-12)
    plt.close(figure)


def test_stage_titles_name_the_coordinate_each_coupling_layer_moved():
    stack = moved(Compose(AffineCoupling(2, parity=0), AffineCoupling(2, parity=1)))
    figure = plot_flow_stages(stack, torch.randn(30, 2))
    titles = [ax.get_title() for ax in figure.axes]
    assert "base" in titles[0]
    assert titles[1].endswith("moved coordinate 2")
    assert titles[2].endswith("moved coordinate 1")
    plt.close(figure)


def test_stage_title_of_a_layer_at_the_identity_says_it_moved_nothing():
    figure = plot_flow_stages(Compose(AffineCoupling(2)), torch.randn(10, 2))
    assert figure.axes[1].get_title().endswith("moved nothing")
    plt.close(figure)


def test_stage_beyond_the_stack_is_refused():
    with pytest.raises(ValueError, match="stages among 0..1"):
        plot_flow_stages(Compose(AffineCoupling(2)), torch.randn(5, 2), stages=[0, 2])


# -- the bounded log-scale --------------------------------------------------------------------

@pytest.mark.parametrize("bound", [1.0, 3.0])
def test_bounded_curve_is_B_tanh_of_s_raw_over_B(bound):
    figure = plot_bounded_log_scale(bound)
    (curve,) = [line for line in figure.axes[0].lines if line.get_label().startswith("bounded:")]
    s_raw, s = curve.get_xdata(), curve.get_ydata()
    np.testing.assert_allclose(s, bound * np.tanh(s_raw / bound), atol=1e-12)
    assert np.abs(s).max() < bound
    plt.close(figure)


# -- the animation, drawn into a given axes ---------------------------------------------------

def test_animation_in_a_given_axes_keeps_what_was_drawn_there_and_ends_at_the_output():
    model = NormalizingFlow(2, [moved(AffineCoupling(2, parity=k % 2), seed=k)
                                for k in range(3)])
    figure, ax = plt.subplots()
    background = ax.scatter([0.0, 1.0], [0.0, 1.0])
    z = torch.randn(25, 2)
    animation = animate_layers(model, z, frames_per_layer=2, ax=ax)
    dots, _ = animation._func(3 * 2)
    assert animation._fig is figure
    assert background in ax.collections and dots in ax.collections
    np.testing.assert_allclose(dots.get_offsets(), model.flow(z)[0].detach().numpy(),
                               atol=1e-12)


# -- the knob layer ---------------------------------------------------------------------------

@pytest.mark.parametrize("a, b, c", [(0.5, 1.0, 0.0), (-0.8, -1.5, 1.2), (1.0, 2.0, 10.0)])
def test_knob_layer_is_realnvp_with_bounded_log_scale_and_sine_shift(a, b, c):
    z = torch.randn(20, 2)
    x, log_det = knob_coupling(a, b, c)(z)
    expected_x, expected_s = knob_oracle(z.numpy(), a, b, c)
    np.testing.assert_allclose(x.numpy(), expected_x, atol=1e-12)
    np.testing.assert_allclose(log_det.numpy(), expected_s, atol=1e-12)


def test_knob_layer_moving_the_first_coordinate_is_conditioned_on_the_second():
    z = torch.randn(20, 2)
    x, _ = knob_coupling(0.5, 1.0, 0.3, transformed=1)(z)
    swapped, _ = knob_oracle(z.flip(1).numpy(), 0.5, 1.0, 0.3)
    np.testing.assert_allclose(x.numpy(), swapped[:, ::-1], atol=1e-12)


@pytest.mark.parametrize("transformed", [1, 2])
@pytest.mark.parametrize("additive", [False, True])
def test_knob_layer_log_det_is_autograds(transformed, additive):
    layer = knob_coupling(0.7, -1.3, 0.4, transformed=transformed, additive=additive)
    z = torch.randn(15, 2)
    torch.testing.assert_close(layer(z)[1], log_abs_det_bruteforce(layer, z), atol=1e-12, rtol=0)


def test_additive_knob_layer_only_shifts():
    layer = knob_coupling(0.7, -1.3, 0.4, additive=True)
    assert isinstance(layer, AdditiveCoupling)
    z = torch.randn(15, 2)
    x, log_det = layer(z)
    torch.testing.assert_close(x, torch.stack([z[:, 0], z[:, 1] - 1.3 * torch.sin(z[:, 0])], 1))
    assert bool((log_det == 0).all())


def test_knob_layer_inverts_exactly():
    layer = knob_coupling(0.9, 1.7, -0.5)
    z = torch.randn(50, 2)
    torch.testing.assert_close(layer.inverse(layer(z)[0])[0], z, atol=1e-12, rtol=0)


def test_knob_layer_refuses_a_coordinate_other_than_1_or_2():
    with pytest.raises(ValueError, match="1 or 2"):
        knob_coupling(0.5, 1.0, 0.0, transformed=3)


# -- the coupling explorer --------------------------------------------------------------------

SAMPLES, RESOLUTION, WINDOW = 300, 40, 5.0


@pytest.fixture(scope="module")
def explorer():
    return coupling_explorer(samples=SAMPLES, resolution=RESOLUTION, window=WINDOW)


@pytest.fixture(autouse=True)
def reset(request):
    yield
    if "explorer" in request.fixturenames:
        request.getfixturevalue("explorer").set(a=0.5, b=1.0, c=0.0, transformed=2,
                                                additive=False)


def latent():
    return torch.randn(SAMPLES, 2, generator=torch.Generator().manual_seed(0),
                       dtype=torch.float64)


def moved_samples(explorer):
    (_, moved_dots) = [c for c in explorer.figure.axes[1].collections
                       if isinstance(c, PathCollection)]
    return np.asarray(moved_dots.get_offsets())


def test_explorer_draws_a_first_figure_with_three_panels_when_built(explorer):
    assert explorer.png.startswith(b"\x89PNG")
    assert {"a", "b", "c", "transformed", "additive"} <= set(explorer.controls)
    assert [ax.get_xlabel() for ax in explorer.figure.axes[:3]] == ["$x_1$"] * 3


def test_explorer_moves_the_samples_by_the_layer(explorer):
    explorer.set(a=-0.6, b=1.5, c=0.4)
    expected, _ = knob_oracle(latent().numpy(), -0.6, 1.5, 0.4)
    np.testing.assert_allclose(moved_samples(explorer), expected, atol=1e-12)


def test_explorer_density_panel_is_the_change_of_variables_of_the_layer(explorer):
    a, b, c = 0.5, 1.0, 0.0
    ticks = np.linspace(-WINDOW, WINDOW, RESOLUTION)
    x1, x2 = np.meshgrid(ticks, ticks)
    s = 3 * np.tanh((a * x1 + c) / 3)
    z2 = (x2 - b * np.sin(x1)) * np.exp(-s)
    expected = stats.norm.pdf(x1) * stats.norm.pdf(z2) * np.exp(-s)
    (mesh,) = meshes(explorer.figure.axes[2])
    np.testing.assert_allclose(np.asarray(mesh.get_array()).reshape(expected.shape), expected,
                               atol=1e-12)


def test_ticking_nice_leaves_every_grid_cell_with_its_area(explorer):
    explorer.set(additive=True, c=1.0)
    log_det = np.asarray(meshes(explorer.figure.axes[0])[0].get_array())
    np.testing.assert_allclose(log_det, 0.0, atol=1e-12)
    assert "NICE" in explorer.figure.get_suptitle()


def test_choosing_the_first_coordinate_leaves_the_second_unmoved(explorer):
    explorer.set(transformed=1)
    z = latent().numpy()
    moved_x = moved_samples(explorer)
    np.testing.assert_allclose(moved_x[:, 1], z[:, 1], atol=0)
    assert not np.allclose(moved_x[:, 0], z[:, 0])


def test_nearest_moon_measures_the_distance_to_each_half_circle():
    """Points placed at a known offset from a known point of each centre line (an oracle
    written from the data set's recipe), and points beyond the tips, nearer to an end."""
    from course_lib import datasets
    moons = datasets.get("two_moons")
    t = torch.linspace(0.05, np.pi - 0.05, 7, dtype=torch.float64)
    offsets = torch.tensor([-0.25, -0.1, 0.0, 0.1, 0.2, 0.05, -0.15], dtype=torch.float64)
    for moon, (centre, side) in enumerate((((-1.0, -0.5), 1.0), ((1.0, 0.5), -1.0))):
        radius = 2 + offsets
        points = torch.stack([centre[0] + radius * t.cos(), centre[1] + side * radius * t.sin()], 1)
        distance, which = moons.nearest_moon(points)
        assert torch.allclose(distance, offsets.abs(), atol=1e-12)
        assert (which == moon).all()
    beyond_tip = torch.tensor([[-3.0, -0.9], [3.0, 0.9]], dtype=torch.float64)   # below / above a tip
    distance, which = moons.nearest_moon(beyond_tip)
    assert torch.allclose(distance, torch.tensor([0.4, 0.4], dtype=torch.float64), atol=1e-12)
    assert which.tolist() == [0, 1]


def test_nearly_all_of_the_data_lie_within_three_noise_deviations_of_a_moon():
    from course_lib import datasets
    moons = datasets.get("two_moons")
    x = moons.sample(20000, generator=torch.Generator().manual_seed(0))
    distance, which = moons.nearest_moon(x)
    assert (distance < 0.3).double().mean() > 0.99
    assert abs((which == 0).double().mean() - 0.5) < 0.02
    gaussian = torch.randn(20000, 2, generator=torch.Generator().manual_seed(1))
    assert (moons.nearest_moon(gaussian)[0] < 0.3).double().mean() < 0.5


def test_nearest_moon_refuses_points_of_the_wrong_shape():
    from course_lib import datasets
    with pytest.raises(ValueError, match="two_moons.nearest_moon: expected shape"):
        datasets.get("two_moons").nearest_moon(torch.zeros(3, 3))
