import sys

import pytest
import torch

# the modules that run on the device given by ``--device``: the flow contract and the model tests
DEVICE_MODULES = {"test_flow_contract", "test_model", "test_distribution"}


def pytest_addoption(parser):
    parser.addoption("--device", default="cpu",
                     help="torch device for the flow contract and the model tests "
                          "(cpu by default; e.g. cuda or cuda:1 where a GPU exists)")


def pytest_configure(config):
    try:
        device = torch.device(config.getoption("--device"))
    except (ValueError, RuntimeError) as exc:
        raise pytest.UsageError(f"--device: {exc}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise pytest.UsageError("--device cuda: this torch sees no CUDA device")
    config.course_device = device


@pytest.fixture
def device(request) -> torch.device:
    """The device of ``--device`` in the device modules, the CPU elsewhere."""
    if request.module.__name__ in DEVICE_MODULES:
        return request.config.course_device
    return torch.device("cpu")


@pytest.fixture(autouse=True)
def default_device(request):
    """In the device modules, tensors and modules are created on the ``--device`` device."""
    target = request.config.course_device
    if request.module.__name__ not in DEVICE_MODULES or target.type == "cpu":
        yield
        return
    torch.set_default_device(target)
    try:
        yield
    finally:
        torch.set_default_device("cpu")


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
