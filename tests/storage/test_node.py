"""One embedded node: content round trips, pins, deadlines, restarts and shutdown."""
import hashlib
import random
import signal
import threading
import time

import pytest

from bmoe_py.storage.cid import cid_of_bytes
from bmoe_py.storage.errors import CidNotFound

pytestmark = pytest.mark.timeout(120)

# Valid CIDs of content no node in these tests has.
MISSING_CID = cid_of_bytes(b"content that nobody added")
ALSO_MISSING_CID = cid_of_bytes(b"other content that nobody added")


def test_large_file_round_trips_byte_for_byte(node_a, tmp_path):
    data = random.Random(1).randbytes(30_000_000)
    path = tmp_path / "weights.bin"
    path.write_bytes(data)
    with node_a.client(timeout=120) as client:
        cid = client.add_file(path)
        assert cid == cid_of_bytes(data)
        assert hashlib.sha256(client.cat(cid)).digest() == hashlib.sha256(data).digest()


def test_added_file_is_pinned_recursively_and_its_chunks_indirectly(node_a):
    data = random.Random(2).randbytes(3 * 262_144)
    with node_a.client() as client:
        cid = client.add_bytes(data)
        pins = client.pin_ls()
    assert pins[cid] == "recursive"
    chunks = [cid_of_bytes(data[i : i + 262_144]) for i in range(0, len(data), 262_144)]
    assert all(pins[chunk] == "indirect" for chunk in chunks)


def test_pin_ls_filters_by_type(node_a):
    with node_a.client() as client:
        cid = client.add_bytes(random.Random(3).randbytes(300_000))
        recursive = client.pin_ls("recursive")
    assert cid in recursive and set(recursive.values()) == {"recursive"}


def test_cat_of_a_cid_nobody_has_fails_within_its_timeout(node_a):
    with node_a.client() as client:
        started = time.monotonic()
        with pytest.raises(CidNotFound) as error:
            client.cat(MISSING_CID, timeout=2)
    assert time.monotonic() - started < 2 + 3
    assert MISSING_CID in str(error.value) and node_a.api in str(error.value)


def test_pin_of_a_cid_nobody_has_fails_within_its_timeout(node_a):
    with node_a.client() as client:
        started = time.monotonic()
        with pytest.raises(CidNotFound):
            client.pin_add(ALSO_MISSING_CID, timeout=2)
        assert time.monotonic() - started < 2 + 3
        assert ALSO_MISSING_CID not in client.pin_ls()


def test_node_keeps_serving_while_a_fetch_is_stuck(node_a):
    stuck = threading.Thread(target=lambda: pytest.raises(CidNotFound, node_a.client().cat, MISSING_CID, timeout=5))
    stuck.start()
    time.sleep(0.5)
    with node_a.client(timeout=5) as client:
        started = time.monotonic()
        data = random.Random(4).randbytes(1_000_000)
        assert client.cat(client.add_bytes(data)) == data
        assert time.monotonic() - started < 2
    stuck.join()


def test_restart_keeps_pins_and_content(spawn):
    node = spawn("restarted")
    data = random.Random(5).randbytes(2_000_000)
    with node.client() as client:
        cid = client.add_bytes(data)
    assert node.stop() == 0
    node = spawn("restarted")
    with node.client() as client:
        assert client.pin_ls()[cid] == "recursive"
        assert client.cat(cid, timeout=5) == data


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_the_daemon_cleanly_even_with_a_fetch_stuck(spawn, sig):
    node = spawn(f"stopped-{sig.name}")
    stuck = threading.Thread(target=lambda: pytest.raises(Exception, node.client(retries=0).cat, MISSING_CID, timeout=30), daemon=True)
    stuck.start()
    time.sleep(0.5)
    started = time.monotonic()
    assert node.stop(sig) == 0
    assert time.monotonic() - started < 5
    assert not (node.repo / "api").exists()
    assert "daemon stopped" in node.log.read_text()
