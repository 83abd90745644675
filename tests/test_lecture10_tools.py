"""Tools of lecture 10 (continuous normalizing flows): the variance of Hutchinson's estimate, the
memory held for backpropagation through an ODE solve, the figures of trajectories, variances and
memory, and the explorers of trajectories and of Hutchinson's estimate."""
import itertools

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from course_lib.continuous import CNF, VectorField  # noqa: E402
from course_lib.model import NormalizingFlow  # noqa: E402
from course_lib.jacobian import jacobian  # noqa: E402
from course_lib.plotting import (animate_trajectories, backprop_memory,  # noqa: E402
                                 hutchinson_variance_theory, plot_backprop_memory,
                                 plot_hutchinson_variance, plot_log_density_paths,
                                 plot_trajectories, saved_tensor_bytes)
from course_lib.widgets import hutchinson_explorer, trajectory_explorer  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:Animation was deleted without rendering")

F64 = torch.float64
J = torch.tensor([[2.0, 0.5, -1.0], [0.3, -1.5, 0.8], [0.0, 1.2, 3.0]], dtype=F64)


def small_cnf(seed: int = 0) -> CNF:
    torch.manual_seed(seed)
    return CNF(VectorField(2, 8, 1)).double()


def toy_paths(times=5, n=30, seed=0):
    """Points spiralling outwards, with made-up log-densities that fall over time."""
    g = torch.Generator().manual_seed(seed)
    start = torch.randn(n, 2, generator=g, dtype=F64)
    t = torch.linspace(0, 1, times, dtype=F64)
    angle, grow = t[:, None] * 2.0, 1 + t[:, None]
    rotated = torch.stack([start[:, 0] * angle.cos() - start[:, 1] * angle.sin(),
                           start[:, 0] * angle.sin() + start[:, 1] * angle.cos()], dim=-1)
    paths = grow[..., None] * rotated
    log_p = -0.5 * start.pow(2).sum(1) - 2 * t[:, None].log1p() * torch.ones(1, n, dtype=F64)
    return paths, log_p, t.tolist()


# -- the variance of Hutchinson's estimate ---------------------------------------------------------

def test_rademacher_variance_theory_matches_every_sign_vector():
    signs = torch.tensor(list(itertools.product([-1.0, 1.0], repeat=3)), dtype=F64)
    values = torch.einsum("ni,ij,nj->n", signs, J, signs)
    assert values.mean().item() == pytest.approx(torch.trace(J).item(), abs=1e-12)
    assert hutchinson_variance_theory(J, "rademacher").item() == pytest.approx(
        values.var(unbiased=False).item(), rel=1e-12)


def test_gaussian_variance_theory_is_twice_the_squared_eigenvalues_of_the_symmetric_part():
    # eps^T J eps = sum_i lambda_i u_i^2 with u_i independent N(0, 1): variance 2 sum lambda_i^2
    eigenvalues = torch.linalg.eigvalsh(0.5 * (J + J.T))
    assert hutchinson_variance_theory(J, "gaussian").item() == pytest.approx(
        2 * eigenvalues.pow(2).sum().item(), rel=1e-12)


def test_variance_theory_rejects_an_unknown_noise():
    with pytest.raises(ValueError, match="gaussian.*rademacher.*uniform"):
        hutchinson_variance_theory(J, "uniform")


# -- memory held for backward ----------------------------------------------------------------------

def test_saved_bytes_of_a_product_are_its_two_factors():
    a = torch.randn(100, dtype=F64, requires_grad=True)
    b = torch.randn(100, dtype=F64, requires_grad=True)
    assert saved_tensor_bytes(lambda: (a * b).sum()) == 2 * 100 * 8


def test_saved_bytes_count_a_shared_storage_once():
    a = torch.randn(50, dtype=F64, requires_grad=True)
    assert saved_tensor_bytes(lambda: (a * a).sum()) == 50 * 8


def test_saved_bytes_of_a_freed_graph_are_zero():
    a = torch.randn(50, dtype=F64, requires_grad=True)
    assert saved_tensor_bytes(lambda: (a * a).sum().detach()) == 0


