import pytest
import torch

from tests.envs import register_test_envs

register_test_envs()

# One intra-op thread, as the CLI uses by default: learning runs then follow the same
# trajectories on any machine, whatever its number of cores.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _torch_threads():
    """Restore one thread after each test so results do not depend on test order."""
    yield
    torch.set_num_threads(1)


def pytest_collection_modifyitems(config, items):
    """Ray's tests run last: a Ray instance takes seconds to go away after shutdown, and other
    tests (timing-sensitive A3C resumes) should not share the machine with its remains."""
    items.sort(key=lambda item: item.nodeid.startswith("tests/test_ray.py"))
