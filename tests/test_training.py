"""The training loop fits what it should and is reproducible."""
import torch

from course_lib import datasets
from course_lib.flows import Affine
from course_lib.model import NormalizingFlow
from course_lib.training import fit


def test_forward_kl_training_recovers_the_mean_and_scale_of_gaussian_data():
    data = 3.0 + 2.0 * torch.randn(4000, 1, generator=torch.Generator().manual_seed(0))
    model = NormalizingFlow(1, [Affine(1)])
    history = fit(model, data, steps=600, batch_size=256, lr=0.05, progress=False)
    assert history[-1] < history[0]
    assert abs(model.flows[0].shift.item() - data.mean().item()) < 0.1
    assert abs(model.flows[0].scale.abs().item() - data.std().item()) < 0.1


def test_reverse_kl_training_matches_an_unnormalised_gaussian_target():
    target = lambda x: -0.5 * ((x[:, 0] + 1.0) / 0.5) ** 2 + 4.0  # N(-1, 0.5^2) up to a constant
    model = NormalizingFlow(1, [Affine(1)])
    fit(model, objective="reverse_kl", log_target=target, steps=500, batch_size=256, lr=0.05,
        progress=False)
    assert abs(model.flows[0].shift.item() + 1.0) < 0.05
    assert abs(model.flows[0].scale.abs().item() - 0.5) < 0.05


def test_training_with_the_same_seed_gives_the_same_history():
    runs = []
    for _ in range(2):
        model = NormalizingFlow(2, [Affine(2)])
        runs.append(fit(model, datasets.get("eight_gaussians"), steps=20, lr=0.01, progress=False))
    assert runs[0] == runs[1]
