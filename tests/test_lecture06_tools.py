"""Figures, animation and explorer of lecture 06 (autoregressive flows): MADE path counts,
dependency matrices, the network drawing, the timing plot, the slow side pass by pass, and
the mask explorer."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.collections import LineCollection  # noqa: E402

from course_lib.flows import IAF, MADE, MAF  # noqa: E402
from course_lib.jacobian import jacobian  # noqa: E402
from course_lib.plotting import (animate_sequential_passes, mask_paths,  # noqa: E402
                                 plot_autoregressive_timings, plot_dependency,
                                 plot_made_network, sequential_passes)
from course_lib.widgets import made_explorer  # noqa: E402
from flow_cases import randomise

pytestmark = pytest.mark.filterwarnings("ignore:Animation was deleted without rendering")


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def moved(module, scale=0.3, seed=0):
    return randomise(module, scale, seed)


def position_in(order):
    position = torch.empty_like(order)
    position[order] = torch.arange(len(order))
    return position


# -- path counts through the masks ------------------------------------------------------------

@pytest.mark.parametrize("hidden", [(8, 8), (3,), (2, 6)], ids=["wide", "narrow", "mixed"])
@pytest.mark.parametrize("order", ["sequential", "random"])
def test_mask_paths_are_positive_exactly_where_the_made_output_depends_on_the_input(hidden, order):
    made = moved(MADE(5, hidden=hidden, order=order, seed=2), scale=0.5).double()
    x = torch.randn(6, 5, dtype=torch.float64)
    depends = jacobian(made, x).reshape(6, 5, 2, 5).abs().amax(dim=(0, 2)) > 0
    assert torch.equal(mask_paths(made) > 0, depends)


def test_mask_paths_through_one_hidden_layer_count_the_hidden_units_between_the_degrees():
    made = MADE(4, hidden=(7,), order=torch.tensor([2, 0, 3, 1]))
    m_in, m_hidden = made.degrees[0], made.degrees[1]
    # a path x_j -> k -> output i exists when m(j) <= m(k) < m(i)
    expected = ((m_hidden[None, None, :] >= m_in[None, :, None])
                & (m_hidden[None, None, :] < m_in[:, None, None])).sum(dim=2)
    assert torch.equal(mask_paths(made), expected)


def test_mask_paths_of_a_layer_narrower_than_d_minus_1_lose_allowed_dependencies():
    made = MADE(4, hidden=(1,))
    position = position_in(made.order)
    allowed = position[None, :] < position[:, None]
    assert bool((allowed & (mask_paths(made) == 0)).any())
    assert not bool((~allowed & (mask_paths(made) > 0)).any())


# -- the dependency matrix -------------------------------------------------------------------

def shown_cells(ax):
    return np.asarray(ax.images[0].get_array())


def test_dependency_in_the_order_of_a_maf_jacobian_is_lower_triangular_and_full():
    flow = moved(MAF(5, hidden=(12, 12), order="random", seed=3)).double()
    J = jacobian(flow, torch.randn(1, 5, dtype=torch.float64))
    fig = plot_dependency(J, order=flow.order)
    cells = shown_cells(fig.axes[0])
    lower = np.tril(np.ones((5, 5), dtype=bool))
    assert (cells[lower] == 2).all() and (cells[~lower] == 0).all()


def test_dependency_by_index_shows_the_matrix_unpermuted():
    matrix = np.array([[0, 3, 0], [0, 0, 0], [1, 2, 0]])
    fig = plot_dependency(matrix)
    assert np.array_equal(shown_cells(fig.axes[0]), 2 * (matrix != 0))
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert labels == ["$z_{1}$", "$z_{2}$", "$z_{3}$"]


def test_dependency_listed_in_the_order_permutes_rows_columns_and_labels():
    matrix = np.arange(9).reshape(3, 3)
    fig = plot_dependency(matrix, order=[2, 0, 1], row_symbol="h", col_symbol="x")
    ax = fig.axes[0]
    assert np.array_equal(shown_cells(ax) == 2, matrix[np.ix_([2, 0, 1], [2, 0, 1])] != 0)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["$h_{3}$", "$h_{1}$", "$h_{2}$"]


def test_dependency_shades_cells_the_order_allows_but_the_matrix_leaves_empty():
    made = MADE(4, hidden=(1,))
    paths = mask_paths(made)
    for in_order in (True, False):
        fig = plot_dependency(paths, order=made.order, in_order=in_order)
        cells = shown_cells(fig.axes[0])
        index = made.order if in_order else torch.arange(4)
        shown = paths[index][:, index].numpy()
        position = position_in(made.order)[index]
        allowed = (position[None, :] < position[:, None]).numpy()
        assert np.array_equal(cells == 1, allowed & (shown == 0))


def test_dependency_refuses_a_non_square_matrix_and_a_bad_order():
    with pytest.raises(ValueError, match="square"):
        plot_dependency(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="permutation"):
        plot_dependency(np.zeros((3, 3)), order=[0, 0, 1])


# -- the network drawing --------------------------------------------------------------------

@pytest.mark.parametrize("hidden", [(6, 6), (3,)])
def test_network_draws_one_line_per_kept_weight_with_one_output_unit_per_variable(hidden):
    made = MADE(4, hidden=hidden, params_per_dim=3, order="random", seed=1)
    fig = plot_made_network(made)
    (lines,) = [c for c in fig.axes[0].collections if isinstance(c, LineCollection)]
    kept = sum(int(m.sum()) for m in made.masks[:-1]) + int(made.masks[-1][::3].sum())
    assert len(lines.get_segments()) == kept


def test_network_labels_every_unit_with_its_degree():
    made = MADE(3, hidden=(4, 5), order=torch.tensor([1, 2, 0]))
    fig = plot_made_network(made)
    numbers = sorted(int(t.get_text()) for t in fig.axes[0].texts if t.get_text().isdigit())
    degrees = torch.cat([made.degrees[0], made.degrees[1], made.degrees[2], made.degrees[0]])
    assert numbers == sorted(degrees.tolist())


# -- the timing plot -----------------------------------------------------------------------

def test_timing_plot_draws_density_and_sampling_against_d_for_each_flow():
    rows = [["MAF", 8, 1.0, 8.0, 8.0], ["IAF", 2, 3.0, 1.5, 0.5], ["MAF", 2, 1.0, 2.0, 2.0],
            ["IAF", 8, 12.0, 1.6, 0.13]]
    fig = plot_autoregressive_timings(rows)
    for ax, name in zip(fig.axes, ("MAF", "IAF")):
        mine = sorted((r for r in rows if r[0] == name), key=lambda r: r[1])
        density, sampling = ax.lines
        assert list(density.get_xdata()) == [2, 8] == list(sampling.get_xdata())
        assert list(density.get_ydata()) == [r[2] for r in mine]
        assert list(sampling.get_ydata()) == [r[3] for r in mine]


def test_timing_plot_refuses_rows_without_one_of_the_flows():
    with pytest.raises(ValueError, match="IAF"):
        plot_autoregressive_timings([["MAF", 2, 1.0, 2.0, 2.0]])


# -- the slow side, pass by pass ------------------------------------------------------------

@pytest.mark.parametrize("cls, direction", [(MAF, "forward"), (IAF, "inverse")])
def test_after_pass_k_the_first_k_variables_in_the_order_are_final(cls, direction):
    flow = moved(cls(6, hidden=(16, 16), order="random", seed=5)).double()
    u = torch.randn(3, 6, dtype=torch.float64)
    iterates = sequential_passes(flow, u, direction)
    assert len(iterates) == 6 + 1
    final = iterates[-1][:, flow.order]
    for k, iterate in enumerate(iterates):
        torch.testing.assert_close(iterate[:, flow.order][:, :k], final[:, :k], atol=1e-12,
                                   rtol=0)


@pytest.mark.parametrize("cls, direction", [(MAF, "forward"), (IAF, "inverse")])
def test_sequential_passes_start_from_the_input_and_end_at_the_flows_result(cls, direction):
    flow = moved(cls(4, hidden=(8, 8))).double()
    u = torch.randn(2, 4, dtype=torch.float64)
    iterates = sequential_passes(flow, u, direction)
    assert torch.equal(iterates[0], u)
    assert torch.equal(iterates[-1], getattr(flow, direction)(u)[0].detach())


@pytest.mark.parametrize("cls, direction", [(MAF, "inverse"), (IAF, "forward")])
def test_the_fast_side_is_a_single_pass(cls, direction):
    flow = moved(cls(5, hidden=(8, 8)))
    assert len(sequential_passes(flow, torch.randn(2, 5), direction)) == 2


def test_sequential_passes_refuse_an_unknown_direction():
    with pytest.raises(ValueError, match="direction"):
        sequential_passes(MAF(2), torch.randn(1, 2), "sideways")


def test_animation_has_one_frame_per_pass_plus_the_start_and_ends_on_the_answer():
    flow = moved(MAF(5, hidden=(8, 8), order="random", seed=1)).double()
    z = torch.randn(1, 5, dtype=torch.float64)
    animation = animate_sequential_passes(flow, z)
    assert len(list(animation.new_frame_seq())) == 5 + 1
    artists = animation._func(5)
    heights = np.array([bar.get_height() for bar in artists[:5]])
    x = flow(z)[0].detach()[0, flow.order].numpy()
    assert np.allclose(heights, x, atol=1e-12)
    assert "5 of 5 final" in artists[-1].get_text()


# -- the mask explorer ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def explorer():
    return made_explorer()


def test_explorer_draws_a_first_figure_with_network_and_two_matrices(explorer):
    assert explorer.png.startswith(b"\x89PNG")
    assert len(explorer.figure.axes) == 3
    assert set(explorer.controls) == {"dim", "layers", "width", "order", "seed"}


def test_explorer_redraws_the_made_the_controls_describe(explorer):
    explorer.set(dim=5, layers=1, width=3, order="random", seed=7)
    made = MADE(5, hidden=(3,), order="random", seed=7)
    network, by_index, by_order = explorer.figure.axes
    (lines,) = [c for c in network.collections if isinstance(c, LineCollection)]
    kept = int(made.masks[0].sum()) + int(made.masks[1][::2].sum())
    assert len(lines.get_segments()) == kept
    expected = 2 * (mask_paths(made)[made.order][:, made.order] > 0).numpy()
    assert np.array_equal(shown_cells(by_order) == 2, expected == 2)
    assert "lost" in explorer.figure._suptitle.get_text()
    explorer.set(dim=4, layers=2, width=6, order="sequential", seed=0)
    assert "every allowed dependency" in explorer.figure._suptitle.get_text()


def test_sequential_pass_animation_is_at_least_640_pixels_wide():
    torch.manual_seed(0)
    flow = MAF(3, hidden=(8, 8))
    animation = animate_sequential_passes(flow, torch.randn(1, 3))
    figure = animation._fig
    assert figure.get_size_inches()[0] * figure.dpi >= 640
