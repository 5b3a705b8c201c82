"""Client of the Kubo RPC API: talks to `bmoe ipfs daemon` and to a real Kubo daemon alike (only the
address changes).

Every request has a deadline. Requests are retried only when that cannot do harm: when the connection
was refused or never opened (the request was not sent: the node may still be starting), and, for
reads, when the connection broke. Errors are `IpfsError`s that name the CID and the node.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import re
import time
import urllib.parse
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Callable

import requests
import urllib3

from bmoe_py.storage.cid import Cid, CidBuilder, file_dag, parse_cid
from bmoe_py.storage.errors import (
    CidNotFound,
    ContentMismatch,
    InvalidCid,
    IpfsApiError,
    IpfsError,
    IpfsTimeout,
    IpfsUnavailable,
)

DEFAULT_API = "http://127.0.0.1:5001"
_READ_SLACK = 10.0  # seconds the HTTP read may take beyond the deadline given to the node


def default_api_url() -> str:
    return os.environ.get("BMOE_IPFS_API") or DEFAULT_API


def normalize_api_url(address: str) -> str:
    """`http://host:port`, `host:port` or a Kubo API multiaddr (`/ip4/127.0.0.1/tcp/5001`, as in
    `$IPFS_PATH/api`) -> `http://host:port`."""
    address = address.strip()
    match = re.fullmatch(r"/(?:ip4|ip6|dns|dns4|dns6)/([^/]+)/tcp/(\d+)(/https?)?/?", address)
    if match:
        host = f"[{match.group(1)}]" if ":" in match.group(1) else match.group(1)
        return f"{'https' if match.group(3) == '/https' else 'http'}://{host}:{match.group(2)}"
    if "://" not in address:
        address = "http://" + address
    url = urllib.parse.urlsplit(address)
    return f"{url.scheme}://{url.netloc}"


@dataclass(frozen=True)
class NodeInfo:
    """`/api/v0/id`: the peer ID, the multiaddrs (with `/p2p/<id>`) and the agent version."""

    id: str
    addresses: list[str]
    agent_version: str


class IpfsClient:
    """The Kubo RPC API at `api_url`. `timeout` bounds every request that has no deadline of its own."""

    def __init__(self, api_url: str | None = None, timeout: float = 60.0, retries: int = 3) -> None:
        self.api = normalize_api_url(api_url or default_api_url())
        self.timeout = timeout
        self.retries = retries
        self._session = requests.Session()

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> "IpfsClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"IpfsClient({self.api!r})"

    # -------------------------------------------------------- content

    def add_bytes(self, data: bytes, name: str = "data", *, verify: bool = True) -> str:
        """Add and pin `data`; return its CID. With `verify`, the CID the node answers must be the one
        the bytes have under Kubo's default import settings (a node cannot record other content)."""
        return self._add(lambda: io.BytesIO(data), len(data), name, verify)

    def add_file(self, path: str | os.PathLike[str], *, verify: bool = True) -> str:
        """Add and pin a file, streamed from disk; return its CID (see `add_bytes` for `verify`)."""
        path = Path(path)
        return self._add(lambda: open(path, "rb"), path.stat().st_size, path.name, verify)

    def _add(self, open_source: Callable[[], BinaryIO], size: int, name: str, verify: bool) -> str:
        builders: list[CidBuilder] = []

        def body() -> _MultipartFile:  # a fresh body per attempt: a retry must resend from the start
            builders.append(CidBuilder())
            return _MultipartFile(name, open_source(), size, on_read=builders[-1].update)

        what = f"add {name}"
        response = self._post("add", {"pin": "true"}, what, body=body, read_timeout=self.timeout)
        lines = [json.loads(line) for line in response.text.splitlines() if line.strip()]
        if not lines or "Hash" not in lines[-1]:
            raise IpfsApiError(f"{what}: unexpected answer from {self.api}: {response.text[:200]!r}", node=self.api)
        cid = lines[-1]["Hash"]
        if verify:
            expected = builders[-1].finish().cid
            if parse_cid(cid).multihash != parse_cid(expected).multihash:
                raise ContentMismatch(
                    f"{what}: the node at {self.api} answered CID {cid}, but the bytes sent have CID {expected}",
                    cid=cid,
                    node=self.api,
                )
        return cid

    def cat(self, cid: str, timeout: float | None = None) -> bytes:
        """The content of `cid`, fetched by the node from wherever it is. Raises `CidNotFound` when
        no peer delivers it within `timeout` seconds (default: the client's timeout)."""
        self._check_cid(cid)
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout + _READ_SLACK
        what = f"cat {cid}"
        params = {"arg": cid, "timeout": f"{timeout:g}s"}
        response = self._post("cat", params, what, cid=cid, read_timeout=timeout + _READ_SLACK, stream=True, idempotent=True)
        chunks = []
        try:
            for chunk in response.iter_content(1 << 20):
                chunks.append(chunk)
                if time.monotonic() > deadline:
                    raise IpfsTimeout(f"{what}: {self.api} did not finish sending it within {timeout:g}s", cid=cid, node=self.api)
        except requests.RequestException as exc:
            if "timed out" in str(exc):
                raise IpfsTimeout(f"{what}: {self.api} stopped sending for {timeout + _READ_SLACK:g}s", cid=cid, node=self.api) from exc
            raise IpfsUnavailable(f"{what}: the connection to {self.api} broke: {exc}", cid=cid, node=self.api) from exc
        finally:
            response.close()
        data = b"".join(chunks)
        announced = response.headers.get("X-Content-Length")
        if announced is not None and int(announced) != len(data):
            # Kubo reports errors after the headers in a trailer that HTTP clients drop; a short body is how it shows.
            raise IpfsApiError(f"{what}: {self.api} sent {len(data)} of {announced} bytes", cid=cid, node=self.api)
        return data

    def fetch_verified(self, cid: str, expected_sha256: str | None = None, timeout: float | None = None) -> bytes:
        """`cat` and check the bytes really are the content of `cid` (recomputing its CID locally
        with Kubo's default import settings) and, if given, that their sha256 is `expected_sha256`
        (hex). Raises `ContentMismatch` otherwise: never use content a node only claims is right."""
        parsed = self._check_cid(cid)
        if not parsed.is_default_file_root:
            raise IpfsError(
                f"cannot verify {cid} from {self.api}: only files imported with Kubo's CIDv0 defaults can be checked",
                cid=cid,
                node=self.api,
            )
        data = self.cat(cid, timeout)
        actual = file_dag(data).cid
        if parse_cid(actual).multihash != parsed.multihash:
            raise ContentMismatch(
                f"{cid} from {self.api} is corrupt: the {len(data)} bytes received have CID {actual}",
                cid=cid,
                node=self.api,
            )
        if expected_sha256 is not None:
            digest = hashlib.sha256(data).hexdigest()
            if digest != expected_sha256.lower().removeprefix("0x"):
                raise ContentMismatch(
                    f"{cid} from {self.api} has sha256 {digest}, expected {expected_sha256}", cid=cid, node=self.api
                )
        return data

    # -------------------------------------------------------- pins

    def pin_add(self, cid: str, timeout: float | None = None) -> None:
        """Pin `cid` recursively (the node fetches what it lacks, within `timeout`)."""
        self._check_cid(cid)
        timeout = self.timeout if timeout is None else timeout
        params = {"arg": cid, "timeout": f"{timeout:g}s"}
        # Pinning twice is harmless, so a broken connection may be retried.
        self._post("pin/add", params, f"pin {cid}", cid=cid, read_timeout=timeout + _READ_SLACK, idempotent=True)

    def pin_ls(self, type: str = "all") -> dict[str, str]:
        """Pinned CIDs with their pin type (`recursive`, `indirect` or `direct`)."""
        response = self._post("pin/ls", {"type": type}, "pin ls", idempotent=True)
        return {cid: entry["Type"] for cid, entry in (response.json().get("Keys") or {}).items()}

    # -------------------------------------------------------- node and swarm

    def id(self) -> NodeInfo:
        info = self._post("id", {}, "id", idempotent=True).json()
        return NodeInfo(info["ID"], list(info.get("Addresses") or []), info.get("AgentVersion", ""))

    def version(self) -> dict[str, str]:
        return self._post("version", {}, "version", idempotent=True).json()

    def swarm_connect(self, multiaddr: str, timeout: float | None = None) -> None:
        """Connect the node to a peer, `/ip4/1.2.3.4/tcp/4001/p2p/<peer id>`."""
        timeout = self.timeout if timeout is None else timeout
        params = {"arg": multiaddr, "timeout": f"{timeout:g}s"}
        self._post("swarm/connect", params, f"connect {multiaddr}", read_timeout=timeout + _READ_SLACK, idempotent=True)

    def swarm_peers(self) -> list[str]:
        """Connected peers as `<multiaddr>/p2p/<peer id>`."""
        peers = self._post("swarm/peers", {}, "swarm peers", idempotent=True).json().get("Peers") or []
        return [f"{p['Addr']}/p2p/{p['Peer']}" for p in peers]

    # -------------------------------------------------------- HTTP

    def _check_cid(self, cid: str) -> Cid:
        try:
            return parse_cid(cid)
        except InvalidCid as exc:
            raise InvalidCid(f"{exc} (not sent to {self.api})", cid=cid, node=self.api) from None

    def _post(
        self,
        command: str,
        params: dict[str, str],
        what: str,
        *,
        cid: str | None = None,
        body: Callable[[], Any] | None = None,
        read_timeout: float | None = None,
        stream: bool = False,
        idempotent: bool = False,
    ) -> requests.Response:
        url = f"{self.api}/api/v0/{command}"
        timeout = (min(self.timeout, 10.0), read_timeout or self.timeout)
        for attempt in range(self.retries + 1):
            data = body() if body else None
            headers = {"Content-Type": data.content_type} if data is not None else {}
            try:
                response = self._session.post(url, params=params, data=data, headers=headers, timeout=timeout, stream=stream)
            except requests.ConnectionError as exc:
                if attempt < self.retries and (_never_sent(exc) or idempotent):
                    time.sleep(0.25 * 2**attempt)
                    continue
                raise IpfsUnavailable(f"{what}: cannot reach the IPFS node at {self.api}: {_reason(exc)}", cid=cid, node=self.api) from exc
            except requests.Timeout as exc:
                raise IpfsTimeout(f"{what}: no answer from {self.api} within {timeout[1]:g}s", cid=cid, node=self.api) from exc
            finally:
                if data is not None:
                    data.close()
            if response.status_code != 200:
                self._raise_for(response, what, cid)
            return response
        raise AssertionError("unreachable")

    def _raise_for(self, response: requests.Response, what: str, cid: str | None) -> None:
        try:
            message = response.json()["Message"]
        except (ValueError, KeyError, TypeError):
            message = f"HTTP {response.status_code}: {response.text[:200].strip()}"
        finally:
            response.close()
        text = f"{what}: {self.api} answered: {message}"
        if "deadline exceeded" in message:
            raise (CidNotFound if cid else IpfsTimeout)(text, cid=cid, node=self.api)
        raise IpfsApiError(text, cid=cid, node=self.api)


