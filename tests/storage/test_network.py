"""Two embedded nodes in two processes, connected over loopback."""
import random
import time

import pytest

from bmoe_py.storage.cid import cid_of_bytes
from bmoe_py.storage.errors import IpfsApiError

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def connected(node_a, node_b):
    with node_b.client() as client:
        client.swarm_connect(node_a.swarm_address(), timeout=10)
    return node_a, node_b


def test_swarm_connect_makes_the_nodes_peers(connected):
    node_a, node_b = connected
    a_id = node_a.client().id().id
    assert any(peer.endswith(f"/p2p/{a_id}") for peer in node_b.client().swarm_peers())


def test_node_fetches_and_verifies_what_its_peer_pinned(connected):
    node_a, node_b = connected
    data = random.Random(11).randbytes(30_000_000)
    cid = node_a.client(timeout=120).add_bytes(data)
    with node_b.client() as client:
        assert cid not in client.pin_ls()
        started = time.monotonic()
        assert client.fetch_verified(cid, timeout=60) == data
        print(f"30 MB fetched over loopback in {time.monotonic() - started:.2f}s")


def test_node_pins_what_its_peer_added(connected):
    node_a, node_b = connected
    data = random.Random(12).randbytes(1_000_000)
    cid = node_a.client().add_bytes(data)
    with node_b.client() as client:
        client.pin_add(cid, timeout=30)
        assert client.pin_ls()[cid] == "recursive"


def test_connect_to_a_dead_address_fails_and_names_the_peer(node_b):
    peer = cid_of_bytes(b"no such peer")  # a well-formed peer ID (a sha2-256 multihash) nobody has
    with pytest.raises(IpfsApiError) as error:
        node_b.client().swarm_connect(f"/ip4/127.0.0.1/tcp/1/p2p/{peer}", timeout=10)
    assert peer in str(error.value) and node_b.api in str(error.value)
