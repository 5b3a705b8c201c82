"""tools/local_chain.py: `make deploy`'s long-lived anvil, started once and found again (port 8617 here)."""
import pytest

from tools import local_chain

PORT = 8617


@pytest.fixture
def port():
    if local_chain.rpc_chain_id(PORT) is not None:
        pytest.fail(f"port {PORT} is already in use")
    yield PORT
    local_chain.stop(PORT)


def test_ensure_starts_anvil_that_answers_json_rpc(port):
    assert local_chain.main(["--ensure", "--port", str(port)]) == 0
    assert local_chain.rpc_chain_id(port) == 31337


def test_ensure_leaves_a_running_chain_alone(port, capsys):
    local_chain.ensure(port)
    pid = local_chain._pid_file(port).read_text()
    assert local_chain.ensure(port) == 0
    assert "already answers" in capsys.readouterr().out
    assert local_chain._pid_file(port).read_text() == pid


def test_stop_ends_the_chain_it_started(port):
    local_chain.ensure(port)
    assert local_chain.main(["--stop", "--port", str(port)]) == 0
    assert local_chain.rpc_chain_id(port) is None
    assert not local_chain._pid_file(port).exists()


def test_status_fails_when_nothing_answers(port):
    assert local_chain.main(["--status", "--port", str(port)]) == 1
