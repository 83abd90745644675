"""Glow: ActNorm's data-dependent initialisation, the 1x1 convolution's log-det, squeeze,
the multi-scale architecture, and the digits model with its bits per dimension."""
import io
import math

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Independent, Uniform

from course_lib import models
from course_lib.flows import (ActNorm, Affine, FlowInputError, InvConv1x1, LogitTransform,
                              LULinear, MultiScale, Squeeze, glow_step, initialize)
from course_lib.jacobian import log_abs_det_bruteforce
from course_lib.model import NormalizingFlow
from course_lib.validation import CourseValueError
from flow_cases import randomise


def seed_conv():
    """The worked example: 3 channels, ``U`` with diagonal (2, 0.5, 0.8)."""
    torch.manual_seed(0)
    conv = randomise(InvConv1x1(3), scale=0.5)
    with torch.no_grad():
        conv.lu.log_u.copy_(torch.tensor([2.0, 0.5, 0.8]).log())
        conv.lu.sign.fill_(1.0)
    return conv


def test_conv1x1_u_diagonal_2_05_08_on_32x32_has_forward_log_det_minus_228_5():
    # forward is latent -> data, x = W z at each of the 32 * 32 pixels: the seed's direction,
    # log|det dx/dz| = H W sum log|U_ii| = 1024 log(0.8)
    conv = seed_conv()
    torch.testing.assert_close(torch.diagonal(conv.lu.factors()[1]),
                               torch.tensor([2.0, 0.5, 0.8]), rtol=0, atol=1e-15)
    _, logdet = conv(torch.randn(2, 3, 32, 32))
    assert round(logdet[0].item(), 1) == -228.5
    expected = 32 * 32 * torch.linalg.slogdet(conv.lu.matrix())[1]
    torch.testing.assert_close(logdet, expected.expand(2), rtol=0, atol=1e-10)


def test_conv1x1_inverse_direction_has_log_det_plus_228_5():
    _, logdet = seed_conv().inverse(torch.randn(2, 3, 32, 32))
    assert round(logdet[0].item(), 1) == 228.5


def test_conv1x1_equals_a_convolution_with_a_1x1_kernel():
    conv = randomise(InvConv1x1(4), scale=0.3)
    z = torch.randn(2, 4, 5, 6)
    expected = F.conv2d(z, conv.lu.matrix()[:, :, None, None])
    torch.testing.assert_close(conv(z)[0], expected, rtol=0, atol=1e-12)


def test_conv1x1_starts_as_a_rotation_with_log_det_zero():
    conv = InvConv1x1(5)
    w = conv.lu.matrix()
    torch.testing.assert_close(w @ w.T, torch.eye(5), rtol=0, atol=1e-12)
    torch.testing.assert_close(torch.linalg.det(w), torch.tensor(1.0), rtol=0, atol=1e-12)
    _, logdet = conv(torch.randn(3, 5, 4, 4))
    torch.testing.assert_close(logdet, torch.zeros(3), rtol=0, atol=1e-12)


@pytest.mark.parametrize("shape", [(256, 3, 4, 4), (256, 3)], ids=["image", "vector"])
def test_actnorm_initialisation_gives_its_batch_zero_mean_unit_variance(shape):
    torch.manual_seed(0)
    norm = ActNorm(3)
    scale = torch.tensor([0.1, 2.0, 30.0]).view(1, 3, *[1] * (len(shape) - 2))
    x = 5 + scale * torch.randn(shape) ** 3
    assert initialize(norm, x) is norm and bool(norm.initialized)
    z, _ = norm.inverse(x)
    dims = [0] + list(range(2, len(shape)))
    torch.testing.assert_close(z.mean(dim=dims), torch.zeros(3), rtol=0, atol=1e-12)
    torch.testing.assert_close(z.var(dim=dims, unbiased=False), torch.ones(3), rtol=0, atol=1e-12)


def test_actnorm_initialises_once_only():
    norm = ActNorm(2)
    initialize(norm, torch.randn(64, 2, 3, 3))
    state = {k: v.clone() for k, v in norm.state_dict().items()}
    initialize(norm, 10 + torch.randn(64, 2, 3, 3))
    for key, value in norm.state_dict().items():
        assert torch.equal(value, state[key]), key


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_actnorm_never_initialises_itself_from_a_call(mode):
    norm = getattr(ActNorm(2), mode)()
    x = 5 + 3 * torch.randn(16, 2, 3, 3)
    z, logdet = norm.inverse(x)
    torch.testing.assert_close(z, x, rtol=0, atol=0)          # the identity it was built as
    torch.testing.assert_close(logdet, torch.zeros(16), rtol=0, atol=0)
    torch.testing.assert_close(norm(x)[0], x, rtol=0, atol=0)
    assert not bool(norm.initialized)
    assert torch.equal(norm.log_scale, torch.zeros(2)) and torch.equal(norm.shift, torch.zeros(2))


