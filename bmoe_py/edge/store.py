"""The node's SQLite database: every answered request (inputs, outputs, receipt), the windows it committed, the
disputes it answered, and its training rounds and their steps (docs/protocol.md 11). A request is written (and the write is durable against a crash of the process) before its
response is sent, so every response a publisher holds is one the node can commit and defend.

One connection, shared by the HTTP handlers and the background duties behind a lock; WAL mode so that readers do
not block the writer. A window goes `closed` (its requests chosen) -> `committed` (bundle pinned, commit mined) ->
`finalized` / `invalidated`; `failed` when the ledger refuses it for good (task closed). A finished training round
becomes a `committed` window without requests, so that the payments duty finalizes and claims it like any other.
"""
from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..crypto.commitments import Commitment

__all__ = ["DuplicateRequest", "EdgeStore", "StoredRequest", "StoredStep", "TrainRound", "Window"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    id INTEGER PRIMARY KEY,
    request_id BLOB NOT NULL,
    task_id TEXT NOT NULL,
    expert_index INTEGER NOT NULL,
    expert_version INTEGER NOT NULL,
    token_count INTEGER NOT NULL,
    dtype TEXT NOT NULL,
    in_dim INTEGER NOT NULL,
    out_dim INTEGER NOT NULL,
    inputs BLOB NOT NULL,
    outputs BLOB NOT NULL,
    root BLOB NOT NULL,
    signature BLOB NOT NULL,
    leaves BLOB NOT NULL,
    manipulated INTEGER NOT NULL,
    received_at REAL NOT NULL,
    window_id INTEGER,
    UNIQUE (expert_index, request_id)
);
CREATE INDEX IF NOT EXISTS requests_pending ON requests (window_id);
CREATE TABLE IF NOT EXISTS windows (
    id INTEGER PRIMARY KEY,
    task_id TEXT NOT NULL,
    expert_index INTEGER NOT NULL,
    expert_version INTEGER NOT NULL,
    token_count INTEGER NOT NULL,
    closed_at REAL NOT NULL,
    from_block INTEGER NOT NULL,
    status TEXT NOT NULL,
    bundle_cid TEXT,
    root BLOB,
    posted_at INTEGER,
    commit_tx TEXT,
    payment TEXT,
    note TEXT
);
CREATE TABLE IF NOT EXISTS disputes (
    dispute_id INTEGER PRIMARY KEY,
    commitment_id BLOB NOT NULL,
    leaf BLOB NOT NULL,
    status TEXT NOT NULL,
    tx TEXT,
    note TEXT
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS train_rounds (
    expert_index INTEGER NOT NULL,
    round INTEGER NOT NULL,
    task_id TEXT NOT NULL,
    base_version INTEGER NOT NULL,
    status TEXT NOT NULL,
    from_block INTEGER NOT NULL,
    weights_cid TEXT,
    weights_root BLOB,
    next_version INTEGER,
    bundle_cid TEXT,
    root BLOB,
    window_id INTEGER,
    note TEXT,
    PRIMARY KEY (expert_index, round)
);
CREATE TABLE IF NOT EXISTS train_steps (
    expert_index INTEGER NOT NULL,
    round INTEGER NOT NULL,
    step INTEGER NOT NULL,
    token_count INTEGER NOT NULL,
    in_dim INTEGER NOT NULL,
    out_dim INTEGER NOT NULL,
    inputs BLOB NOT NULL,
    outputs BLOB NOT NULL,
    manipulated INTEGER NOT NULL,
    lr REAL,
    grad_outputs BLOB,
    grad_inputs BLOB,
    PRIMARY KEY (expert_index, round, step)
);
"""


class DuplicateRequest(Exception):
    """The request id was already answered for this expert."""


@dataclass(frozen=True)
class StoredRequest:
    id: int
    request_id: bytes
    task_id: int
    expert_index: int
    expert_version: int
    inputs: np.ndarray
    outputs: np.ndarray
    root: bytes
    signature: bytes


@dataclass(frozen=True)
class Window:
    id: int
    task_id: int
    expert_index: int
    expert_version: int
    token_count: int
    from_block: int
    status: str
    bundle_cid: str | None
    root: bytes | None
    posted_at: int | None

    def commitment(self, node: str) -> Commitment:
        assert self.root is not None and self.posted_at is not None, "only a committed window has a commitment"
        return Commitment(
            self.task_id, node, self.expert_index, self.expert_version, self.token_count, self.posted_at, self.root
        )


@dataclass(frozen=True)
class TrainRound:
    """A training round of one expert (docs/protocol.md 11): `training` (steps arrive) -> `finishing` (no more
    steps; checkpoint pinned, version published, bundle pinned, commit mined, each recorded as it happens) ->
    `done`; `abandoned` when a later round started before it was finished."""

    expert_index: int
    round: int
    task_id: int
    base_version: int
    status: str
    from_block: int
    weights_cid: str | None
    weights_root: bytes | None
    next_version: int | None
    bundle_cid: str | None
    root: bytes | None
    window_id: int | None


_ROUND_COLUMNS = ("expert_index, round, task_id, base_version, status, from_block, weights_cid, weights_root,"
                  " next_version, bundle_cid, root, window_id")  # fmt: skip


class EdgeStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode survives a crash of this process (kill -9); only an OS crash can lose the last writes.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _query(self, sql: str, params: Sequence = ()) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    # ------------------------------------------------------------------ requests

    def has_request(self, expert_index: int, request_id: bytes) -> bool:
        return bool(self._query("SELECT 1 FROM requests WHERE expert_index=? AND request_id=?", (expert_index, request_id)))

    def add_request(
        self, request_id: bytes, task_id: int, expert_index: int, expert_version: int,
        inputs: np.ndarray, outputs: np.ndarray, root: bytes, signature: bytes, leaves: Sequence[bytes],
        manipulated: int,
    ) -> int:  # fmt: skip
        """Stores an answered request with its token leaves (hashes, in token order); DuplicateRequest if already there."""
        try:
            with self._tx() as db:
                cursor = db.execute(
                    "INSERT INTO requests (request_id, task_id, expert_index, expert_version, token_count, dtype, in_dim,"
                    " out_dim, inputs, outputs, root, signature, leaves, manipulated, received_at)"
                    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        request_id, str(task_id), expert_index, expert_version, len(inputs), inputs.dtype.str,
                        inputs.shape[1], outputs.shape[1], inputs.tobytes(), outputs.tobytes(), root, signature,
                        b"".join(leaves), manipulated, time.time(),
                    ),
                )  # fmt: skip
                return int(cursor.lastrowid)
        except sqlite3.IntegrityError:
            raise DuplicateRequest(f"request 0x{request_id.hex()} was already answered for expert {expert_index}") from None

    def request(self, row: int) -> StoredRequest:
        (r,) = self._query(
            "SELECT id, request_id, task_id, expert_index, expert_version, token_count, dtype, in_dim, out_dim, inputs,"
            " outputs, root, signature FROM requests WHERE id=?",
            (row,),
        )
        return _stored(r)

    def window_requests(self, window_id: int) -> list[StoredRequest]:
        rows = self._query(
            "SELECT id, request_id, task_id, expert_index, expert_version, token_count, dtype, in_dim, out_dim, inputs,"
            " outputs, root, signature FROM requests WHERE window_id=? ORDER BY id",
            (window_id,),
        )
        return [_stored(r) for r in rows]

    def find_leaf(self, leaf: bytes) -> tuple[StoredRequest, int] | None:
        """The stored request and token index of a token leaf, if this node ever answered it.

        The leaves of a request are kept as one blob (32 bytes a token) rather than one indexed row each: that keeps
        the insert on every forward call cheap, and a lookup happens only when the node is challenged (a scan in C).
        """
        rows = self._query("SELECT id, leaves FROM requests WHERE instr(leaves, ?) > 0", (leaf,))
        for row, blob in rows:
            start = blob.find(leaf)
            while start >= 0 and start % 32:  # a match straddling two leaves is not this leaf
                start = blob.find(leaf, start + 1)
            if start >= 0:
                return self.request(row), start // 32
        return None

    def pending_tokens(self) -> int:
        """Tokens answered but not yet in a committed window."""
        (a,) = self._query("SELECT COALESCE(SUM(token_count), 0) FROM requests WHERE window_id IS NULL")[0]
        (b,) = self._query("SELECT COALESCE(SUM(token_count), 0) FROM windows WHERE status='closed'")[0]
        return int(a) + int(b)

    # ------------------------------------------------------------------ windows

    def unwindowed(self) -> list[tuple[int, int, int, int, int, float]]:
        """(row, task, expert, version, tokens, received_at) of every request not yet in a window, oldest first."""
        rows = self._query(
            "SELECT id, task_id, expert_index, expert_version, token_count, received_at FROM requests"
            " WHERE window_id IS NULL ORDER BY id"
        )
        return [(r[0], int(r[1]), r[2], r[3], r[4], r[5]) for r in rows]

    def close_window(self, task_id: int, expert_index: int, expert_version: int, rows: Sequence[int], from_block: int) -> int:
        """Puts requests into a new window (status `closed`); from then on its contents never change."""
        with self._tx() as db:
            (tokens,) = db.execute(
                f"SELECT SUM(token_count) FROM requests WHERE id IN ({','.join('?' * len(rows))})", tuple(rows)
            ).fetchone()
            cursor = db.execute(
                "INSERT INTO windows (task_id, expert_index, expert_version, token_count, closed_at, from_block, status)"
                " VALUES (?,?,?,?,?,?, 'closed')",
                (str(task_id), expert_index, expert_version, int(tokens), time.time(), from_block),
            )
            window = int(cursor.lastrowid)
            db.executemany("UPDATE requests SET window_id=? WHERE id=?", [(window, r) for r in rows])
            return window

    def windows(self, *statuses: str) -> list[Window]:
        rows = self._query(
            "SELECT id, task_id, expert_index, expert_version, token_count, from_block, status, bundle_cid, root,"
            f" posted_at FROM windows WHERE status IN ({','.join('?' * len(statuses))}) ORDER BY id",
            statuses,
        )
        return [Window(r[0], int(r[1]), r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9]) for r in rows]

    def set_bundle(self, window_id: int, cid: str, root: bytes) -> None:
        with self._tx() as db:
            db.execute("UPDATE windows SET bundle_cid=?, root=? WHERE id=?", (cid, root, window_id))

    def set_committed(self, window_id: int, posted_at: int, tx: str) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE windows SET status='committed', posted_at=?, commit_tx=? WHERE id=?", (posted_at, tx, window_id)
            )

    def set_window_status(self, window_id: int, status: str, note: str | None = None, payment: int | None = None) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE windows SET status=?, note=COALESCE(?, note), payment=COALESCE(?, payment) WHERE id=?",
                (status, note, None if payment is None else str(payment), window_id),
            )

    # ------------------------------------------------------------------ training rounds and steps

    def start_round(self, expert_index: int, round_: int, task_id: int, base_version: int, from_block: int) -> None:
        """Opens a round (status `training`); any unfinished earlier round of the expert is `abandoned`."""
        with self._tx() as db:
            db.execute("UPDATE train_rounds SET status='abandoned' WHERE expert_index=? AND status='training'", (expert_index,))
            db.execute(
                "INSERT INTO train_rounds (expert_index, round, task_id, base_version, status, from_block)"
                " VALUES (?,?,?,?, 'training', ?)",
                (expert_index, round_, str(task_id), base_version, from_block),
            )

    def train_round(self, expert_index: int, round_: int) -> TrainRound | None:
        rows = self._query(f"SELECT {_ROUND_COLUMNS} FROM train_rounds WHERE expert_index=? AND round=?", (expert_index, round_))
        return _round(rows[0]) if rows else None

    def latest_round(self, expert_index: int) -> TrainRound | None:
        """The expert's round with the highest number (whatever its status)."""
        rows = self._query(
            f"SELECT {_ROUND_COLUMNS} FROM train_rounds WHERE expert_index=? ORDER BY round DESC LIMIT 1", (expert_index,)
        )
        return _round(rows[0]) if rows else None

    def train_rounds(self, *statuses: str) -> list[TrainRound]:
        rows = self._query(
            f"SELECT {_ROUND_COLUMNS} FROM train_rounds WHERE status IN ({','.join('?' * len(statuses))})"
            " ORDER BY expert_index, round",
            statuses,
        )
        return [_round(r) for r in rows]

    def update_round(self, expert_index: int, round_: int, **fields: object) -> None:
        """Records the progress of a round (status, weights_cid, weights_root, next_version, bundle_cid, root)."""
        allowed = {"status", "weights_cid", "weights_root", "next_version", "bundle_cid", "root", "note"}
        assert fields and set(fields) <= allowed, f"unknown round fields {set(fields) - allowed}"
        names = sorted(fields)
        with self._tx() as db:
            db.execute(
                f"UPDATE train_rounds SET {', '.join(f'{n}=?' for n in names)} WHERE expert_index=? AND round=?",
                (*(fields[n] for n in names), expert_index, round_),
            )

    def commit_round(self, expert_index: int, round_: int, token_count: int, posted_at: int, tx: str) -> int:
        """Marks a round's commitment mined: one `committed` window (no requests) that the payments duty finalizes
        and claims like any other, and the round `done`. Returns the window id."""
        with self._tx() as db:
            (task_id, version, from_block, cid, root) = db.execute(
                "SELECT task_id, base_version, from_block, bundle_cid, root FROM train_rounds WHERE expert_index=? AND round=?",
                (expert_index, round_),
            ).fetchone()
            cursor = db.execute(
                "INSERT INTO windows (task_id, expert_index, expert_version, token_count, closed_at, from_block, status,"
                " bundle_cid, root, posted_at, commit_tx, note) VALUES (?,?,?,?,?,?, 'committed', ?,?,?,?,?)",
                (task_id, expert_index, version, token_count, time.time(), from_block, cid, root, posted_at, tx,
                 f"training round {round_}"),
            )  # fmt: skip
            window = int(cursor.lastrowid)
            db.execute(
                "UPDATE train_rounds SET status='done', window_id=? WHERE expert_index=? AND round=?",
                (window, expert_index, round_),
            )
            return window

    def add_train_forward(self, expert_index: int, round_: int, step: int, inputs: np.ndarray, outputs: np.ndarray,
                          manipulated: int) -> None:  # fmt: skip
        """Records the forward half of a step: the inputs and the outputs as returned."""
        with self._tx() as db:
            db.execute(
                "INSERT INTO train_steps (expert_index, round, step, token_count, in_dim, out_dim, inputs, outputs,"
                " manipulated) VALUES (?,?,?,?,?,?,?,?,?)",
                (expert_index, round_, step, len(inputs), inputs.shape[1], outputs.shape[1], _f32(inputs), _f32(outputs),
                 manipulated),
            )  # fmt: skip

    def add_train_backward(self, expert_index: int, round_: int, step: int, lr: float, grad_outputs: np.ndarray,
                           grad_inputs: np.ndarray) -> None:  # fmt: skip
        """Completes a step with what the coordinator sent and what the node returned."""
        with self._tx() as db:
            db.execute(
                "UPDATE train_steps SET lr=?, grad_outputs=?, grad_inputs=? WHERE expert_index=? AND round=? AND step=?",
                (lr, _f32(grad_outputs), _f32(grad_inputs), expert_index, round_, step),
            )

    def train_steps(self, expert_index: int, round_: int) -> list[StoredStep]:
        """Every recorded step of a round in step order (the last may be forward-only)."""
        rows = self._query(
            "SELECT step, token_count, in_dim, out_dim, inputs, outputs, manipulated, lr, grad_outputs, grad_inputs"
            " FROM train_steps WHERE expert_index=? AND round=? ORDER BY step",
            (expert_index, round_),
        )
        steps = []
        for step, n, in_dim, out_dim, x, y, manipulated, lr, gy, gx in rows:
            f = lambda blob, d: None if blob is None else np.frombuffer(blob, dtype="<f4").reshape(n, d)  # noqa: E731
            steps.append(StoredStep(step, lr, f(x, in_dim), f(y, out_dim), f(gy, out_dim), f(gx, in_dim), manipulated))
        return steps

    # ------------------------------------------------------------------ disputes and bookkeeping

    def dispute_status(self, dispute_id: int) -> str | None:
        rows = self._query("SELECT status FROM disputes WHERE dispute_id=?", (dispute_id,))
        return rows[0][0] if rows else None

    def set_dispute(self, dispute_id: int, commitment_id: bytes, leaf: bytes, status: str, tx: str | None = None, note: str | None = None) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO disputes (dispute_id, commitment_id, leaf, status, tx, note) VALUES (?,?,?,?,?,?)"
                " ON CONFLICT (dispute_id) DO UPDATE SET status=excluded.status, tx=COALESCE(excluded.tx, tx),"
                " note=COALESCE(excluded.note, note)",
                (dispute_id, commitment_id, leaf, status, tx, note),
            )

    def get_meta(self, key: str) -> str | None:
        rows = self._query("SELECT value FROM meta WHERE key=?", (key,))
        return rows[0][0] if rows else None

    def set_meta(self, key: str, value: str) -> None:
        with self._tx() as db:
            db.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value=excluded.value", (key, value))


