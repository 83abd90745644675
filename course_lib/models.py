"""Ready-to-train models: each builder returns a ``NormalizingFlow`` (or a CNF) whose
defaults are the ones the lectures and the benchmark use."""
from __future__ import annotations

import torch

from .model import NormalizingFlow
from . import flows as F
