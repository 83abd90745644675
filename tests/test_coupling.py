"""Coupling layers (NICE, RealNVP): the worked example, the block-triangular Jacobian,
the masks, the bounded log-scale, bad inputs, and the ``realnvp`` builder."""
import math

import pytest
import torch
from torch import nn

from course_lib.flows import AdditiveCoupling, AffineCoupling, affine_coupling_step
from course_lib.jacobian import jacobian
from course_lib.model import NormalizingFlow
from course_lib.models import realnvp
from course_lib.training import fit
from course_lib.validation import CourseValueError
from flow_cases import randomise


def perturbed(flow, scale=0.3, seed=0):
    return randomise(flow, scale, seed)


class Constant(nn.Module):
    """A conditioner returning the same values for every sample."""

    def __init__(self, values):
        super().__init__()
        self.values = torch.as_tensor(values, dtype=torch.float64)

    def forward(self, z_a):
        return self.values.expand(z_a.shape[0], -1)


# -- the worked example -------------------------------------------------------------
def test_worked_example_step_gives_x_and_log_det():
    x, logdet = affine_coupling_step(torch.tensor([[1.0, 3.0]]), 0.5, 2.0,
                                     torch.tensor([False, True]))
    torch.testing.assert_close(x, torch.tensor([[1.0, 3.0 * math.exp(0.5) + 2.0]]))
    torch.testing.assert_close(logdet, torch.tensor([0.5]))
    assert round(x[0, 1].item(), 3) == 6.946


def test_worked_example_inverse_step_recovers_z():
    x = torch.tensor([[1.0, 3.0 * math.exp(0.5) + 2.0]])
    z, logdet = affine_coupling_step(x, 0.5, 2.0, torch.tensor([False, True]), inverse=True)
    torch.testing.assert_close(z, torch.tensor([[1.0, 3.0]]))
    torch.testing.assert_close(logdet, torch.tensor([-0.5]))


def test_layer_with_the_worked_example_conditioner_matches_the_step():
    bound = 3.0
    s_raw = bound * math.atanh(0.5 / bound)  # so that the bounded log-scale is exactly 0.5
    flow = AffineCoupling(2, conditioner=Constant([s_raw, 2.0]), scale_bound=bound)
    x, logdet = flow(torch.tensor([[1.0, 3.0]]))
    torch.testing.assert_close(x, torch.tensor([[1.0, 3.0 * math.exp(0.5) + 2.0]]))
    torch.testing.assert_close(logdet, torch.tensor([0.5]))


# -- structure of the Jacobian --------------------------------------------------------
VECTOR_LAYERS = [(cls, dim, parity) for cls in (AdditiveCoupling, AffineCoupling)
                 for dim in (2, 5) for parity in (0, 1)]


@pytest.mark.parametrize("cls,dim,parity", VECTOR_LAYERS)
def test_untouched_part_is_copied_so_its_jacobian_rows_are_identity_rows(cls, dim, parity):
    flow = perturbed(cls(dim, parity=parity, hidden=8))
    z = torch.randn(4, dim)
    J = jacobian(flow, z)
    a = flow.index_a
    assert torch.equal(flow(z)[0][:, a], z[:, a])
    assert torch.equal(J[:, a], torch.eye(dim).expand(4, -1, -1)[:, a])


@pytest.mark.parametrize("cls,dim,parity", VECTOR_LAYERS)
def test_transformed_block_of_the_jacobian_is_diagonal(cls, dim, parity):
    flow = perturbed(cls(dim, parity=parity, hidden=8))
    z = torch.randn(4, dim)
    J_bb = jacobian(flow, z)[:, flow.index_b][:, :, flow.index_b]
    off_diagonal = J_bb * (1 - torch.eye(len(flow.index_b)))
    assert torch.equal(off_diagonal, torch.zeros_like(off_diagonal))
    assert not torch.allclose(jacobian(flow, z)[:, flow.index_b][:, :, flow.index_a],
                              torch.zeros(()))


def test_affine_diagonal_is_exp_of_the_log_scale():
    flow = perturbed(AffineCoupling(5, hidden=8))
    z = torch.randn(4, 5)
    J = jacobian(flow, z)
    b = flow.index_b
    s = flow.log_scale(flow.conditioner(z[:, flow.index_a]).chunk(2, dim=1)[0])
    torch.testing.assert_close(torch.diagonal(J[:, b][:, :, b], dim1=1, dim2=2), s.exp())


