"""A module-scoped autouse fixture that runs torch on one CPU thread; import it into a test module to use it.

The test models are tiny: one thread is fastest for them, and on a busy 2-core machine a second OpenMP thread
spins while it waits, which made quantising a test model 50 times slower. The previous setting is restored after
the module, so other modules are not affected.
"""
import pytest
import torch


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