def test_backprop_memory_grows_with_the_steps_directly_and_not_with_the_adjoint():
    x = torch.randn(16, 2, dtype=F64, generator=torch.Generator().manual_seed(1))
    memory = backprop_memory(small_cnf(), x, [1, 2, 4])
    direct, adjoint = memory["direct"], memory["adjoint"]
    assert direct[0] < direct[1] < direct[2]
    # each step stores the same activations: doubling the steps doubles them
    assert direct[2] - direct[1] == pytest.approx(2 * (direct[1] - direct[0]), rel=0.05)
    assert adjoint[0] == adjoint[1] == adjoint[2] < direct[0]


def test_backprop_memory_restores_the_solver_settings():
    cnf = small_cnf()
    backprop_memory(cnf, torch.zeros(4, 2, dtype=F64), [1])
    assert (cnf.method, cnf.options, cnf.adjoint) == ("dopri5", None, False)


def test_backprop_memory_of_a_model_is_that_of_its_cnf_on_a_standard_normal():
    x = torch.randn(8, 2, dtype=F64, generator=torch.Generator().manual_seed(2))
    model = NormalizingFlow(2, [small_cnf()]).double()
    assert backprop_memory(model, x, [1, 3]) == backprop_memory(small_cnf(), x, [1, 3])


def test_backprop_memory_refuses_what_holds_no_cnf():
    with pytest.raises(ValueError, match="expected a CNF or a NormalizingFlow"):
        backprop_memory(torch.nn.Linear(2, 2), torch.zeros(4, 2), [1])


def test_memory_plot_draws_one_line_per_method_in_megabytes():
    memory = {"direct": [2e6, 4e6, 8e6], "adjoint": [1e5, 1e5, 1e5]}
    ax = plot_backprop_memory([1, 2, 4], memory).axes[0]
    lines = {line.get_label(): line.get_ydata() for line in ax.get_lines()}
    np.testing.assert_allclose(lines["backprop through the solver"], [2, 4, 8])
    np.testing.assert_allclose(lines["adjoint method"], [0.1, 0.1, 0.1])


# -- the variance plot -----------------------------------------------------------------------------

ROWS = [["gaussian", 1, 0.0, 2.1, 2.0], ["gaussian", 4, 0.0, 0.49, 0.5],
        ["rademacher", 1, 0.0, 1.1, 1.0], ["rademacher", 4, 0.0, 0.26, 0.25]]


def test_variance_plot_theory_lines_fall_as_one_over_the_probes():
    ax = plot_hutchinson_variance(ROWS).axes[0]
    for noise, per_probe in (("gaussian", 2.0), ("rademacher", 1.0)):
        line = next(l for l in ax.get_lines() if l.get_label() == f"{noise}: theory")
        np.testing.assert_allclose(line.get_ydata() * line.get_xdata(), per_probe, rtol=1e-12)


def test_variance_plot_marks_the_measured_values():
    ax = plot_hutchinson_variance(ROWS).axes[0]
    line = next(l for l in ax.get_lines() if l.get_label() == "rademacher: measured")
    np.testing.assert_allclose(line.get_ydata(), [1.1, 0.26])


# -- trajectories ----------------------------------------------------------------------------------

def test_trajectory_plot_shows_the_points_at_the_chosen_time_coloured_by_log_density():
    paths, log_p, times = toy_paths()
    ax = plot_trajectories(paths, log_p, times, 3).axes[0]
    dots = ax.collections[-1]
    np.testing.assert_allclose(dots.get_offsets(), paths[3].numpy())
    np.testing.assert_allclose(dots.get_array(), log_p[3].numpy())
    assert "0.75" in ax.get_title()


def test_trajectory_plot_keeps_window_and_colour_scale_at_every_time():
    paths, log_p, times = toy_paths()
    frames = [plot_trajectories(paths, log_p, times, i).axes[0] for i in range(len(times))]
    assert len({(ax.get_xlim(), ax.get_ylim()) for ax in frames}) == 1
    assert len({(ax.collections[-1].norm.vmin, ax.collections[-1].norm.vmax) for ax in frames}) == 1


