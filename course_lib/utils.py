"""Small helpers shared by notebooks, training and the benchmark."""
from __future__ import annotations

import random

import numpy as np
import torch

__all__ = ["seed_everything", "notebook_setup"]


def seed_everything(seed: int = 0) -> torch.Generator:
    """Seed Python, NumPy and torch; return a torch generator seeded the same way."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def notebook_setup(seed: int = 0, threads: int = 1) -> torch.Generator:
    """First cell of every lecture: seeds, a fixed thread count (so numbers do not depend
    on the machine), and readable figure defaults."""
    torch.set_num_threads(threads)
    import matplotlib as mpl
    mpl.rcParams.update({"figure.figsize": (6.4, 3.6), "figure.dpi": 100, "axes.grid": True,
                         "grid.alpha": 0.3, "axes.spines.top": False, "axes.spines.right": False,
                         "animation.html": "jshtml", "animation.embed_limit": 20})
    return seed_everything(seed)