@pytest.mark.parametrize("mask", ["checkerboard", "channel"])
def test_image_coupling_jacobian_rows_of_untouched_pixels_are_identity_rows(mask):
    flow = perturbed(AffineCoupling(4, mask=mask, hidden=8))
    z = torch.randn(2, 4, 4, 4)
    untouched = ~flow.image_mask(4, 4).expand(4, 4, 4).flatten()
    J = jacobian(flow, z)
    assert torch.equal(J[:, untouched], torch.eye(64).expand(2, -1, -1)[:, untouched])


# -- log-determinants -----------------------------------------------------------------
@pytest.mark.parametrize("shape,mask", [((5,), None), ((4, 4, 4), "checkerboard"),
                                        ((4, 4, 4), "channel")])
def test_additive_coupling_log_det_is_exactly_zero(shape, mask):
    flow = perturbed(AdditiveCoupling(shape[0], mask=mask, hidden=8))
    z = torch.randn(3, *shape)
    x, logdet = flow(z)
    _, inv_logdet = flow.inverse(x)
    assert torch.equal(logdet, torch.zeros(3)) and torch.equal(inv_logdet, torch.zeros(3))
    assert not torch.allclose(x, z)


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_log_scale_stays_within_its_bound_for_huge_conditioner_outputs(sign):
    flow = AffineCoupling(5, hidden=8, scale_bound=2.5)
    with torch.no_grad():
        flow.conditioner.net[-1].bias[:3] = sign * 1e30
    z = torch.randn(4, 5)
    x, logdet = flow(z)
    assert torch.isfinite(x).all()
    assert (logdet.abs() <= 2.5 * 3).all()
    torch.testing.assert_close(logdet, torch.full((4,), sign * 2.5 * 3))
    torch.testing.assert_close(flow.inverse(x)[0], z)


def test_every_coupling_starts_as_the_identity():
    z2, z_img = torch.randn(3, 2), torch.randn(3, 4, 4, 4)
    for flow, z in [(AdditiveCoupling(2), z2), (AffineCoupling(2), z2),
                    (AffineCoupling(4, mask="checkerboard"), z_img),
                    (AdditiveCoupling(4, mask="channel"), z_img)]:
        x, logdet = flow(z)
        assert torch.equal(x, z) and torch.equal(logdet, torch.zeros(3))


# -- masks ------------------------------------------------------------------------------
def changed(flow, z):
    return (perturbed(flow)(z)[0] != z)


def test_parity_zero_transforms_the_second_half_and_parity_one_the_first():
    z = torch.randn(4, 5)
    assert changed(AffineCoupling(5), z).any(0).tolist() == [False, False, True, True, True]
    assert changed(AffineCoupling(5, parity=1), z).any(0).tolist() == [True, True, False, False,
                                                                        False]


def test_bool_mask_marks_the_transformed_coordinates():
    mask = torch.tensor([True, False, True, False])
    assert torch.equal(changed(AffineCoupling(4, mask=mask), torch.randn(4, 4)).any(0), mask)


def test_checkerboard_mask_transforms_alternate_pixels_in_every_channel():
    flow = AffineCoupling(4, mask="checkerboard", parity=1)
    moved = changed(flow, torch.randn(2, 4, 4, 4)).any(0)
    rows, cols = torch.meshgrid(torch.arange(4), torch.arange(4), indexing="ij")
    assert torch.equal(moved, ((rows + cols) % 2 == 0).expand(4, 4, 4))


def test_channel_mask_transforms_the_second_half_of_the_channels():
    moved = changed(AffineCoupling(4, mask="channel"), torch.randn(2, 4, 3, 5)).any(0)
    assert moved.flatten(1).all(1).tolist() == [False, False, True, True]
    assert not moved[:2].any()


# -- bad inputs -------------------------------------------------------------------------
def test_vector_of_the_wrong_size_is_refused():
    with pytest.raises(ValueError, match=r"expected z of shape \(batch, 2\), got \(3, 5\)"):
        AffineCoupling(2)(torch.zeros(3, 5))


def test_image_with_the_wrong_number_of_channels_is_refused():
    with pytest.raises(ValueError, match=r"shape \(batch, 4, \*, \*\), got \(2, 3, 4, 4\)"):
        AffineCoupling(4, mask="checkerboard").inverse(torch.zeros(2, 3, 4, 4))


