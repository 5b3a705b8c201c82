"""The publisher's HTTP client of an edge node (docs/protocol.md 8), trusting nothing the node says.

Every answer is checked before it is used: the receipt must be the one asked for (task, model, expert version,
request id, token count), its signature must recover to the host the registry lists, and its Merkle root must be
the root of the leaves rebuilt here from the inputs we sent and the outputs we got. An answer that passes is
therefore evidence: the publisher can post it with `postReceipt` and challenge any token of it on chain.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import requests

from ..crypto.leaves import TokenLeaf, token_tree
from ..crypto.receipts import recover_signer
from ..protocol.wire import CONTENT_TYPE, ForwardRequest, ForwardResponse, FrameError

__all__ = ["HostError", "HostClient", "InvalidResponse", "Answer", "verify_response"]


class HostError(Exception):
    """A host did not answer usefully: unreachable, timed out, or an HTTP error. The call may go to another host."""

    def __init__(self, url: str, reason: str, status: int | None = None) -> None:
        self.url = url
        self.reason = reason
        self.status = status
        super().__init__(f"{url}: {reason}")


class InvalidResponse(HostError):
    """A host answered with something that is not a valid signed answer to the request (never used, never paid)."""


@dataclass(frozen=True)
class Answer:
    """A verified answer of one host to one request."""

    host: str  # checksummed address, equal to the receipt's signer
    request: ForwardRequest
    response: ForwardResponse
    latency: float  # seconds, request sent to response verified

    @property
    def outputs(self) -> np.ndarray:
        return self.response.outputs


def verify_response(
    request: ForwardRequest, response: ForwardResponse, host: str, chain_id: int, ledger: str, out_dim: int | None = None
) -> None:
    """Raises `InvalidResponse` unless `response` is `host`'s correctly signed answer to `request`."""
    receipt, outputs, n = response.receipt, response.outputs, request.tokens.shape[0]

    def refuse(reason: str) -> InvalidResponse:
        return InvalidResponse(host, reason)

    asked = (request.task_id, request.model_id, request.expert_index, bytes(request.request_id))
    got = (receipt.task_id, receipt.model_id, receipt.expert_index, bytes(receipt.request_id))
    if asked != got:
        raise refuse(f"the receipt answers (task, model, expert, request) {_short(got)}, not {_short(asked)}")
    if request.expert_version and receipt.expert_version != request.expert_version:
        raise refuse(f"the receipt is for expert version {receipt.expert_version}, not {request.expert_version}")
    if receipt.node.lower() != host.lower():
        raise refuse(f"the receipt names node {receipt.node}, the registry lists {host}")
    if outputs.dtype != request.tokens.dtype or outputs.shape[0] != n or (out_dim and outputs.shape[1] != out_dim):
        raise refuse(f"outputs {outputs.dtype}{list(outputs.shape)} do not answer {n} tokens of dtype {request.tokens.dtype}")
    if receipt.token_count != n:
        raise refuse(f"the receipt covers {receipt.token_count} tokens, the request had {n}")
    leaves = [
        TokenLeaf.from_vectors(host, receipt.model_id, receipt.expert_index, receipt.expert_version,
                               receipt.request_id, i, request.tokens[i], outputs[i])
        for i in range(n)
    ]  # fmt: skip
    root = token_tree(leaves).root
    if root != bytes(receipt.root):
        raise refuse(f"the receipt's root 0x{bytes(receipt.root).hex()} is not the root 0x{root.hex()} of the outputs sent")
    try:
        signer = recover_signer(receipt, response.signature, chain_id, ledger)
    except Exception as exc:  # eth_account raises several types for malformed signatures
        raise refuse(f"unreadable signature ({exc})") from None
    if signer.lower() != host.lower():
        raise refuse(f"the receipt is signed by {signer}, not by the host {host}")


class HostClient:
    """One edge node at `url`, registered as `address`. Thread-safe: calls may run concurrently."""

    def __init__(self, address: str, url: str, session: requests.Session, timeout: float = 10.0) -> None:
        self.address = address
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._session = session

    def __repr__(self) -> str:
        return f"HostClient({self.address}, {self.url!r})"

    def health(self) -> dict[str, Any]:
        """GET /v1/health; HostError unless the node is ready and is the registered address."""
        try:
            response = self._session.get(f"{self.url}/v1/health", timeout=min(self.timeout, 5.0))
        except requests.RequestException as exc:
            raise HostError(self.url, f"health check failed: {type(exc).__name__}") from None
        if response.status_code != 200:
            raise HostError(self.url, f"not ready (HTTP {response.status_code})", response.status_code)
        try:
            info = response.json()
        except ValueError:
            raise HostError(self.url, "health answer is not JSON") from None
        if str(info.get("node", "")).lower() != self.address.lower():
            raise HostError(self.url, f"the node there is {info.get('node')}, the registry lists {self.address}")
        return info

    def forward(
        self, request: ForwardRequest, chain_id: int, ledger: str, out_dim: int | None = None
    ) -> Answer:
        """POST /v1/forward and verify the answer; HostError/InvalidResponse otherwise."""
        started = time.perf_counter()
        try:
            response = self._session.post(
                f"{self.url}/v1/forward",
                data=request.encode(),
                headers={"Content-Type": CONTENT_TYPE},
                timeout=self.timeout,
            )
        except requests.Timeout:
            raise HostError(self.url, f"no answer within {self.timeout:g}s") from None
        except requests.RequestException as exc:
            raise HostError(self.url, f"unreachable ({type(exc).__name__})") from None
        if response.status_code != 200:
            raise HostError(self.url, f"HTTP {response.status_code}: {_error_text(response)}", response.status_code)
        try:
            decoded = ForwardResponse.decode(response.content)
        except FrameError as exc:
            raise InvalidResponse(self.url, f"malformed response frame: {exc}") from None
        verify_response(request, decoded, self.address, chain_id, ledger, out_dim)
        return Answer(self.address, request, decoded, time.perf_counter() - started)


def _error_text(response: requests.Response) -> str:
    try:
        body = response.json()
        return f"{body.get('error')}: {body.get('message')}"
    except ValueError:
        return response.text[:200]


def _short(fields: tuple) -> str:
    task, model, expert, request_id = fields
    return f"({task}, {model}, {expert}, 0x{request_id.hex()[:8]}..)"
