"""Tools of lecture 11 (flow matching): the loss that keeps a training clock, the solver that
counts its evaluations, and the figures, animation and explorer of paths from noise to data."""
import math

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from course_lib import NormalizingFlow  # noqa: E402
from course_lib.continuous import CNF, flow_matching_loss  # noqa: E402
from course_lib.flows import Affine  # noqa: E402
from course_lib.plotting import (TimedLoss, plot_field_over_time,  # noqa: E402
                                 plot_solver_steps, plot_training_comparison, solve_field)
from course_lib.training import fit  # noqa: E402
from course_lib.widgets import path_explorer  # noqa: E402

def gaussian_model():
    return NormalizingFlow(2, [Affine(2, scale=torch.tensor([2.0, 0.5]),
                                      shift=torch.tensor([1.0, -0.5]))])


def straight_paths(n=12, steps=5, seed=0):
    """``(1 - t) x_0 + t x_1`` for random pairs, shape ``(steps, n, 2)``, a stand-in for their
    log-density ``(steps, n)``, and the times."""
    g = torch.Generator().manual_seed(seed)
    x0, x1 = torch.randn(n, 2, generator=g), 3 * torch.randn(n, 2, generator=g)
    times = torch.linspace(0, 1, steps)
    z_t = ((1 - times[:, None, None]) * x0 + times[:, None, None] * x1).numpy()
    return z_t, -(z_t ** 2).sum(-1), times.tolist()


# -- the timed loss ---------------------------------------------------------------------------------

def test_timed_loss_returns_the_wrapped_loss_and_records_it():
    model = gaussian_model()
    x = torch.randn(64, 2, generator=torch.Generator().manual_seed(1))
    timed = TimedLoss()  # maximum likelihood by default
    loss = timed(model, x)
    assert loss.item() == pytest.approx(model.forward_kl(x).item(), rel=1e-12)
    assert loss.requires_grad
    field = NormalizingFlow(2, [CNF(lambda t, z: torch.zeros_like(z), dim=2)])
    timed_fm = TimedLoss(flow_matching_loss)
    torch.manual_seed(3)
    value = timed_fm(field, x).item()
    torch.manual_seed(3)
    assert value == pytest.approx(flow_matching_loss(field, x).item(), rel=1e-12)
    assert timed.losses == [loss.item()] and timed_fm.losses == [value]


def test_timed_loss_records_every_step_of_fit_with_times_that_never_decrease():
    timed = TimedLoss(every=1e-9)
    history = fit(gaussian_model(), torch.randn(500, 2), steps=7, batch_size=32,
                  loss_fn=timed, progress=False)
    assert timed.losses == pytest.approx(history, rel=1e-12)
    assert len(timed.seconds) == 7 and timed.seconds[0] == 0.0
    assert all(b >= a for a, b in zip(timed.seconds, timed.seconds[1:]))


def test_checkpoints_hold_the_parameters_of_their_time():
    model = gaussian_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    timed = TimedLoss(every=1e6)  # only the first call keeps a checkpoint
    fit(model, torch.randn(500, 2), steps=5, batch_size=32, lr=0.1, loss_fn=timed,
        progress=False)
    assert len(timed.checkpoints) == 1
    for name, value in timed.checkpoints[0][1].items():
        torch.testing.assert_close(value, before[name], rtol=0, atol=0)
    for name, parameter in model.named_parameters():  # training moved on
        assert not torch.equal(timed.checkpoints[0][1][name], parameter.detach())
    timed.keep(model)
    assert len(timed.checkpoints) == 2 and timed.checkpoints[1][0] >= 0.0
    for name, value in timed.checkpoints[1][1].items():
        torch.testing.assert_close(value, model.state_dict()[name], rtol=0, atol=0)