def _never_sent(exc: requests.ConnectionError) -> bool:
    """Whether the request cannot have reached the node (refused, or no connection in time)."""
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(exc, requests.ConnectTimeout) or isinstance(reason, urllib3.exceptions.NewConnectionError)


def _reason(exc: requests.ConnectionError) -> str:
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    text = str(reason or exc)
    return "connection refused" if "refused" in text.lower() else text


class _MultipartFile:
    """A multipart/form-data body with one file, read lazily (requests streams it, with a
    Content-Length) so that big files never sit in memory. `on_read` sees every byte of the file."""

    def __init__(self, name: str, source: BinaryIO, size: int, on_read: Callable[[bytes], None]) -> None:
        boundary = uuid.uuid4().hex
        self.content_type = f"multipart/form-data; boundary={boundary}"
        # Kubo's clients percent-encode file names in the part headers; Kubo decodes them.
        head = (
            f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="file"; filename="{urllib.parse.quote(name, safe="")}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        tail = f"\r\n--{boundary}--\r\n".encode()
        self._parts: list[tuple[BinaryIO, Callable[[bytes], None] | None]] = [
            (io.BytesIO(head), None),
            (source, on_read),
            (io.BytesIO(tail), None),
        ]
        self._length = len(head) + size + len(tail)

    def __len__(self) -> int:
        return self._length

    def read(self, size: int = -1) -> bytes:
        while self._parts:
            part, observer = self._parts[0]
            data = part.read(size if size > 0 else -1)
            if data:
                if observer:
                    observer(data)
                return data
            part.close()
            self._parts.pop(0)
        return b""

    def close(self) -> None:
        for part, _ in self._parts:
            part.close()
        self._parts.clear()
