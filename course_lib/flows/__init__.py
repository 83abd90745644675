"""Every flow the course teaches. A flow maps latent to data, ``x = f(z)``; both
``forward`` and ``inverse`` return ``(output, log|det J|)``."""
from .base import Compose, Flow, FlowInputError, Inverse
from .elementwise import Affine, Exp, Sigmoid

__all__ = ["Flow", "FlowInputError", "Compose", "Inverse", "Affine", "Exp", "Sigmoid"]
