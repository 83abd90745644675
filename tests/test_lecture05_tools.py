"""Figures, animation and explorer of lecture 05 (Glow): the three-channel pattern, image
grids, the squeeze picture and animation, the multi-scale latent levels, change maps,
and the channel-mixing explorer."""
import math

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import torch
from matplotlib.collections import PolyCollection

from course_lib.flows import ActNorm, InvConv1x1, MultiScale
from course_lib.model import NormalizingFlow
from course_lib.plotting import (animate_squeeze, image_grid, multiscale_levels,
                                 plot_change_maps, plot_images, plot_level_resampling,
                                 plot_squeeze, resample_level, squeeze_positions,
                                 three_channel_pattern)
from course_lib.widgets import channel_mixing_explorer, rotation_3d

# frames are drawn by hand here, never rendered to a movie
pytestmark = pytest.mark.filterwarnings("ignore:Animation was deleted without rendering")


def centres(collection: PolyCollection) -> np.ndarray:
    return np.array([path.vertices[:4].mean(axis=0) for path in collection.get_paths()])


# -- images -----------------------------------------------------------------------------------

def test_pattern_is_one_image_of_three_distinct_channels_in_the_unit_interval():
    image = three_channel_pattern(16)
    assert image.shape == (1, 3, 16, 16)
    assert image.min() >= 0 and image.max() <= 1
    for i, j in ((0, 1), (0, 2), (1, 2)):
        assert not torch.allclose(image[0, i], image[0, j])


def test_image_grid_puts_image_k_in_row_k_div_nrow_and_column_k_mod_nrow():
    images = torch.randn(5, 1, 3, 4)
    grid = image_grid(images, nrow=2, pad=1)
    assert grid.shape == (3 * 3 + 2, 2 * 4 + 1)
    for k in range(5):
        r, c = divmod(k, 2)
        np.testing.assert_array_equal(grid[4 * r: 4 * r + 3, 5 * c: 5 * c + 4], images[k, 0])
    assert np.isnan(grid[3]).all() and np.isnan(grid[:, 4]).all()  # padding
    assert np.isnan(grid[8:, 5:]).all()  # the sixth place is empty


def test_plot_images_shows_the_grid_clipped_to_the_pixel_range():
    images = torch.linspace(-1, 2, 2 * 16).reshape(2, 1, 4, 4)
    figure = plot_images(images, nrow=2)
    shown = np.ma.filled(figure.axes[0].images[0].get_array(), np.nan)
    expected = np.clip(image_grid(images, nrow=2), 0, 1)
    np.testing.assert_array_equal(shown, expected)


def test_image_grid_rejects_images_with_several_channels():
    with pytest.raises(ValueError, match="expected images of shape"):
        image_grid(torch.zeros(2, 3, 4, 4))


# -- the squeeze --------------------------------------------------------------------------------

