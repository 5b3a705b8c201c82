"""Verification policies a publisher picks per task (DESIGN.md 7) and the majority vote of `redundant:r`.

- `none`: each expert call goes to one host; nothing is checked beyond the receipt (the baseline under attack).
- `redundant:r`: each call goes to r distinct hosts; per token, the output bytes that a strict majority of the
  hosts returned are accepted, and every host outvoted on some token is challenged on chain.
- `optimistic:p`: one host per call; validators (separate processes) re-execute a fraction p of the committed
  tokens. `p` is recorded in the report; the publisher itself checks nothing more than under `none`.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = ["MAX_REPLICAS", "PolicyError", "Policy", "Vote", "majority_vote"]

MAX_REPLICAS = 15  # more hosts per call than this is a typo, not a policy
_SYNTAX = "none, redundant:R (R hosts per call, 2..%d) or optimistic:P (P a fraction in (0, 1])" % MAX_REPLICAS


class PolicyError(ValueError):
    """A policy string that is not `none`, `redundant:R` or `optimistic:P`."""


@dataclass(frozen=True)
class Policy:
    kind: str  # "none" | "redundant" | "optimistic"
    replicas: int = 1
    sample_rate: float = 0.0

    @classmethod
    def parse(cls, text: str) -> Policy:
        """`none`, `redundant:3`, `optimistic:0.1` (also `optimistic:10%`); PolicyError with the syntax otherwise."""
        raw = text.strip().lower()
        if raw == "none":
            return cls("none")
        kind, sep, arg = raw.partition(":")
        if not sep or not arg:
            raise PolicyError(f"unknown verification policy {text!r}: expected {_SYNTAX}")
        if kind == "redundant":
            if not re.fullmatch(r"\d+", arg) or not 2 <= int(arg) <= MAX_REPLICAS:
                raise PolicyError(f"bad policy {text!r}: R in redundant:R must be a whole number from 2 to {MAX_REPLICAS}")
            return cls("redundant", replicas=int(arg))
        if kind == "optimistic":
            try:
                rate = float(arg[:-1]) / 100 if arg.endswith("%") else float(arg)
            except ValueError:
                rate = float("nan")
            if not 0 < rate <= 1:  # also refuses nan
                raise PolicyError(f"bad policy {text!r}: P in optimistic:P must be a fraction in (0, 1], e.g. 0.1 or 10%")
            return cls("optimistic", sample_rate=rate)
        raise PolicyError(f"unknown verification policy {text!r}: expected {_SYNTAX}")

    def __str__(self) -> str:
        if self.kind == "redundant":
            return f"redundant:{self.replicas}"
        if self.kind == "optimistic":
            return f"optimistic:{self.sample_rate:g}"
        return "none"


@dataclass(frozen=True)
class Vote:
    """The outcome of a per-token vote among the answers of several hosts to the same request.

    `accepted` [n, outDim] holds the majority output of every token; `decided` [n] is False for tokens without a
    strict majority (their row in `accepted` is the first host's, and should not be trusted); `outvoted[h]` lists
    the token indices where host h disagreed with a majority.
    """

    accepted: np.ndarray
    decided: np.ndarray
    outvoted: list[list[int]] = field(default_factory=list)

    @property
    def unanimous(self) -> bool:
        return bool(self.decided.all()) and not any(self.outvoted)


def majority_vote(outputs: Sequence[np.ndarray]) -> Vote:
    """Per token, the output bytes that more than half of `outputs` (one [n, outDim] array per host) agree on.

    Comparing bytes, not values, is what makes the vote exact for int8 experts: an honest host's answer is
    bit-identical to every other honest host's, so any difference is a wrong answer by someone.
    """
    if not outputs:
        raise ValueError("a vote needs at least one answer")
    shape = outputs[0].shape
    if any(o.shape != shape or o.dtype != outputs[0].dtype for o in outputs):
        raise ValueError(f"answers to one request must have one shape and dtype, got {[o.shape for o in outputs]}")
    hosts, n = len(outputs), shape[0]
    # Row-wise byte keys: one void scalar per token makes equality a single vectorised comparison.
    keys = np.stack([np.ascontiguousarray(o).view(np.dtype((np.void, o.dtype.itemsize * shape[1]))).reshape(n) for o in outputs])
    agree = keys[:, None, :] == keys[None, :, :]  # [hosts, hosts, n]
    support = agree.sum(axis=1)  # [hosts, n]: how many hosts gave host h's answer for token t
    best = support.argmax(axis=0)  # first host with the largest support
    decided = support[best, np.arange(n)] * 2 > hosts
    accepted = np.stack(outputs)[best, np.arange(n)]
    winner_keys = keys[best, np.arange(n)]
    outvoted = [np.flatnonzero(decided & (keys[h] != winner_keys)).tolist() for h in range(hosts)]
    return Vote(accepted, decided, outvoted)