@dataclass(frozen=True, eq=False)
class StoredStep:
    """A recorded training step; `lr`, `grad_outputs` and `grad_inputs` are None until its backward."""

    step: int
    lr: float | None
    inputs: np.ndarray
    outputs: np.ndarray
    grad_outputs: np.ndarray | None
    grad_inputs: np.ndarray | None
    manipulated: int

    @property
    def complete(self) -> bool:
        return self.grad_inputs is not None


def _f32(array: np.ndarray) -> bytes:
    return np.ascontiguousarray(array, dtype="<f4").tobytes()


def _round(r: tuple) -> TrainRound:
    expert, round_, task, version, status, from_block, wcid, wroot, next_version, bcid, root, window = r
    return TrainRound(
        expert, round_, int(task), version, status, from_block, wcid, None if wroot is None else bytes(wroot),
        next_version, bcid, None if root is None else bytes(root), window,
    )  # fmt: skip


def _stored(r: tuple) -> StoredRequest:
    row, request_id, task_id, expert, version, n, dtype, in_dim, out_dim, inputs, outputs, root, signature = r
    dt = np.dtype(dtype)
    return StoredRequest(
        row, bytes(request_id), int(task_id), expert, version,
        np.frombuffer(inputs, dtype=dt).reshape(n, in_dim), np.frombuffer(outputs, dtype=dt).reshape(n, out_dim),
        bytes(root), bytes(signature),
    )  # fmt: skip
