"""The data plane (docs/protocol.md 8 and 11.2): `GET /v1/health`, `POST /v1/forward` and the training calls
`POST /v1/train/forward`, `/v1/train/backward` and `/v1/train/finish` (bmoe_py/edge/trainer.py) on aiohttp.

A forward call is checked (frame, model, expert and version, task, shape, duplicate) before any work; then the
expert runs (in a worker thread: the event loop keeps serving), the attack (if any) bends the outputs, the token
leaves and their root are computed, the receipt is signed, and everything is stored in SQLite before the response
leaves. Every refusal is a JSON 4xx and nothing of it is signed, stored or committed.
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from aiohttp import web

from ..chain.client import Chain, TransactionReverted
from ..crypto.hashing import keccak256
from ..crypto.leaves import TokenLeaf
from ..crypto.merkle import MerkleTree
from ..crypto.receipts import Receipt
from ..protocol.training_wire import TrainBackwardRequest, TrainFinishRequest, TrainForwardRequest
from ..protocol.wire import (
    CONTENT_TYPE,
    MAX_FRAME_BYTES,
    MAX_TOKENS_PER_REQUEST,
    ForwardRequest,
    ForwardResponse,
    FrameError,
    decode_frame,
)
from .attacks import Attacker
from .executor import LoadedExecutor
from .signer import ReceiptSigner
from .store import DuplicateRequest, EdgeStore

if TYPE_CHECKING:
    from .trainer import Trainer

__all__ = ["ApiError", "EdgeService", "build_app"]

log = logging.getLogger("bmoe.edge")
_TASK_CACHE_SECONDS = 5.0


class ApiError(Exception):
    """A refused request: HTTP status, error code of docs/protocol.md 8, and a message for the caller."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass
class EdgeService:
    """Everything a forward call needs; `executors` is empty (and /v1/health says 503) until the node is ready."""

    chain: Chain
    signer: ReceiptSigner
    model_id: int
    store: EdgeStore
    attacker: Attacker
    executors: dict[int, LoadedExecutor] = field(default_factory=dict)
    trainer: Trainer | None = None  # the training calls (protocol 11.2); set when the node is ready
    ready: bool = False
    _tasks: dict[int, float] = field(default_factory=dict)  # task id -> until when it is known to be open

    @property
    def node(self) -> str:
        return self.chain.address

    def health(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "chain_id": self.chain.chain_id,
            "model_id": self.model_id,
            "experts": [
                {"index": e.index, "version": e.version, "in_dim": e.in_dim, "out_dim": e.out_dim, "exact": e.exact,
                 **(self.trainer.health(e.index) if self.trainer else {})}  # fmt: skip
                for e in self.executors.values()
            ],
            "pending_tokens": self.store.pending_tokens(),
        }

    def check(self, data: bytes) -> tuple[ForwardRequest, LoadedExecutor]:
        """The decoded request and the expert it asks for, or ApiError (everything but the task, which
        needs a chain read: `answer` checks it in a worker thread)."""
        try:
            _, tensors = decode_frame(data)
            tokens = tensors.get("tokens")
            if tokens is not None and tokens.ndim >= 1 and tokens.shape[0] > MAX_TOKENS_PER_REQUEST:
                raise ApiError(413, "too_large", f"{tokens.shape[0]} tokens exceed the limit of {MAX_TOKENS_PER_REQUEST} per request")
            request = ForwardRequest.decode(data)
        except FrameError as exc:
            raise ApiError(400, "bad_request", str(exc)) from None
        executor = self.executors.get(request.expert_index)
        if request.model_id != self.model_id or executor is None:
            raise ApiError(404, "unknown_expert", f"model {request.model_id} expert {request.expert_index} is not hosted here "
                           f"(this node serves model {self.model_id} experts {sorted(self.executors)})")  # fmt: skip
        if request.expert_version not in (0, executor.version):
            raise ApiError(404, "unknown_expert", f"expert {executor.index} version {request.expert_version} is not served here "
                           f"(this node serves version {executor.version})")  # fmt: skip
        if request.tokens.dtype != executor.dtype or request.tokens.shape[1] != executor.in_dim:
            kind = "int8" if executor.exact else "float32"
            raise ApiError(400, "bad_request", f"expert {executor.index} takes {kind} tokens of shape [n, {executor.in_dim}], "
                           f"got {request.tokens.dtype} {list(request.tokens.shape)}")  # fmt: skip
        if self.store.has_request(request.expert_index, request.request_id):
            raise _duplicate(request)
        return request, executor

    def check_task(self, task_id: int) -> None:
        """ApiError 422 unless the task exists, is open and is of this model. An open task is remembered for a few
        seconds: one chain read per task and period, not per call (a task closed meanwhile is refused at commit)."""
        now = time.monotonic()
        if self._tasks.get(task_id, 0.0) > now:
            return
        reason = self._task_problem(task_id)
        if reason:  # not cached: a task created a moment ago must be served at once
            raise ApiError(422, "unknown_task", reason)
        self._tasks[task_id] = now + _TASK_CACHE_SECONDS

    def _task_problem(self, task_id: int) -> str | None:
        try:
            _, closed, model_id, *_ = self.chain.call(self.chain.ledger.functions.task(task_id))
        except TransactionReverted as exc:
            if exc.name == "UnknownTask":
                return f"task {task_id} does not exist"
            raise
        if closed:
            return f"task {task_id} is closed"
        if model_id != self.model_id:
            return f"task {task_id} is of model {model_id}, this node serves model {self.model_id}"
        return None

    def answer(self, request: ForwardRequest, executor: LoadedExecutor) -> ForwardResponse:
        """Runs, signs and stores one request (blocking: call it in a worker thread)."""
        self.check_task(request.task_id)
        honest = executor.run(request.tokens)
        outputs, manipulated = self.attacker(honest)
        node, version = self.node, executor.version
        leaves = token_leaves(node, self.model_id, executor.index, version, request.request_id, request.tokens, outputs)
        receipt = Receipt(
            request.task_id, node, self.model_id, executor.index, version, request.request_id,
            MerkleTree(leaves).root, len(outputs),
        )  # fmt: skip
        signature = self.signer.sign(receipt)
        try:
            self.store.add_request(
                request.request_id, request.task_id, executor.index, version, np.asarray(request.tokens), outputs,
                receipt.root, signature, leaves, int(manipulated.sum()),
            )  # fmt: skip
        except DuplicateRequest:
            raise _duplicate(request) from None
        if manipulated.any():
            log.info("request 0x%s: manipulated %d of %d tokens (attack %s)", request.request_id.hex()[:12],
                     int(manipulated.sum()), len(outputs), self.attacker.config.mode)  # fmt: skip
        return ForwardResponse(receipt, signature, outputs)


def token_leaves(node: str, model_id: int, expert: int, version: int, request_id: bytes, inputs: np.ndarray,
                 outputs: np.ndarray) -> list[bytes]:  # fmt: skip
    """The leaf hashes of one request's tokens, in token order: `TokenLeaf(...).hash()` (protocol 2.1) with the
    fields every token of the request shares encoded once (a third of the cost on a 1,024-token request)."""
    head = TokenLeaf(node, model_id, expert, version, request_id, 0, bytes(32), bytes(32)).encode()[: 5 * 32]
    inputs, outputs = np.ascontiguousarray(inputs), np.ascontiguousarray(outputs)
    if inputs.dtype != np.int8:  # float vectors are hashed as float32 little-endian (protocol 2.1)
        inputs, outputs = inputs.astype("<f4"), outputs.astype("<f4")
    return [
        keccak256(keccak256(head + i.to_bytes(32, "big") + keccak256(x.tobytes()) + keccak256(y.tobytes())))
        for i, (x, y) in enumerate(zip(inputs, outputs))
    ]


