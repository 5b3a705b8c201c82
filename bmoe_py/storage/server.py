"""The subset of Kubo's RPC API (`/api/v0/...`) that B-MoE uses, served from the embedded engine with
Kubo's request and response formats, so that clients cannot tell it from a real Kubo daemon:

    POST /api/v0/add            multipart file(s) -> {"Name", "Hash", "Size"} per file (NDJSON)
    POST /api/v0/cat?arg=CID    the file's bytes, streamed (chunked)
    POST /api/v0/pin/add?arg=   {"Pins": [cid]}
    POST /api/v0/pin/ls         {"Keys": {cid: {"Type": "recursive" | "indirect"}}}
    POST /api/v0/id             {"ID", "Addresses", "AgentVersion", "ProtocolVersion"}
    POST /api/v0/version        {"Version", "Commit", "Repo", "System", "Golang"}
    POST /api/v0/swarm/connect?arg=MULTIADDR  {"Strings": ["connect <peer> success"]}
    POST /api/v0/swarm/peers    {"Peers": [{"Addr", "Peer"}]}

Errors are Kubo's: HTTP 500 (400 for a bad request) with {"Message", "Code", "Type": "error"}.
Kubo's global `timeout` option (a Go duration, `?timeout=30s`) bounds fetches, pins and connects;
without it the server's own limit applies, because the engine would otherwise wait forever.
"""
from __future__ import annotations

import json
import logging
import os
import platform
import re
import threading
import urllib.parse
import uuid
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, BinaryIO, Callable

from bmoe_py.storage.cid import CidBuilder, parse_cid
from bmoe_py.storage.errors import InvalidCid, IpfsError, IpfsTimeout
from bmoe_py.storage.kubo import GO_VERSION, KUBO_VERSION, KuboNode

log = logging.getLogger(__name__)

AGENT_VERSION = f"kubo/{KUBO_VERSION}/bmoe"
_COPY_CHUNK = 1 << 20
_GO_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_GO_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


class ApiError(Exception):
    """An error answered in Kubo's format. Code 1 (client error) is sent as HTTP 400, others as 500."""

    def __init__(self, message: str, code: int = 0) -> None:
        super().__init__(message)
        self.code = code

    @property
    def status(self) -> int:
        return HTTPStatus.BAD_REQUEST if self.code == 1 else HTTPStatus.INTERNAL_SERVER_ERROR


def parse_go_duration(text: str) -> float:
    """Seconds in a Go duration string such as `30s`, `1m30s` or `250ms`."""
    text = text.strip()
    pos, total = 0, 0.0
    for match in _GO_DURATION.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _GO_UNITS[match.group(2)]
        pos = match.end()
    if pos != len(text) or not text:
        raise ApiError(f'invalid duration "{text}"', code=1)
    return total


