import numpy as np
import pytest
import torch

from shearlab.training.model import DenseNet3d, model_config_for_window


@pytest.fixture(autouse=True)
def _few_threads():
    # The CI machine has 2 cores shared with other suites; torch's spinning worker threads slow
    # everything down when the cores are contended, and these nets are too small to gain from them.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def model() -> DenseNet3d:
    """A small 17 px net with fixed weights, in eval mode (dense and window-by-window agree only there)."""
    torch.manual_seed(0)
    return DenseNet3d.from_config(model_config_for_window(17, init_channels=3, growth_rate=3)).eval()


@pytest.fixture
def volume() -> np.ndarray:
    """A random displacement volume (frames, depth, lateral), um, not zero-mean."""
    return np.random.default_rng(0).normal(2.0, 3.0, (35, 30, 40)).astype(np.float32)

