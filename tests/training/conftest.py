import pytest
import torch


@pytest.fixture(autouse=True)
def _few_threads():
    # The CI machine has 2 cores shared with other suites; torch's spinning worker threads slow
    # everything down when the cores are contended, and these nets are too small to gain from them.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
