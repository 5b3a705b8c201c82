"""The validator's memory (SQLite): which commitments it saw and checked, what it sampled, which disputes it opened
and how far they went, and its committee votes with their salts.

Restart safety rests on two rules. (1) Every chain action is preceded by a row saying it is about to happen
(`intend_dispute`, `save_vote` with the salt before `commitVote`), so a crash between the transaction and its record
leaves a trace that the next run reconciles against the chain instead of acting twice. (2) The block cursor of the
watcher advances only after the commitments of the scanned blocks are stored.
Every write is its own transaction (autocommit): a killed process loses at most the action it was doing.
"""
from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

from ..crypto.commitments import Commitment

__all__ = ["DisputeRow", "StoredCommitment", "ValidatorStore", "VoteRow"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS commitments (
    id TEXT PRIMARY KEY, task_id INTEGER NOT NULL, node TEXT NOT NULL, expert_index INTEGER NOT NULL,
    expert_version INTEGER NOT NULL, token_count INTEGER NOT NULL, posted_at INTEGER NOT NULL, root TEXT NOT NULL,
    from_receipt INTEGER NOT NULL, bundle_cid TEXT NOT NULL, block INTEGER NOT NULL,
    status TEXT NOT NULL DEFAULT 'seen',   -- seen | ok | wrong | bad_bundle | expired
    detail TEXT
);
CREATE TABLE IF NOT EXISTS samples (
    commitment_id TEXT NOT NULL, position INTEGER NOT NULL, correct INTEGER NOT NULL,
    PRIMARY KEY (commitment_id, position)
);
CREATE TABLE IF NOT EXISTS disputes (
    module TEXT NOT NULL,                  -- fraud | committee
    commitment_id TEXT NOT NULL, position INTEGER NOT NULL,
    dispute_id INTEGER,                    -- NULL: challenge about to be sent (or sent and not yet recorded)
    phase TEXT NOT NULL DEFAULT 'intended', outcome TEXT, done INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (module, commitment_id, position)
);
CREATE TABLE IF NOT EXISTS votes (
    dispute_id INTEGER PRIMARY KEY, fraud INTEGER NOT NULL, salt TEXT NOT NULL,
    committed INTEGER NOT NULL DEFAULT 0, revealed INTEGER NOT NULL DEFAULT 0
);
"""


@dataclass(frozen=True)
class StoredCommitment:
    commitment: Commitment
    bundle_cid: str
    block: int
    status: str


@dataclass(frozen=True)
class DisputeRow:
    module: str
    commitment_id: bytes
    position: int
    dispute_id: int | None
    phase: str
    outcome: str | None
    done: bool


@dataclass(frozen=True)
class VoteRow:
    dispute_id: int
    fraud: bool
    salt: bytes
    committed: bool
    revealed: bool


class ValidatorStore:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        self._db.close()

    def _run(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    # ------------------------------------------------------------------------------------------------ cursor

    def cursor(self, default: int) -> int:
        """The next block the watcher has to scan."""
        rows = self._run("SELECT value FROM meta WHERE key = 'next_block'")
        return int(rows[0][0]) if rows else default

    def set_cursor(self, block: int) -> None:
        self._run("INSERT OR REPLACE INTO meta (key, value) VALUES ('next_block', ?)", (str(block),))

    # ------------------------------------------------------------------------------------------------ commitments

    def add_commitment(self, commitment: Commitment, bundle_cid: str, block: int) -> bool:
        """Records a posted commitment; False if it was already known."""
        c = commitment
        with self._lock:
            cur = self._db.execute(
                "INSERT OR IGNORE INTO commitments (id, task_id, node, expert_index, expert_version, token_count,"
                " posted_at, root, from_receipt, bundle_cid, block) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (c.id().hex(), c.task_id, c.node, c.expert_index, c.expert_version, c.token_count, c.posted_at,
                 c.root.hex(), int(c.from_receipt), bundle_cid, block),
            )  # fmt: skip
            return cur.rowcount == 1

    def commitments(self, status: str) -> list[StoredCommitment]:
        rows = self._run(
            "SELECT task_id, node, expert_index, expert_version, token_count, posted_at, root, from_receipt,"
            " bundle_cid, block, status FROM commitments WHERE status = ? ORDER BY block",
            (status,),
        )
        return [
            StoredCommitment(
                Commitment(r[0], r[1], r[2], r[3], r[4], r[5], bytes.fromhex(r[6]), bool(r[7])), r[8], r[9], r[10]
            )
            for r in rows
        ]

    def status(self, commitment_id: bytes) -> str | None:
        rows = self._run("SELECT status FROM commitments WHERE id = ?", (commitment_id.hex(),))
        return rows[0][0] if rows else None

    def set_status(self, commitment_id: bytes, status: str, detail: str | None = None) -> None:
        self._run("UPDATE commitments SET status = ?, detail = ? WHERE id = ?", (status, detail, commitment_id.hex()))

    def add_samples(self, commitment_id: bytes, results: dict[int, bool]) -> None:
        with self._lock:
            self._db.executemany(
                "INSERT OR REPLACE INTO samples (commitment_id, position, correct) VALUES (?, ?, ?)",
                [(commitment_id.hex(), p, int(ok)) for p, ok in results.items()],
            )

    def samples(self, commitment_id: bytes) -> dict[int, bool]:
        rows = self._run("SELECT position, correct FROM samples WHERE commitment_id = ?", (commitment_id.hex(),))
        return {int(p): bool(ok) for p, ok in rows}

    # ------------------------------------------------------------------------------------------------ disputes

    def intend_dispute(self, module: str, commitment_id: bytes, position: int) -> bool:
        """Records that a challenge of this token is about to be sent; False if one was already recorded."""
        with self._lock:
            cur = self._db.execute(
                "INSERT OR IGNORE INTO disputes (module, commitment_id, position) VALUES (?, ?, ?)",
                (module, commitment_id.hex(), position),
            )
            return cur.rowcount == 1

    def set_dispute_id(self, module: str, commitment_id: bytes, position: int, dispute_id: int) -> None:
        self._run(
            "UPDATE disputes SET dispute_id = ?, phase = 'open' WHERE module = ? AND commitment_id = ? AND position = ?",
            (dispute_id, module, commitment_id.hex(), position),
        )

    def update_dispute(self, module: str, dispute_id: int, phase: str, outcome: str | None, done: bool) -> None:
        self._run(
            "UPDATE disputes SET phase = ?, outcome = ?, done = ? WHERE module = ? AND dispute_id = ?",
            (phase, outcome, int(done), module, dispute_id),
        )

    def drop_intent(self, module: str, commitment_id: bytes, position: int) -> None:
        """Forgets a challenge that was never sent (it reverted before sending)."""
        self._run(
            "DELETE FROM disputes WHERE module = ? AND commitment_id = ? AND position = ? AND dispute_id IS NULL",
            (module, commitment_id.hex(), position),
        )

    def disputes(self, *, open_only: bool = False, module: str | None = None) -> list[DisputeRow]:
        sql = "SELECT module, commitment_id, position, dispute_id, phase, outcome, done FROM disputes WHERE 1=1"
        args: tuple = ()
        if open_only:
            sql += " AND done = 0"
        if module:
            sql += " AND module = ?"
            args = (module,)
        rows = self._run(sql + " ORDER BY rowid", args)
        return [DisputeRow(r[0], bytes.fromhex(r[1]), r[2], r[3], r[4], r[5], bool(r[6])) for r in rows]

    # ------------------------------------------------------------------------------------------------ votes

    def save_vote(self, dispute_id: int, fraud: bool, salt: bytes) -> VoteRow:
        """Keeps the first vote decided for a dispute (a restart must reveal what it committed, not a new salt)."""
        self._run(
            "INSERT OR IGNORE INTO votes (dispute_id, fraud, salt) VALUES (?, ?, ?)", (dispute_id, int(fraud), salt.hex())
        )
        return self.vote(dispute_id)  # type: ignore[return-value]

    def vote(self, dispute_id: int) -> VoteRow | None:
        rows = self._run("SELECT dispute_id, fraud, salt, committed, revealed FROM votes WHERE dispute_id = ?", (dispute_id,))
        if not rows:
            return None
        r = rows[0]
        return VoteRow(r[0], bool(r[1]), bytes.fromhex(r[2]), bool(r[3]), bool(r[4]))

    def mark_vote(self, dispute_id: int, *, committed: bool | None = None, revealed: bool | None = None) -> None:
        if committed:
            self._run("UPDATE votes SET committed = 1 WHERE dispute_id = ?", (dispute_id,))
        if revealed:
            self._run("UPDATE votes SET revealed = 1 WHERE dispute_id = ?", (dispute_id,))