def test_evaluate_measures_each_checkpoint_and_leaves_the_model_alone():
    model = gaussian_model()
    timed = TimedLoss()
    for shift in (0.0, 1.0, 2.0):
        with torch.no_grad():
            model.flows[0].shift.fill_(shift)
        timed.keep(model, seconds=shift / 2)
    seconds, values = timed.evaluate(model, lambda m: m.flows[0].shift.sum().item())
    np.testing.assert_allclose(seconds, [0.0, 0.5, 1.0])
    np.testing.assert_allclose(values, [0.0, 2.0, 4.0])
    assert model.flows[0].shift.tolist() == [2.0, 2.0]


@pytest.mark.parametrize("every", [0.0, -1.0, True, "1"])
def test_timed_loss_rejects_a_bad_checkpoint_interval(every):
    with pytest.raises(ValueError, match="every must be a positive number"):
        TimedLoss(every=every)


# -- solving with few steps -------------------------------------------------------------------------

@pytest.mark.parametrize("n_steps", [1, 2, 3, 8])
def test_euler_on_a_linear_field_is_the_compound_growth_formula(n_steps):
    z0 = torch.tensor([[1.0, -2.0], [0.5, 3.0]])
    x, calls = solve_field(lambda t, z: 0.7 * z, z0, n_steps)
    torch.testing.assert_close(x, z0 * (1 + 0.7 / n_steps) ** n_steps, rtol=1e-12, atol=1e-12)
    assert calls == n_steps


