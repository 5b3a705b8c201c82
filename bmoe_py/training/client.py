"""The coordinator's HTTP client of one trainer (an edge node's training API, docs/protocol.md 11.2).

    trainer = TrainerClient("http://127.0.0.1:8601")
    y = trainer.forward(task, model, expert, version, round_, step, x).outputs
    back = trainer.backward(task, model, expert, version, round_, step, lr, grad_y)   # .grad_inputs, .stats
    done = trainer.finish(task, model, expert, version, round_)                        # .next_version, .root, ...

Answers are checked against the question (ids, shapes, node) but their numbers are trusted here: the trainer
records them and validators replay the round from its bundle (protocol 11.4).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import requests

from ..protocol.training_wire import (
    StepStats,
    TrainBackwardRequest,
    TrainBackwardResponse,
    TrainFinishRequest,
    TrainFinishResponse,
    TrainForwardRequest,
    TrainForwardResponse,
)
from ..protocol.wire import CONTENT_TYPE, FrameError

__all__ = [
    "StepStats",
    "TrainerClient",
    "TrainerError",
    "TrainBackwardResponse",
    "TrainFinishResponse",
    "TrainForwardResponse",
]

_FINISH_TIMEOUT = 120.0  # pins two files and waits for two transactions


class TrainerError(Exception):
    """A trainer refused a call (`status`/`code` from its JSON error, protocol 11.2), was unreachable (`status`
    None), or answered something that does not answer the call (`code` "invalid_response")."""

    def __init__(self, url: str, message: str, status: int | None = None, code: str | None = None) -> None:
        self.url, self.status, self.code, self.message = url, status, code, message
        super().__init__(f"{url}: {f'HTTP {status} {code}: ' if status else ''}{message}")


class TrainerClient:
    """One trainer at `url`; `node` (optional) is the address it must answer as."""

    def __init__(self, url: str, node: str | None = None, session: requests.Session | None = None,
                 timeout: float = 30.0) -> None:  # fmt: skip
        self.url = url.rstrip("/")
        self.node = node
        self.timeout = timeout
        self._session = session or requests.Session()

    def __repr__(self) -> str:
        return f"TrainerClient({self.url!r})"

    def health(self) -> dict[str, Any]:
        """GET /v1/health (per expert: `trainer`, `train_round`, `train_step`, `last_finished_round`)."""
        response = self._request("GET", "/v1/health", 10.0)
        return response.json()

    def forward(self, task_id: int, model_id: int, expert_index: int, expert_version: int, round_: int, step: int,
                tokens: np.ndarray) -> TrainForwardResponse:  # fmt: skip
        request = TrainForwardRequest(task_id, model_id, expert_index, expert_version, round_, step,
                                      np.ascontiguousarray(tokens, dtype=np.float32))  # fmt: skip
        response = self._post_frame("/v1/train/forward", request.encode())
        answer = self._decode(TrainForwardResponse.decode, response.content)
        self._check_ids(answer, request)
        if answer.outputs.shape[0] != request.tokens.shape[0]:
            raise self._invalid(f"{answer.outputs.shape[0]} outputs for {request.tokens.shape[0]} tokens")
        return answer

    def backward(self, task_id: int, model_id: int, expert_index: int, expert_version: int, round_: int, step: int,
                 lr: float, grad_outputs: np.ndarray) -> TrainBackwardResponse:  # fmt: skip
        # lr travels as the float32 the node will use (the step's leaf hashes f32le(lr))
        request = TrainBackwardRequest(task_id, model_id, expert_index, expert_version, round_, step,
                                       float(np.float32(lr)), np.ascontiguousarray(grad_outputs, dtype=np.float32))  # fmt: skip
        response = self._post_frame("/v1/train/backward", request.encode())
        answer = self._decode(TrainBackwardResponse.decode, response.content)
        self._check_ids(answer, request)
        if answer.grad_inputs.shape[0] != request.grad_outputs.shape[0]:
            raise self._invalid(f"{answer.grad_inputs.shape[0]} input gradients for {request.grad_outputs.shape[0]} tokens")
        return answer

    def finish(self, task_id: int, model_id: int, expert_index: int, expert_version: int, round_: int,
               timeout: float = _FINISH_TIMEOUT) -> TrainFinishResponse:  # fmt: skip
        """Ends the round: the node pins and registers its checkpoint and commits the round. Safe to call again
        (after a timeout, say): a finished round answers the same result."""
        request = TrainFinishRequest(task_id, model_id, expert_index, expert_version, round_)
        response = self._request("POST", "/v1/train/finish", timeout, json=request.to_json())
        try:
            answer = TrainFinishResponse.from_json(response.json())
        except (ValueError, FrameError) as exc:
            raise self._invalid(f"malformed finish answer: {exc}") from None
        if answer.round != round_:
            raise self._invalid(f"finish answered round {answer.round}, not {round_}")
        return answer

    # ------------------------------------------------------------------ plumbing

    def _post_frame(self, path: str, body: bytes) -> requests.Response:
        return self._request("POST", path, self.timeout, data=body, headers={"Content-Type": CONTENT_TYPE})

    def _request(self, method: str, path: str, timeout: float, **kwargs: Any) -> requests.Response:
        try:
            response = self._session.request(method, self.url + path, timeout=timeout, **kwargs)
        except requests.Timeout:
            raise TrainerError(self.url, f"no answer within {timeout:g}s") from None
        except requests.RequestException as exc:
            raise TrainerError(self.url, f"unreachable ({type(exc).__name__})") from None
        if response.status_code != 200:
            try:
                body = response.json()
                code, message = str(body.get("error")), str(body.get("message"))
            except ValueError:
                code, message = "http_error", response.text[:200]
            raise TrainerError(self.url, message, response.status_code, code)
        return response

    def _decode(self, decode: Any, content: bytes) -> Any:
        try:
            return decode(content)
        except FrameError as exc:
            raise self._invalid(f"malformed response frame: {exc}") from None

    def _check_ids(self, answer: Any, request: Any) -> None:
        fields = ("task_id", "model_id", "expert_index", "expert_version", "round", "step")
        got, asked = (tuple(getattr(m, f) for f in fields) for m in (answer, request))
        if got != asked:
            raise self._invalid(f"answered (task, model, expert, version, round, step) {got}, not {asked}")
        if self.node and answer.node.lower() != self.node.lower():
            raise self._invalid(f"answered as node {answer.node}, not {self.node}")

    def _invalid(self, message: str) -> TrainerError:
        return TrainerError(self.url, message, None, "invalid_response")