def _duplicate(request: ForwardRequest) -> ApiError:
    return ApiError(409, "duplicate_request",
                    f"request 0x{request.request_id.hex()} was already answered for expert {request.expert_index}")  # fmt: skip


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": code, "message": message}, status=status)


def build_app(service: EdgeService) -> web.Application:
    async def health(_: web.Request) -> web.Response:
        if not service.ready:
            return _error(503, "not_ready", "the node is still loading and verifying its experts")
        return web.json_response(await asyncio.to_thread(service.health))

    async def forward(request: web.Request) -> web.Response:
        if not service.ready:
            return _error(503, "not_ready", "the node is still loading and verifying its experts")
        if request.content_length is not None and request.content_length > MAX_FRAME_BYTES:
            return _error(413, "too_large", f"a frame of {request.content_length} bytes exceeds the limit of {MAX_FRAME_BYTES}")
        try:
            data = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return _error(413, "too_large", f"the frame exceeds the limit of {MAX_FRAME_BYTES} bytes")
        try:
            checked = service.check(data)
            response = await asyncio.to_thread(service.answer, *checked)
        except ApiError as exc:
            return _error(exc.status, exc.code, exc.message)
        except Exception as exc:  # e.g. the chain unreachable for the task check: refuse this call, keep serving
            log.exception("forward call failed")
            return _error(500, "internal", f"{type(exc).__name__}: {exc}")
        return web.Response(body=response.encode(), content_type=CONTENT_TYPE)

    async def read_frame(request: web.Request) -> bytes:
        if not service.ready or service.trainer is None:
            raise ApiError(503, "not_ready", "the node is still loading and verifying its experts")
        if request.content_length is not None and request.content_length > MAX_FRAME_BYTES:
            raise ApiError(413, "too_large", f"a frame of {request.content_length} bytes exceeds the limit of {MAX_FRAME_BYTES}")
        try:
            return await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise ApiError(413, "too_large", f"the frame exceeds the limit of {MAX_FRAME_BYTES} bytes") from None

    def training_call(decode: Any, run_name: str, *, json_body: bool = False) -> Any:
        """A route of the training API: decode (400 on a malformed body), run in a worker thread, encode."""

        async def handle(request: web.Request) -> web.Response:
            try:
                if json_body:
                    if not service.ready or service.trainer is None:
                        raise ApiError(503, "not_ready", "the node is still loading and verifying its experts")
                    try:
                        body = await request.json()
                    except ValueError as exc:
                        raise ApiError(400, "bad_request", f"the body is not JSON: {exc}") from None
                else:
                    body = await read_frame(request)
                try:
                    message = decode(body)
                except FrameError as exc:
                    raise ApiError(400, "bad_request", str(exc)) from None
                assert service.trainer is not None
                answer = await asyncio.to_thread(getattr(service.trainer, run_name), message)
            except ApiError as exc:
                return _error(exc.status, exc.code, exc.message)
            except Exception as exc:  # e.g. IPFS or the chain away during a finish: refuse this call, keep serving
                log.exception("%s call failed", run_name)
                return _error(500, "internal", f"{type(exc).__name__}: {exc}")
            if json_body:
                return web.json_response(answer.to_json())
            return web.Response(body=answer.encode(), content_type=CONTENT_TYPE)

        return handle

    # The body limit is the frame limit (+1 so that exactly MAX_FRAME_BYTES reaches the frame decoder's check).
    app = web.Application(client_max_size=MAX_FRAME_BYTES + 1)
    app.router.add_get("/v1/health", health)
    app.router.add_post("/v1/forward", forward)
    app.router.add_post("/v1/train/forward", training_call(TrainForwardRequest.decode, "forward"))
    app.router.add_post("/v1/train/backward", training_call(TrainBackwardRequest.decode, "backward"))
    app.router.add_post("/v1/train/finish", training_call(TrainFinishRequest.from_json, "finish", json_body=True))
    return app
