import sys

import pytest
import torch


@pytest.fixture(autouse=True)
def float64_by_default():
    """Unit tests run in float64 (tolerances of 1e-9 need it); the default is restored after."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


@pytest.fixture(autouse=True)
def close_figures():
    """Figures a test draws are closed after it, so a worker never piles up open figures."""
    yield
    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")


# one thread: results do not depend on the machine, and parallel test workers do not fight
torch.set_num_threads(1)