def test_initialize_sets_each_actnorm_of_a_model_from_the_activations_it_receives():
    torch.manual_seed(0)
    first, second = ActNorm(2), ActNorm(2)
    flow = NormalizingFlow(2, [first, LULinear(2, weight=torch.tensor([[1.0, 0.5], [-0.3, 2.0]])),
                               second])                     # data -> latent: second first
    x = torch.tensor([3.0, -1.0]) + torch.randn(500, 2) * torch.tensor([2.0, 0.5])
    initialize(flow, x)
    assert bool(first.initialized) and bool(second.initialized)
    torch.testing.assert_close(second.shift, x.mean(0), rtol=0, atol=1e-12)
    h = flow.flows[1].inverse(second.inverse(x)[0])[0]      # what the first ActNorm received
    torch.testing.assert_close(first.shift, h.mean(0), rtol=0, atol=1e-12)
    torch.testing.assert_close(first.log_scale.exp(), h.std(0, unbiased=False), rtol=0, atol=1e-12)


@pytest.mark.parametrize("batch, message", [
    (lambda: torch.zeros(0, 2), "at least 2 samples.*got 0"),
    (lambda: torch.randn(1, 2), "at least 2 samples.*got 1"),
    (lambda: torch.tensor([[1.0, 2.0], [3.0, 2.0]]), r"constant channel \[1\] \(std 0\)"),
])
def test_initialize_refuses_a_batch_without_spread_and_changes_nothing(batch, message):
    model = NormalizingFlow(2, [ActNorm(2), LULinear(2, weight=torch.tensor([[1.0, 0.5], [-0.3, 2.0]])), ActNorm(2)])
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match=message):
        initialize(model, batch())
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_a_failure_in_a_later_actnorm_restores_the_earlier_one():
    # data -> latent, the last ActNorm initialises first; then the Affine divides channel 1
    # by 1e-300, so the spread the other ActNorm receives overflows float64
    last = ActNorm(2)
    model = NormalizingFlow(2, [ActNorm(2), Affine(2, scale=torch.tensor([1.0, 1e-300])), last])
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match=r"spread \[1\] \(std inf\)"):
        initialize(model, torch.randn(32, 2))
    assert not bool(last.initialized)
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_fit_initialises_actnorm_on_its_first_batch():
    from course_lib.training import fit
    model = NormalizingFlow(2, [ActNorm(2)])
    data = torch.tensor([4.0, -3.0]) + torch.randn(2000, 2, generator=torch.Generator().manual_seed(0))
    fit(model, data, steps=1, batch_size=1000, lr=1e-12, progress=False)
    assert bool(model.flows[0].initialized)
    torch.testing.assert_close(model.flows[0].shift.detach(), torch.tensor([4.0, -3.0]), rtol=0,
                               atol=0.15)


def test_saved_and_reloaded_glow_gives_identical_outputs_and_keeps_actnorm_initialised():
    torch.manual_seed(0)
    model = models.glow(n_levels=2, n_steps=1, hidden=8)
    data = models.dequantize(torch.randint(0, 17, (32, 1, 8, 8)).double())
    initialize(model, data)
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    buffer.seek(0)
    torch.manual_seed(1)
    reloaded = models.glow(n_levels=2, n_steps=1, hidden=8)
    reloaded.load_state_dict(torch.load(buffer))
    flags = [bool(m.initialized) for m in reloaded.modules() if isinstance(m, ActNorm)]
    assert flags and all(flags)
    state = {k: v.clone() for k, v in reloaded.state_dict().items()}
    initialize(reloaded, 3 * data)                       # initialised already: nothing moves
    assert all(torch.equal(v, state[k]) for k, v in reloaded.state_dict().items())
    other = models.dequantize(torch.randint(0, 17, (8, 1, 8, 8)).double())
    assert torch.equal(reloaded.log_prob(other), model.log_prob(other))
    z = torch.randn(4, 1, 8, 8)
    assert torch.equal(reloaded.flow(z)[0], model.flow(z)[0])


def test_squeeze_moves_each_2x2_block_into_four_channels():
    x = torch.randn(2, 3, 4, 6)
    z, logdet = Squeeze(3).inverse(x)
    assert z.shape == (2, 12, 2, 3) and torch.equal(logdet, torch.zeros(2))
    for c in range(3):
        for i in range(2):
            for j in range(2):
                assert torch.equal(z[:, 4 * c + 2 * i + j], x[:, c, i::2, j::2])
    assert torch.equal(Squeeze(3)(z)[0], x)


def test_squeeze_rejects_odd_height_or_width():
    with pytest.raises(FlowInputError, match="even height and width.*got 5x4"):
        Squeeze().inverse(torch.randn(1, 2, 5, 4))


def test_squeeze_rejects_channels_that_do_not_fit():
    with pytest.raises(FlowInputError, match="divisible by 4"):
        Squeeze()(torch.randn(1, 6, 2, 2))
    with pytest.raises(FlowInputError, match=r"\(batch, 2, \*, \*\)"):
        Squeeze(2).inverse(torch.randn(1, 3, 4, 4))


