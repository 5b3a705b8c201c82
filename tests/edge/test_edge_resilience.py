"""A chain or IPFS outage in the middle of a node's duties is logged and retried: the node keeps running and
commits once both are back. The outage is real: the node reaches anvil and the IPFS node through an HTTP relay
that the test switches off and on."""
from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from edge_client import create_task, forward, tokens
from edge_nodes import start_edge

pytestmark = pytest.mark.timeout(90)


class Relay(ThreadingHTTPServer):
    """Forwards POSTs to `upstream` while `up`; answers 503 while down (a node or a gateway going away)."""

    daemon_threads = True

    def __init__(self, upstream: str) -> None:
        self.upstream, self.up = upstream.rstrip("/"), True
        super().__init__(("127.0.0.1", 0), _RelayHandler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _RelayHandler(BaseHTTPRequestHandler):
    server: Relay

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if not self.server.up:
            self.send_response(503)
            self.send_header("Content-Length", "10")
            self.end_headers()
            self.wfile.write(b"relay down")
            return
        headers = {"Content-Type": self.headers["Content-Type"]} if self.headers.get("Content-Type") else {}
        upstream = requests.post(self.server.upstream + self.path, data=body, headers=headers, timeout=60)
        self.send_response(upstream.status_code)
        self.send_header("Content-Type", upstream.headers.get("Content-Type", "application/octet-stream"))
        self.send_header("Content-Length", str(len(upstream.content)))
        self.end_headers()
        self.wfile.write(upstream.content)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def relays(network) -> Iterator[tuple[Relay, Relay]]:
    pair = (Relay(network.rpc_url), Relay(network.ipfs.api))
    for relay in pair:
        threading.Thread(target=relay.serve_forever, daemon=True).start()
    yield pair
    for relay in pair:
        relay.shutdown()
        relay.server_close()


def test_chain_and_ipfs_outage_is_retried_and_the_window_committed_afterwards(network, model_id, node_key, tmp_path, relays):
    rpc, ipfs = relays
    chain = network.chain()
    task = create_task(chain, model_id)
    edge = start_edge(network.env(), model_id, [0], node_key, tmp_path, window_seconds=1, rpc=rpc.url, ipfs=ipfs.url)
    try:
        ipfs.up = False  # the window closes, its bundle cannot be pinned
        forward(edge.url, chain, task, model_id, 0, tokens(3))
        assert "IpfsApiError" in edge.wait_for_log("windows duty failed")
        rpc.up = False  # and now the chain is gone too
        edge.wait_for_log("disputes duty failed")
        assert edge.alive()
        assert requests.get(edge.url + "/v1/health", timeout=10).status_code == 200  # still serving
        rpc.up = ipfs.up = True
        edge.wait_for_log("committed window 1")
    finally:
        assert edge.stop() == 0
    logs = chain.ledger.events.CommitmentPosted.get_logs(from_block=0, argument_filters={"node": edge.address})
    assert [entry["args"]["commitment"]["tokenCount"] for entry in logs] == [3]
