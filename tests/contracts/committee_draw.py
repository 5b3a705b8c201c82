"""CommitteeDispute's committee draw replayed in Python, so that tests can predict every committee exactly.

Mirrors `CommitteeDispute._sample` and `_candidates` step by step (the contract's comments explain the method).
"""
from __future__ import annotations

from eth_abi import encode
from eth_utils import keccak

MAX_SCAN = 256


def draw_seed(seed_block_hash: bytes, dispute_id: int) -> bytes:
    """keccak256(abi.encode(blockhash(anchorBlock + 1), disputeId))."""
    return keccak(encode(["bytes32", "uint256"], [bytes(seed_block_hash), dispute_id]))


def sample_committee(
    seed: bytes,
    validators: list[str],
    stakes: dict[str, int],
    excluded: set[str],
    min_stake: int,
    size: int,
) -> list[str]:
    """The members drawn for `seed` from `validators` (in the staking contract's order) with active `stakes`.

    Returns [] where the contract reverts with NoEligibleValidators.
    """
    count = len(validators)
    if count == 0:
        return []
    start = int.from_bytes(seed, "big") % count
    window = [validators[(start + i) % count] for i in range(min(count, MAX_SCAN))]
    candidates = [v for v in window if v not in excluded and stakes.get(v, 0) >= min_stake]
    weights = [stakes[v] for v in candidates]
    members: list[str] = []
    for k in range(min(size, len(candidates))):
        r = int.from_bytes(keccak(encode(["bytes32", "uint256"], [seed, k])), "big") % sum(weights)
        j = 0
        while r >= weights[j]:
            r -= weights[j]
            j += 1
        members.append(candidates[j])
        # swap-remove, exactly as the contract does, so that later draws see the same order
        candidates[j], weights[j] = candidates[-1], weights[-1]
        candidates.pop()
        weights.pop()
    return members