def test_dopri5_on_a_linear_field_is_the_exponential():
    z0 = torch.tensor([[1.0, -2.0], [0.5, 3.0]])
    x, calls = solve_field(lambda t, z: 0.7 * z, z0, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(x, z0 * math.exp(0.7), rtol=1e-7, atol=1e-7)
    assert calls > 6  # dopri5 evaluates the field at least six times per step


def test_one_euler_step_is_exact_along_a_straight_path():
    g = torch.Generator().manual_seed(0)
    z0, x1 = torch.randn(10, 2, generator=g), torch.randn(10, 2, generator=g)
    # the velocity of the straight path from z0 to x1, as a field: (x1 - z) / (1 - t)
    x, calls = solve_field(lambda t, z: (x1 - z) / (1 - t), z0, 1)
    torch.testing.assert_close(x, x1, rtol=1e-12, atol=1e-12)
    assert calls == 1


@pytest.mark.parametrize("n_steps", [0, -2, 1.5, True])
def test_solve_field_rejects_a_bad_number_of_steps(n_steps):
    with pytest.raises(ValueError, match="n_steps must be a positive integer"):
        solve_field(lambda t, z: z, torch.zeros(3, 2), n_steps)


def test_solver_steps_figure_shows_the_solutions_and_counts_evaluations():
    z0 = torch.randn(30, 2, generator=torch.Generator().manual_seed(2))
    field = lambda t, z: torch.stack([-z[:, 1], z[:, 0]], dim=1)  # noqa: E731 (a rotation)
    figure = plot_solver_steps({"rotation": field}, z0, steps=(1, 4))
    axes = figure.axes
    assert len(axes) == 3
    for ax, n_steps in zip(axes, (1, 4, None)):
        want, calls = solve_field(field, z0, n_steps)
        np.testing.assert_allclose(ax.collections[-1].get_offsets(), want.numpy())
    assert axes[0].get_ylabel() == "rotation"
    assert f"{solve_field(field, z0)[1]} evaluations" in axes[2].get_title()
    error = (solve_field(field, z0, 4)[0] - solve_field(field, z0)[0]).norm(dim=1).mean()
    assert f"mean distance {error.item():.2f}" in axes[1].get_title()


# -- the explorer of paths and the other figures -----------------------------------------------

def test_path_explorer_draws_t_0_when_built_and_follows_the_slider():
    z_t, log_p, times = straight_paths()
    other = 2 * z_t
    explorer = path_explorer({"straight": (z_t, log_p), "wider": (other, log_p)}, times,
                             tracked=2)
    assert explorer.png.startswith(b"\x89PNG")
    first, second = explorer.figure.axes[:2]
    np.testing.assert_allclose(first.collections[-1].get_offsets(), z_t[0])
    window = first.get_xlim()
    explorer.set(t=1.0)
    first, second = explorer.figure.axes[:2]
    np.testing.assert_allclose(first.collections[-1].get_offsets(), z_t[-1])
    np.testing.assert_allclose(second.collections[-1].get_offsets(), other[-1])
    np.testing.assert_allclose(first.collections[-1].get_array(), log_p[-1])
    assert first.get_title() == "straight\n$t$ = 1.00"
    assert first.get_xlim() == window
    np.testing.assert_allclose(first.lines[0].get_xydata(), z_t[:, 0])  # a traced path


def test_path_explorer_panels_share_one_colour_scale_with_a_colour_bar():
    z_t, log_p, times = straight_paths()
    explorer = path_explorer({"low": (z_t, log_p - 5.0), "high": (z_t, log_p + 5.0)}, times, t=1.0)
    first, second, bar = explorer.figure.axes
    low, high = first.collections[-1], second.collections[-1]
    assert (low.norm.vmin, low.norm.vmax) == (high.norm.vmin, high.norm.vmax)
    # the one scale spans both panels: it reaches below the median of the low one and above
    # the median of the high one (a scale of its own would centre on each panel's values)
    assert low.norm.vmin < float(np.median(log_p - 5.0)) and high.norm.vmax > float(np.median(log_p + 5.0))
    assert bar.get_ylabel() == r"$\log p_t$"


def test_path_explorer_needs_one_time_per_row():
    z_t, log_p, times = straight_paths()
    with pytest.raises(ValueError, match="one time per row of the paths 'a'"):
        path_explorer({"a": (z_t, log_p)}, times[:4])


def test_training_comparison_shows_each_loss_and_every_gap():
    runs = {}
    for name in ("one", "two"):
        runs[name] = TimedLoss()
        fit(gaussian_model(), torch.randn(200, 2), steps=30, batch_size=16, loss_fn=runs[name],
            progress=False)
    gaps = {"one": (np.array([0.0, 1.0]), np.array([2.0, 0.5])),
            "two": (np.array([0.0, 2.0]), np.array([2.0, 0.05]))}
    figure = plot_training_comparison(runs, gaps, smooth=3, loss_lines={"one": (1.0, "floor")})
    loss_one, loss_two, quality = figure.axes
    np.testing.assert_allclose(loss_one.lines[0].get_ydata(), runs["one"].losses)
    np.testing.assert_allclose(loss_one.lines[1].get_ydata(),
                               np.convolve(runs["one"].losses, np.ones(3) / 3, mode="valid"))
    assert loss_one.lines[2].get_ydata()[0] == 1.0 and len(loss_two.lines) == 2
    for line, name in zip(quality.lines, ("one", "two")):
        np.testing.assert_allclose(line.get_xydata(), np.stack(gaps[name], axis=1))


def test_field_over_time_shows_each_density_under_its_field():
    field = lambda t, x: -t * x  # noqa: E731 (contracts faster as t grows)
    log_density = lambda t, x: -0.5 * (x ** 2).sum(1) / (1 + t)  # noqa: E731
    figure = plot_field_over_time(field, log_density, (0.0, 0.5), resolution=20, floor=-6.0)
    panels, bar = figure.axes[:2], figure.axes[2]
    assert [ax.get_title() for ax in panels] == ["t = 0", "t = 0.5"]
    grid = np.linspace(-4.5, 4.5, 20)
    gx, gy = np.meshgrid(grid, grid)
    for ax, t in zip(panels, (0.0, 0.5)):
        mesh = ax.collections[0]
        np.testing.assert_allclose(np.asarray(mesh.get_array()).reshape(gx.shape),
                                   np.maximum(-0.5 * (gx ** 2 + gy ** 2) / (1 + t), -6.0))
        assert (mesh.norm.vmin, mesh.norm.vmax) == (-6.0, pytest.approx(0.0, abs=0.1))  # one scale
    assert bar.get_ylabel() == r"$\log p_t$"
    streamlines = [ax.collections[1].get_segments() for ax in panels]
    assert len(streamlines[0]) == 0 < len(streamlines[1])  # the field is zero at t = 0
