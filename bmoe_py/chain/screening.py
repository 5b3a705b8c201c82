"""The Screening contract from Python (docs/protocol.md 11.5): flags and blacklistings of training nodes.

    flag(chain, model_id, node, round_=3, reason="robust-z:grad_norm", score=4.2)   # as the model owner
    screening_record(chain, model_id, node)   # ScreeningRecord(flag_count=1, last_flag_round=3, blacklisted=False)

Addresses may be given in any case. Reasons are short ASCII labels stored as bytes32 (right-padded with zeros) and scores are stored scaled by 10^6, so
that flags read back from the chain are the labels and numbers screening computed.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from eth_utils import to_checksum_address

if TYPE_CHECKING:
    from web3.types import TxReceipt

    from .client import Chain

__all__ = ["SCORE_SCALE", "ScreeningRecord", "blacklist", "decode_reason", "encode_reason", "flag", "flags",
           "screening_record", "unblacklist"]  # fmt: skip

SCORE_SCALE = 10**6


def encode_reason(label: str) -> bytes:
    """bytes32 of an ASCII label of at most 32 characters, right-padded with zeros."""
    raw = label.encode("ascii")
    if len(raw) > 32:
        raise ValueError(f"a reason is at most 32 ASCII characters, got {len(raw)}: {label!r}")
    return raw.ljust(32, b"\0")


def decode_reason(raw: bytes) -> str:
    return bytes(raw).rstrip(b"\0").decode("ascii", errors="replace")


@dataclass(frozen=True)
class ScreeningRecord:
    flag_count: int
    last_flag_round: int
    blacklisted: bool


def flag(chain: Chain, model_id: int, node: str, round_: int, reason: str, score: float) -> TxReceipt:
    """Records a flag of `node` after round `round_` (the model owner's key only). `score` is stored as
    round(|score| * 10^6): the size of the statistic that fired, whatever its sign."""
    fn = chain.screening.functions.flag(model_id, to_checksum_address(node), round_, encode_reason(reason), round(abs(score) * SCORE_SCALE))
    return chain.send(fn)


def blacklist(chain: Chain, model_id: int, node: str, evidence: bytes = bytes(32)) -> TxReceipt:
    """Blacklists `node` for the model; `evidence` (32 bytes) points at why, e.g. a commitment id."""
    return chain.send(chain.screening.functions.blacklist(model_id, to_checksum_address(node), bytes(evidence).rjust(32, b"\0")))


def unblacklist(chain: Chain, model_id: int, node: str) -> TxReceipt:
    return chain.send(chain.screening.functions.unblacklist(model_id, to_checksum_address(node)))


def screening_record(chain: Chain, model_id: int, node: str) -> ScreeningRecord:
    s, node = chain.screening.functions, to_checksum_address(node)
    return ScreeningRecord(
        int(chain.call(s.flagCount(model_id, node))),
        int(chain.call(s.lastFlagRound(model_id, node))),
        bool(chain.call(s.isBlacklisted(model_id, node))),
    )


def flags(chain: Chain, model_id: int, from_block: int = 0) -> list[dict[str, Any]]:
    """Every flag of the model since `from_block`: {node, round, reason (label), score (float), block}."""
    logs = chain.screening.events.Flagged().get_logs(from_block=from_block, argument_filters={"modelId": model_id})
    return [
        {
            "node": log["args"]["node"],
            "round": int(log["args"]["round"]),
            "reason": decode_reason(log["args"]["reason"]),
            "score": int(log["args"]["score"]) / SCORE_SCALE,
            "block": int(log["blockNumber"]),
        }
        for log in logs
    ]
