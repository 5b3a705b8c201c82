"""What the edge tests do as a publisher would: create tasks, send forward frames, check receipts."""
from __future__ import annotations

import os

import numpy as np
import requests

from bmoe_py.chain.client import Chain
from bmoe_py.crypto.leaves import request_id
from bmoe_py.protocol.wire import CONTENT_TYPE, ForwardRequest, ForwardResponse

GWEI = 10**9


def create_task(chain: Chain, model_id: int, price: int = GWEI, escrow: int = 10**16) -> int:
    receipt = chain.send(chain.ledger.functions.createTask(model_id, price), value=escrow)
    return int(chain.events(receipt, "ResultLedger", "TaskCreated")[0]["taskId"])


def fresh_request_id(chain: Chain, task_id: int) -> bytes:
    return request_id(task_id, chain.address, int.from_bytes(os.urandom(16), "big"))


def tokens(n: int, dim: int = 8, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(-128, 128, (n, dim), dtype=np.int8)


def post_frame(url: str, body: bytes, timeout: float = 20.0) -> requests.Response:
    return requests.post(url + "/v1/forward", data=body, headers={"Content-Type": CONTENT_TYPE}, timeout=timeout)


def forward(url: str, chain: Chain, task_id: int, model_id: int, expert: int, x: np.ndarray, version: int = 0,
            rid: bytes | None = None) -> ForwardResponse:  # fmt: skip
    request = ForwardRequest(task_id, model_id, expert, version, rid or fresh_request_id(chain, task_id), x)
    response = post_frame(url, request.encode())
    assert response.status_code == 200, response.text
    return ForwardResponse.decode(response.content)