def test_nan_input_is_refused():
    x = torch.zeros(3, 2)
    x[0, 1] = math.nan
    with pytest.raises(ValueError, match="non-finite"):
        AdditiveCoupling(2).inverse(x)


def test_mask_of_the_wrong_size_is_refused():
    with pytest.raises(ValueError, match=r"bool mask of shape \(3,\).*shape \(2,\)"):
        AffineCoupling(3, mask=torch.tensor([True, False]))


def test_mask_that_is_not_bool_is_refused():
    with pytest.raises(ValueError, match="bool mask.*torch.int64"):
        AffineCoupling(2, mask=torch.tensor([0, 1]))


def test_mask_that_transforms_nothing_is_refused():
    with pytest.raises(ValueError, match="transforms nothing"):
        AdditiveCoupling(3, mask=torch.zeros(3, dtype=torch.bool))


def test_mask_that_transforms_everything_is_refused():
    with pytest.raises(ValueError, match="transforms everything"):
        AffineCoupling(3, mask=torch.ones(3, dtype=torch.bool))


def test_a_single_coordinate_cannot_be_split():
    with pytest.raises(ValueError, match="dim=1.*transforms everything"):
        AffineCoupling(1)


def test_channel_mask_needs_two_channels():
    with pytest.raises(ValueError, match="1 channel.*transforms"):
        AffineCoupling(1, mask="channel")


def test_checkerboard_on_a_single_pixel_is_refused():
    with pytest.raises(ValueError, match="1x1 images.*transforms nothing"):
        AffineCoupling(2, mask="checkerboard")(torch.zeros(1, 2, 1, 1))


def test_unknown_mask_name_is_refused():
    with pytest.raises(ValueError, match="one of.*checkerboard.*got 'stripes'"):
        AffineCoupling(2, mask="stripes")


def test_conditioner_with_the_wrong_output_size_is_refused():
    flow = AffineCoupling(2, conditioner=Constant([1.0, 2.0, 3.0]))
    with pytest.raises(ValueError, match="conditioner must return 2 values.*got \\(4, 3\\)"):
        flow(torch.zeros(4, 2))


@pytest.mark.parametrize("bound", [0, -3.0, math.nan, -math.inf, None])
def test_non_positive_scale_bound_is_refused(bound):
    with pytest.raises(CourseValueError, match="AffineCoupling: expected scale_bound to be a "
                                               "positive number"):
        AffineCoupling(2, scale_bound=bound)


# -- the realnvp builder ----------------------------------------------------------------
def test_realnvp_alternates_which_half_is_transformed():
    model = realnvp(4, 4, 16)
    couplings = [f for f in model.flows if isinstance(f, AffineCoupling)]
    assert len(couplings) == 4
    assert [f.index_b.tolist() for f in couplings] == [[2, 3], [0, 1], [2, 3], [0, 1]]


def test_realnvp_density_integrates_to_one_on_a_grid():
    # the conditioners' first layers are scaled up (hinge_gain), so a small perturbation of the
    # other weights already moves the density far from the standard normal
    model = perturbed(realnvp(2, 4, 16), scale=0.02)
    t = torch.linspace(-12, 12, 601)
    grid = torch.stack(torch.meshgrid(t, t, indexing="ij"), dim=-1).reshape(-1, 2)
    with torch.no_grad():
        mass = model.log_prob(grid).exp().sum() * (t[1] - t[0]) ** 2
    assert abs(mass.item() - 1) < 1e-3


def test_realnvp_samples_and_log_prob_agree_with_the_inverse_direction():
    model = perturbed(realnvp(3, 4, 16))
    x, log_q = model.sample_and_log_prob(5)
    torch.testing.assert_close(model.log_prob(x.detach()), log_q.detach(), atol=1e-9, rtol=0)


def test_realnvp_training_lowers_the_negative_log_likelihood():
    model = realnvp(2, 2, 16)
    data = torch.randn(1000, 2) * torch.tensor([3.0, 0.5]) + 1.0
    before = model.forward_kl(data).item()
    fit(model, data, steps=50, batch_size=128, lr=1e-2, progress=False)
    assert model.forward_kl(data).item() < before - 0.5