def test_trajectory_plot_draws_the_tracked_paths_up_to_the_chosen_time():
    paths, log_p, times = toy_paths()
    ax = plot_trajectories(paths, log_p, times, 2, tracked=3).axes[0]
    drawn = [line for line in ax.get_lines() if len(line.get_xdata()) == 3]
    assert len(drawn) == 3
    np.testing.assert_allclose(drawn[1].get_xydata(), paths[:3, 1].numpy())


def test_trajectory_plot_rejects_mismatched_shapes():
    paths, log_p, times = toy_paths()
    with pytest.raises(ValueError, match=r"\(times, n\).*got"):
        plot_trajectories(paths, log_p[:, :-1], times, 0)


def test_log_density_plot_draws_the_mean_over_all_points():
    _, log_p, times = toy_paths()
    ax = plot_log_density_paths(log_p, times, 1, tracked=2).axes[0]
    mean = next(l for l in ax.get_lines() if "mean" in l.get_label())
    np.testing.assert_allclose(mean.get_ydata(), log_p.mean(1).numpy())


def test_animation_moves_the_points_along_their_paths_and_holds_the_end():
    paths, log_p, times = toy_paths()
    animation = animate_trajectories(paths, log_p, times, hold=2)
    draw = animation._func
    dots, _ = draw(2)
    np.testing.assert_allclose(dots.get_offsets(), paths[2].numpy())
    dots, _ = draw(len(times) + 1)
    np.testing.assert_allclose(dots.get_offsets(), paths[-1].numpy())
    assert len(list(animation.new_frame_seq())) == len(times) + 2


def test_trajectory_animation_is_at_least_640_pixels_wide():
    paths, log_p, times = toy_paths()
    figure = animate_trajectories(paths, log_p, times)._fig
    assert figure.get_size_inches()[0] * figure.dpi >= 640


def test_tracked_paths_have_distinct_colours_far_from_each_other():
    from matplotlib.colors import to_rgb
    from course_lib.plotting.continuous import TRACKED_COLOURS
    rgb = np.array([to_rgb(c) for c in TRACKED_COLOURS])
    gaps = np.linalg.norm(rgb[:, None] - rgb[None], axis=2)[np.triu_indices(len(rgb), 1)]
    assert len(set(TRACKED_COLOURS)) == len(TRACKED_COLOURS) and gaps.min() > 0.25


def test_trajectory_explorer_picks_the_nearest_time():
    paths, log_p, times = toy_paths()
    explorer = trajectory_explorer(paths, log_p, times, data=paths[-1])
    assert explorer.png  # a first figure is drawn when the explorer is built
    explorer.set(t=0.5)
    dots = explorer.figure.axes[0].collections[-1]
    np.testing.assert_allclose(dots.get_offsets(), paths[2].numpy())


def test_trajectory_explorer_rejects_times_that_do_not_match_the_paths():
    paths, log_p, times = toy_paths()
    with pytest.raises(ValueError, match="one time per row"):
        trajectory_explorer(paths, log_p, times[:-1])


# -- the explorer of Hutchinson's estimate -----------------------------------------------------------

def test_hutchinson_explorer_states_the_exact_trace_and_the_theory():
    f = lambda z: z @ J.T  # noqa: E731
    z = torch.zeros(1, 3, dtype=F64)
    explorer = hutchinson_explorer(f, z, ROWS, draws=500)
    explorer.set(noise="rademacher", k=2)
    left = explorer.figure.axes[0]
    exact = torch.trace(jacobian(f, z)[0]).item()
    assert f"exact tr J = {exact:.3f}" in [t.get_text() for t in left.get_legend().get_texts()]
    assert f"(theory {hutchinson_variance_theory(J, 'rademacher').item() / 2:.3f})" in left.get_title()


def test_hutchinson_explorer_wants_one_point():
    with pytest.raises(ValueError, match=r"shape \(1, d\)"):
        hutchinson_explorer(lambda z: z, torch.zeros(2, 3, dtype=F64), ROWS)
