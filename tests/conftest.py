import os

import pytest
import torch

from tests.envs import register_test_envs

register_test_envs()
os.environ.setdefault("ACRL_TEST", "1")


@pytest.fixture(autouse=True)
def _torch_threads():
    """Keep each test's torch thread count fixed so results do not depend on test order."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)