def test_each_pixel_goes_to_the_channel_of_its_place_in_its_2x2_block():
    start, end, channel = squeeze_positions(4, 6)
    for pixel in range(24):
        row, col = divmod(pixel, 6)
        assert tuple(start[pixel]) == (col, row)
        k = 2 * (row % 2) + col % 2
        assert channel[pixel] == k
        left, top = 6 + 2 + (k % 2) * (3 + 1), (k // 2) * (2 + 1)
        assert tuple(end[pixel]) == (left + col // 2, top + row // 2)


def test_squeeze_sends_distinct_pixels_to_distinct_places():
    _, end, _ = squeeze_positions(8, 8)
    assert len({tuple(p) for p in end}) == 64


def test_squeeze_positions_reject_odd_sizes():
    with pytest.raises(ValueError, match="even height and width"):
        squeeze_positions(3, 4)


def test_plot_squeeze_draws_every_pixel_in_the_image_and_in_the_channels():
    image = torch.rand(1, 1, 4, 4)
    figure = plot_squeeze(image)
    collections = [c for c in figure.axes[0].collections if isinstance(c, PolyCollection)]
    start, end, _ = squeeze_positions(4, 4)
    assert len(collections) == 2
    np.testing.assert_allclose(centres(collections[0]), start, atol=1e-12)
    np.testing.assert_allclose(centres(collections[1]), end, atol=1e-12)


def test_squeeze_animation_moves_pixels_from_the_image_to_the_channels():
    animation = animate_squeeze(torch.rand(8, 8), frames=6)
    start, end, _ = squeeze_positions(8, 8)
    assert len(list(animation.new_frame_seq())) == 6 + 6 // 4
    pixels, _ = animation._func(0)
    np.testing.assert_allclose(centres(pixels), start, atol=1e-12)
    pixels, _ = animation._func(5)
    np.testing.assert_allclose(centres(pixels), end, atol=1e-12)
    pixels, _ = animation._func(2)
    middle = centres(pixels)
    assert np.all((middle[:, 0] > start[:, 0]) & (middle[:, 0] < end[:, 0]))


# -- multi-scale latents ------------------------------------------------------------------------

def scaling_levels(channels, factors):
    """Nested MultiScale levels whose only steps are ActNorms scaling by ``factors[k]``: in
    the forward direction a latent factored out at level k is multiplied by
    ``factors[0] * ... * factors[k]``."""
    level = None
    for k in reversed(range(len(factors))):
        c = channels * 2 ** k
        norm = ActNorm(4 * c)
        with torch.no_grad():
            norm.log_scale.fill_(math.log(factors[k]))
            norm.initialized.fill_(True)
        level = MultiScale(c, [norm], inner=level)
    return level


@pytest.mark.parametrize("shape, factors", [((1, 8, 8), (1.0, 3.0)),
                                            ((1, 8, 8), (1.0, 2.0, 5.0)),
                                            ((2, 4, 8), (1.0, 7.0))])
def test_levels_say_which_level_factors_out_each_latent(shape, factors):
    levels = multiscale_levels(shape, len(factors))
    z = torch.randn(3, *shape)
    x, _ = scaling_levels(shape[0], factors)(z)
    gain = torch.tensor(np.cumprod(factors))[levels]
    torch.testing.assert_close(x, gain * z, atol=1e-12, rtol=0)


def test_each_level_but_the_last_factors_out_half_of_what_it_receives():
    levels = multiscale_levels((1, 16, 16), 3)
    assert [(levels == k).sum().item() for k in range(3)] == [128, 64, 64]


@pytest.mark.parametrize("level", [0, 1])
def test_resampling_a_level_draws_only_that_levels_latents_again(level):
    factors = (2.0, 3.0)
    model = NormalizingFlow((1, 8, 8), [scaling_levels(1, factors)])
    levels = multiscale_levels((1, 8, 8), 2)
    x = torch.randn(3, 1, 8, 8)
    out = resample_level(model, x, levels, level, temperature=0.5,
                         generator=torch.Generator().manual_seed(4))
    fresh = 0.5 * torch.randn(3, 1, 8, 8, generator=torch.Generator().manual_seed(4))
    gain = np.cumprod(factors)[level]
    expected = torch.where(levels == level, gain * fresh, x)
    torch.testing.assert_close(out, expected, atol=1e-12, rtol=0)


def test_level_resampling_figure_has_the_images_and_one_panel_per_level():
    model = NormalizingFlow((1, 8, 8), [scaling_levels(1, (1.0, 1.0, 1.0))])
    levels = multiscale_levels((1, 8, 8), 3)
    figure = plot_level_resampling(model, torch.rand(2, 1, 8, 8), levels, variations=3)
    shapes = [ax.images[0].get_array().shape for ax in figure.axes]
    assert shapes == [(2 * 9 - 1, 8)] + [(2 * 9 - 1, 3 * 9 - 1)] * 3


def test_levels_reject_sizes_that_cannot_be_halved_often_enough():
    with pytest.raises(ValueError, match="halves"):
        multiscale_levels((1, 8, 8), 4)


# -- change maps --------------------------------------------------------------------------------

def test_change_map_shows_f_z_minus_z_divided_by_its_largest_value():
    z = torch.randn(1, 1, 4, 4)
    doubling = InvConv1x1(1, weight=torch.tensor([[2.0]]))  # f(z) - z = z
    figure = plot_change_maps(z, [doubling], ["x = 2 z"])
    shown = figure.axes[0].images[0].get_array()
    np.testing.assert_allclose(shown, (z / z.abs().max())[0, 0].numpy(), atol=1e-12)


def test_change_maps_need_one_title_per_flow():
    with pytest.raises(ValueError, match="one title per flow"):
        plot_change_maps(torch.zeros(1, 1, 4, 4), [InvConv1x1(1)], [])


# -- the channel-mixing explorer ----------------------------------------------------------------

def test_rotation_3d_is_orthogonal_with_determinant_one():
    R = rotation_3d(30.0, -75.0, 140.0)
    torch.testing.assert_close(R @ R.T, torch.eye(3, dtype=torch.float64), atol=1e-12, rtol=0)
    assert torch.linalg.det(R).item() == pytest.approx(1.0, abs=1e-12)


def test_rotation_3d_with_one_angle_turns_the_other_two_channels():
    R = rotation_3d(0.0, 0.0, 90.0)  # a quarter turn in the plane of channels 1 and 2
    expected = torch.tensor([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]],
                            dtype=torch.float64)
    torch.testing.assert_close(R, expected, atol=1e-12, rtol=0)


def title(explorer) -> str:
    return explorer.figure._suptitle.get_text()


def test_explorer_starts_at_the_worked_example_with_the_channels_mixed():
    explorer = channel_mixing_explorer()
    angles = [explorer.controls[f"angle_{k}"].value for k in (1, 2, 3)]
    assert all(angle != 0 for angle in angles)
    assert title(explorer).endswith("= 1024 × (-0.2231) = -228.5")
    weight = rotation_3d(*angles) @ torch.diag(torch.tensor([2.0, 0.5, 0.8], dtype=torch.float64))
    # the stored picture shows mixed channels: every channel of x = W z draws on all three of z
    assert bool((weight.abs() > 0.05).all())
    assert 1024 * torch.linalg.slogdet(weight)[1].item() == pytest.approx(-228.5, abs=0.05)


def test_explorer_starts_at_the_worked_example_without_rotation():
    explorer = channel_mixing_explorer(angles=(0.0, 0.0, 0.0))
    assert "diagonal of U = (2.00, 0.50, 0.80)" in title(explorer)
    assert title(explorer).endswith("= 1024 × (-0.2231) = -228.5")


def test_explorer_log_det_is_pixels_times_log_abs_det_of_W():
    explorer = channel_mixing_explorer(size=8, angles=(0.0, 0.0, 0.0))
    explorer.set(angle_1=40.0, angle_2=-65.0, s_1=-1.5, s_3=2.2)
    weight = rotation_3d(40.0, -65.0, 0.0) @ torch.diag(torch.tensor([-1.5, 0.5, 2.2]))
    expected = 64 * torch.linalg.slogdet(weight)[1].item()
    assert title(explorer).endswith(f"= {expected:.1f}")


def test_explorer_rotation_alone_has_log_det_zero():
    explorer = channel_mixing_explorer(size=8)
    explorer.set(angle_1=25.0, angle_3=-110.0, s_1=1.0, s_2=1.0, s_3=1.0)
    assert title(explorer).endswith("× (0.0000) = 0.0")


def test_explorer_shows_W_z_in_every_mixed_channel():
    explorer = channel_mixing_explorer(size=8, angles=(0.0, 0.0, 0.0))
    explorer.set(angle_2=55.0, s_3=-0.7)
    weight = rotation_3d(0.0, 55.0, 0.0) @ torch.diag(torch.tensor([2.0, 0.5, -0.7]))
    mixed = torch.einsum("ij,jhw->ihw", weight, three_channel_pattern(8)[0].double())
    panels = {ax.get_title(): ax for ax in explorer.figure.axes}
    for c in range(3):
        shown = panels[f"channel $x_{c + 1}$"].images[0].get_array()
        np.testing.assert_allclose(shown, mixed[c].numpy(), atol=1e-6)


def test_explorer_says_when_W_is_singular():
    explorer = channel_mixing_explorer(size=8)
    explorer.set(s_2=0.0)
    texts = [t.get_text() for ax in explorer.figure.axes for t in ax.texts]
    assert any("singular" in t for t in texts)


def test_squeeze_animation_is_at_least_640_pixels_wide():
    animation = animate_squeeze(torch.rand(8, 8), frames=2)
    figure = animation._fig
    assert figure.get_size_inches()[0] * figure.dpi >= 640
