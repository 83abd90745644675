"""course_lib: the normalizing flows of the course, in small readable PyTorch modules."""
from . import datasets, flows, jacobian
from .flows import Compose, Flow, Inverse, initialize
from .model import NormalizingFlow
from .validation import is_validating, set_validation, validation

__version__ = "0.1.0"
__all__ = ["flows", "datasets", "jacobian", "Flow", "Compose", "Inverse", "initialize",
           "NormalizingFlow", "set_validation", "is_validating", "validation"]