def test_image_flows_reject_wrong_channels_and_nan():
    with pytest.raises(FlowInputError, match=r"\(batch, 4, \*, \*\)"):
        InvConv1x1(4)(torch.randn(2, 3, 4, 4))
    with pytest.raises(FlowInputError, match=r"\(batch, 3\) or \(batch, 3, H, W\)"):
        ActNorm(3).inverse(torch.randn(2, 3, 4))
    with pytest.raises(FlowInputError, match="non-finite"):
        ActNorm(1).inverse(torch.tensor([[[[0.0, float("nan")]]]]))


def test_logit_transform_rejects_values_outside_its_domain():
    with pytest.raises(FlowInputError, match="expected values in"):
        LogitTransform(1).inverse(torch.full((1, 1, 2, 2), 1.5))


def test_multiscale_latent_has_the_shape_of_the_data_and_maps_back_to_it():
    torch.manual_seed(0)
    level = randomise(MultiScale(1, [glow_step(4, hidden=8)],
                                 inner=MultiScale(2, [glow_step(8, hidden=8)])), scale=0.1)
    x = torch.rand(3, 1, 8, 8)
    z, inv_logdet = level.inverse(x)
    assert z.shape == x.shape
    x_back, logdet = level(z)
    torch.testing.assert_close(x_back, x, rtol=0, atol=1e-10)
    torch.testing.assert_close(logdet, -inv_logdet, rtol=0, atol=1e-10)
    # without steps a level only reorders: the latent is a permutation of the pixels
    bare = MultiScale(1, [InvConv1x1(4, weight=torch.eye(4))],
                      inner=MultiScale(2, [InvConv1x1(8, weight=torch.eye(8))]))
    z, logdet = bare.inverse(x)
    assert torch.equal(z.flatten(1).sort(1).values, x.flatten(1).sort(1).values)
    assert torch.equal(logdet, torch.zeros(3))


def test_multiscale_factored_out_half_does_not_depend_on_the_next_level():
    torch.manual_seed(0)
    level = MultiScale(1, [glow_step(4, hidden=8)], inner=MultiScale(2, [glow_step(8, hidden=8)]))
    x = torch.rand(5, 1, 8, 8)
    before = Squeeze(1).inverse(level.inverse(x)[0])[0]
    randomise(level.inner, scale=0.3)
    after = Squeeze(1).inverse(level.inverse(x)[0])[0]
    assert torch.equal(after[:, :2], before[:, :2])
    assert not torch.allclose(after[:, 2:], before[:, 2:])


def test_multiscale_rejects_steps_with_the_wrong_channels():
    with pytest.raises(CourseValueError, match="steps must act on 8 channels"):
        MultiScale(2, steps=[InvConv1x1(2)])


def test_glow_log_prob_is_the_change_of_variables_with_the_autograd_jacobian():
    torch.manual_seed(0)
    model = models.glow(n_levels=2, n_steps=1, hidden=8)
    x = models.dequantize(torch.randint(0, 17, (2, 1, 8, 8)).double())
    model.log_prob(x)
    randomise(model, scale=0.05)
    z, _ = model.flow.inverse(x)
    log_det = log_abs_det_bruteforce(lambda t: model.flow.inverse(t)[0], x)
    expected = model.base.log_prob(z) + log_det
    torch.testing.assert_close(model.log_prob(x), expected, rtol=0, atol=1e-9)


def test_glow_samples_are_the_flow_of_base_draws_with_the_change_of_variables_density():
    torch.manual_seed(0)
    model = randomise(models.glow(n_levels=2, n_steps=1, hidden=8), scale=0.02)
    torch.manual_seed(5)
    samples = model.sample(3)
    assert samples.shape == (3, 1, 8, 8)
    torch.manual_seed(5)
    z = model.base.sample((3,))
    x, logdet = model.flow(z)
    torch.testing.assert_close(samples, x, rtol=0, atol=0)
    torch.testing.assert_close(model.log_prob(x), model.base.log_prob(z) - logdet,
                               rtol=0, atol=1e-9)


def test_bits_per_dim_of_a_uniform_model_is_log2_17():
    uniform = NormalizingFlow(Independent(Uniform(torch.zeros(1, 8, 8), torch.ones(1, 8, 8)), 3),
                              [InvConv1x1(1, weight=torch.eye(1))])
    images = torch.randint(0, 17, (10, 1, 8, 8)).double()
    torch.testing.assert_close(models.bits_per_dim(uniform, images), torch.tensor(math.log2(17)),
                               rtol=0, atol=1e-12)


def test_bits_per_dim_rejects_pixels_that_are_not_grey_levels():
    model = models.glow(n_steps=1, hidden=8)
    with pytest.raises(ValueError, match=r"pixel values in 0..16, got 0..17"):
        models.bits_per_dim(model, torch.tensor([[[[0.0, 17.0]]]]))
    with pytest.raises(ValueError, match="integer pixel values"):
        models.bits_per_dim(model, torch.full((1, 1, 8, 8), 0.5))


def test_glow_rejects_images_that_the_levels_cannot_halve():
    with pytest.raises(ValueError, match="divisible by 4"):
        models.glow(image_shape=(1, 6, 6))