class ApiServer(ThreadingHTTPServer):
    """Serves the Kubo RPC API of one embedded node."""

    daemon_threads = True  # a request stuck on the engine must not keep the process alive
    request_queue_size = 64

    def __init__(self, node: KuboNode, host: str = "127.0.0.1", port: int = 5001, fetch_timeout: float = 300.0) -> None:
        self.node = node
        self.fetch_timeout = fetch_timeout
        super().__init__((host, port), _Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def multiaddr(self) -> str:
        host, port = self.server_address[:2]
        return f"/ip4/{host}/tcp/{port}"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive and chunked responses, like Kubo
    server: ApiServer

    # -------------------------------------------------------- dispatch

    def do_POST(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        route = _ROUTES.get(url.path.rstrip("/"))
        if route is None:
            self._drain_body()
            return self._send_text(HTTPStatus.NOT_FOUND, "404 page not found\n")
        self.query = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        try:
            route(self)
        except ApiError as exc:
            self._send_error(exc)
        except IpfsTimeout as exc:
            self._send_error(ApiError(f"{exc}: context deadline exceeded"))
        except IpfsError as exc:
            self._send_error(ApiError(str(exc)))
        except (BrokenPipeError, ConnectionResetError):
            log.info("client of %s went away", url.path)
        except Exception as exc:  # an unexpected failure must still answer in Kubo's format
            log.exception("%s failed", url.path)
            self._send_error(ApiError(f"internal error: {exc}"))

    def do_GET(self) -> None:
        # Kubo only accepts POST on the RPC API (a browser must not trigger commands with a link).
        self._drain_body()
        if self.path.startswith("/api/v0/"):
            return self._send_text(HTTPStatus.METHOD_NOT_ALLOWED, "405 - Method Not Allowed\n")
        self._send_text(HTTPStatus.NOT_FOUND, "404 page not found\n")

    do_PUT = do_DELETE = do_GET

    def version_string(self) -> str:
        return f"kubo/{KUBO_VERSION}"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    # -------------------------------------------------------- options

    def _args(self, name: str) -> list[str]:
        args = self.query.get("arg", [])
        if not args:
            raise ApiError(f'argument "{name}" is required', code=1)
        return args

    def _option(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else default

    def _flag(self, name: str, default: bool) -> bool:
        value = self._option(name)
        if value is None:
            return default
        if value.lower() in ("", "true", "1"):
            return True
        if value.lower() in ("false", "0"):
            return False
        raise ApiError(f'invalid value "{value}" for option "{name}": expected a boolean', code=1)

    def _int_option(self, name: str) -> int | None:
        value = self._option(name)
        try:
            return None if value is None else int(value)
        except ValueError:
            raise ApiError(f'invalid value "{value}" for option "{name}": expected an integer', code=1) from None

    def _timeout(self) -> float:
        value = self._option("timeout")
        if value is None:
            return self.server.fetch_timeout
        return min(parse_go_duration(value), self.server.fetch_timeout)

    def _cid_arg(self, text: str) -> str:
        path = text.removeprefix("/ipfs/")
        if "/" in path:
            raise ApiError(f'invalid path "{text}": paths inside a DAG are not supported by the embedded node')
        try:
            parse_cid(path)
        except InvalidCid as exc:
            raise ApiError(f'invalid path "{text}": {exc}') from None
        return path

    # -------------------------------------------------------- responses

    def _send_json(self, value: Any) -> None:
        body = (json.dumps(value) + "\n").encode()
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _send_text(self, status: int, text: str) -> None:
        body = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _send_error(self, exc: ApiError) -> None:
        log.info("%s -> %s", self.path, exc)
        body = (json.dumps({"Message": str(exc), "Code": exc.code, "Type": "error"}) + "\n").encode()
        self.send_response(exc.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        # The request body may be unread: do not parse what is left of it as the next request.
        self.send_header("Connection", "close")
        self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    def _start_stream(self, content_type: str, stream_header: str, length: int | None = None) -> None:
        """Headers of Kubo's streamed responses: chunked, with an `X-Stream-Error` trailer announced."""
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", content_type)
        self.send_header(stream_header, "1")
        if length is not None:
            self.send_header("X-Content-Length", str(length))
        self.send_header("Trailer", "X-Stream-Error")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def _write_chunk(self, data: bytes) -> None:
        if data:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def _end_stream(self, error: str | None = None) -> None:
        trailer = f"X-Stream-Error: {error}\r\n" if error else ""
        self.wfile.write(f"0\r\n{trailer}\r\n".encode())

    # -------------------------------------------------------- request bodies

    def _body(self) -> BinaryIO:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return _ChunkedReader(self.rfile)
        return _LimitedReader(self.rfile, int(self.headers.get("Content-Length") or 0))

    def _drain_body(self) -> None:
        body = self._body()
        while body.read(_COPY_CHUNK):
            pass

    # -------------------------------------------------------- commands

    def add(self) -> None:
        if self._option("cid-version", "0") != "0" or self._flag("raw-leaves", False):
            raise ApiError("the embedded node imports with Kubo's CIDv0 defaults only (no cid-version, no raw-leaves)", code=1)
        if self._option("chunker", "size-262144") != "size-262144" or self._option("hash", "sha2-256") != "sha2-256":
            raise ApiError("the embedded node supports only the default chunker and hash", code=1)
        if self._flag("trickle", False) or self._flag("wrap-with-directory", False) or not self._flag("pin", True):
            raise ApiError("the embedded node supports neither trickle, wrap-with-directory nor pin=false", code=1)
        only_hash = self._flag("only-hash", False)
        content_type = self.headers.get("Content-Type", "")
        boundary = _header_param(content_type, "boundary")
        if not content_type.startswith("multipart/") or not boundary:
            self._drain_body()
            raise ApiError("file argument 'path' is required", code=1)
        parts = _MultipartReader(self._body(), boundary.encode())
        results = []
        while (headers := parts.next_part()) is not None:
            if headers.get("content-type", "").startswith("application/x-directory"):
                raise ApiError("directories are not supported by the embedded node", code=1)
            name = urllib.parse.unquote(_header_param(headers.get("content-disposition", ""), "filename") or "")
            results.append(self._import(parts, name, only_hash))
        if not results:
            raise ApiError("file argument 'path' is required", code=1)
        self._start_stream("application/json", "X-Chunked-Output")
        for result in results:
            self._write_chunk((json.dumps(result) + "\n").encode())
        self._end_stream()

    def _import(self, part: "_MultipartReader", name: str, only_hash: bool) -> dict[str, str]:
        """Store one uploaded file in a temporary file while computing its CID, then add it."""
        node = self.server.node
        builder = CidBuilder()
        tmp = node.repo / "bmoe-tmp" / f"upload.{uuid.uuid4().hex}"
        try:
            with open(tmp, "wb") as out:
                while data := part.read(_COPY_CHUNK):
                    builder.update(data)
                    out.write(data)
            dag = builder.finish()
            cid = dag.cid if only_hash else node.add_file(tmp)
        finally:
            tmp.unlink(missing_ok=True)
        if cid != dag.cid:  # would break every later verification of this content
            log.error("engine CID %s differs from the computed %s for %r", cid, dag.cid, name)
        log.info("added %s (%d bytes) as %s", name or "<unnamed>", dag.file_size, cid)
        return {"Name": name or cid, "Hash": cid, "Size": str(dag.dag_size)}

    def cat(self) -> None:
        self._drain_body()
        cid = self._cid_arg(self._args("ipfs-path")[0])
        offset = self._int_option("offset") or 0
        length = self._int_option("length")
        timeout = self._timeout()
        with self.server.node.fetch(cid, timeout, use=lambda path: open(path, "rb")) as content:
            size = os.fstat(content.fileno()).st_size
            offset = min(max(offset, 0), size)
            remaining = size - offset if length is None else max(0, min(length, size - offset))
            content.seek(offset)
            self._start_stream("text/plain", "X-Stream-Output", remaining)
            while remaining and (data := content.read(min(_COPY_CHUNK, remaining))):
                self._write_chunk(data)
                remaining -= len(data)
            self._end_stream()
        log.info("served %s (%d bytes)", cid, size)

    def pin_add(self) -> None:
        self._drain_body()
        if not self._flag("recursive", True):
            raise ApiError("the embedded node pins recursively only", code=1)
        cids = [self._cid_arg(arg) for arg in self._args("ipfs-path")]
        timeout = self._timeout()
        for cid in cids:
            self.server.node.pin(cid, timeout)
            log.info("pinned %s", cid)
        self._send_json({"Pins": cids})

    def pin_ls(self) -> None:
        self._drain_body()
        kind = self._option("type", "all")
        if kind not in ("all", "recursive", "indirect", "direct"):
            raise ApiError(f"invalid type '{kind}', must be one of {{direct, indirect, recursive, all}}", code=1)
        pins = {cid: t for cid, t in self.server.node.pins().items() if kind in ("all", t)}
        if args := self.query.get("arg"):
            wanted = [self._cid_arg(arg) for arg in args]
            missing = [arg for arg, cid in zip(args, wanted) if cid not in pins]
            if missing:
                raise ApiError(f"path '{missing[0]}' is not pinned")
            pins = {cid: pins[cid] for cid in wanted}
        if self._flag("stream", False):
            self._start_stream("application/json", "X-Chunked-Output")
            for cid, t in pins.items():
                self._write_chunk((json.dumps({"Cid": cid, "Type": t}) + "\n").encode())
            return self._end_stream()
        self._send_json({"Keys": {cid: {"Type": t} for cid, t in pins.items()}})

    def id(self) -> None:
        self._drain_body()
        node = self.server.node
        if self.query.get("arg") and self.query["arg"][0] != node.peer_id:
            raise ApiError("the embedded node can only describe itself")
        self._send_json(
            {
                "ID": node.peer_id,
                "Addresses": [f"{addr}/p2p/{node.peer_id}" for addr in node.addresses()],
                "AgentVersion": AGENT_VERSION,
                "ProtocolVersion": "ipfs/0.1.0",
            }
        )

    def version(self) -> None:
        self._drain_body()
        system = f"{_GO_ARCH.get(platform.machine(), platform.machine())}/{platform.system().lower()}"
        self._send_json(
            {"Version": KUBO_VERSION, "Commit": "", "Repo": self.server.node.repo_version(), "System": system, "Golang": GO_VERSION}
        )

    def swarm_connect(self) -> None:
        self._drain_body()
        addrs = self._args("address")
        timeout = self._timeout()
        strings = []
        for addr in addrs:
            self.server.node.connect(addr, timeout)
            peer = re.split(r"/(?:p2p|ipfs)/", addr)[-1]
            log.info("connected to %s", addr)
            strings.append(f"connect {peer} success")
        self._send_json({"Strings": strings})

    def swarm_peers(self) -> None:
        self._drain_body()
        peers = []
        for entry in self.server.node.peers():  # "<multiaddr>/<peer id>"
            addr, _, peer = entry.rpartition("/")
            peers.append({"Addr": addr, "Peer": peer})
        self._send_json({"Peers": peers})


_GO_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}

_ROUTES: dict[str, Callable[[_Handler], None]] = {
    "/api/v0/add": _Handler.add,
    "/api/v0/cat": _Handler.cat,
    "/api/v0/pin/add": _Handler.pin_add,
    "/api/v0/pin/ls": _Handler.pin_ls,
    "/api/v0/id": _Handler.id,
    "/api/v0/version": _Handler.version,
    "/api/v0/swarm/connect": _Handler.swarm_connect,
    "/api/v0/swarm/peers": _Handler.swarm_peers,
}


def _header_param(header: str, name: str) -> str | None:
    """A parameter of a header value, e.g. the boundary of `multipart/form-data; boundary=xyz`."""
    match = re.search(rf'(?:^|;)\s*{name}=(?:"((?:[^"\\]|\\.)*)"|([^;\s]*))', header, re.I)
    if not match:
        return None
    return match.group(1).replace('\\"', '"') if match.group(1) is not None else match.group(2)


# ---------------------------------------------------------------- streaming request bodies


class _LimitedReader:
    def __init__(self, raw: BinaryIO, length: int) -> None:
        self._raw, self._left = raw, length

    def read(self, size: int = -1) -> bytes:
        size = self._left if size < 0 else min(size, self._left)
        data = self._raw.read(size) if size else b""
        self._left -= len(data)
        if size and not data:
            raise ApiError("request body ended early", code=1)
        return data


class _ChunkedReader:
    """Decodes `Transfer-Encoding: chunked` (what clients send when they stream an upload)."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw, self._left, self._done = raw, 0, False

    def read(self, size: int = -1) -> bytes:
        if self._done:
            return b""
        if self._left == 0:
            line = self._raw.readline(1024)
            self._left = int(line.split(b";")[0].strip() or b"0", 16)
            if self._left == 0:
                while self._raw.readline(1024) not in (b"\r\n", b"\n", b""):  # trailers
                    pass
                self._done = True
                return b""
        data = self._raw.read(self._left if size < 0 else min(size, self._left))
        if not data:
            raise ApiError("request body ended early", code=1)
        self._left -= len(data)
        if self._left == 0:
            self._raw.readline(16)  # the CRLF after the chunk
        return data


class _MultipartReader:
    """Reads multipart/form-data part by part without holding a part in memory: `next_part()` gives
    the part's headers (lower-case names), `read()` its bytes until it ends."""

    def __init__(self, body: BinaryIO, boundary: bytes) -> None:
        self._body = body
        self._delimiter = b"\r\n--" + boundary
        self._buf = b"\r\n"  # so the first delimiter, at the very start of the body, looks like the rest
        self._eof = False
        self._finished = False

    def _fill(self) -> bool:
        if self._eof:
            return False
        data = self._body.read(_COPY_CHUNK)
        if not data:
            self._eof = True
            return False
        self._buf += data
        return True

    def read(self, size: int = _COPY_CHUNK) -> bytes:
        """Bytes of the current part; b"" once its closing delimiter is reached."""
        while True:
            at = self._buf.find(self._delimiter)
            if at >= 0:
                data, self._buf = self._buf[: min(at, size)], self._buf[min(at, size) :]
                return data
            # Keep a tail that could be the start of a delimiter split across reads.
            safe = len(self._buf) - len(self._delimiter) + 1
            if safe > 0 and (safe >= size or self._eof):
                data, self._buf = self._buf[: min(safe, size)], self._buf[min(safe, size) :]
                return data
            if not self._fill():
                raise ApiError("multipart body ended without its closing boundary", code=1)

    def next_part(self) -> dict[str, str] | None:
        if self._finished:
            return None
        while self.read():  # skip what is left of the preamble or of the previous part
            pass
        while len(self._buf) < len(self._delimiter) + 2 and self._fill():
            pass
        self._buf = self._buf[len(self._delimiter) :]
        if self._buf.startswith(b"--"):
            self._finished = True
            return None
        while b"\r\n\r\n" not in self._buf:
            if len(self._buf) > 64 * 1024 or not self._fill():
                raise ApiError("malformed multipart headers", code=1)
        head, self._buf = self._buf.split(b"\r\n\r\n", 1)
        headers = {}
        for line in head.decode("utf-8", "replace").split("\r\n"):
            if ":" in line:
                key, value = line.split(":", 1)
                headers[key.strip().lower()] = value.strip()
        return headers


# ---------------------------------------------------------------- running it


def write_api_file(server: ApiServer) -> Path:
    """Kubo writes its API address to `$IPFS_PATH/api`; tools (and our tests) find the node that way."""
    path = server.node.repo / "api"
    # Readers poll for this file: write it whole, then rename, so nobody ever reads it half written.
    tmp = path.with_name("api.tmp")
    tmp.write_text(server.multiaddr)
    os.replace(tmp, path)
    return path


def serve_in_thread(server: ApiServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, name="ipfs-api", daemon=True)
    thread.start()
    return thread


