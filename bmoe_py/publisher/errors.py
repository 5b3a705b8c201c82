"""Errors of publishing and loading models. Kept free of heavy imports (torch) so that the CLI can catch them
without paying for what it does not run."""
from __future__ import annotations

__all__ = ["InsufficientFunds", "NotPublished", "PublishError", "WeightsMismatch"]


class PublishError(Exception):
    """Publishing stopped; the message says why and what, if anything, is already on chain."""


class InsufficientFunds(PublishError):
    """The publisher's balance does not cover the gas of the transactions publishing needs."""


class WeightsMismatch(Exception):
    """Downloaded weights are not the ones the chain records for `what` ("expert 3 version 2", "gate")."""

    def __init__(self, model_id: int, what: str, cid: str, detail: str) -> None:
        self.model_id = model_id
        self.what = what
        self.cid = cid
        self.detail = detail
        super().__init__(f"model {model_id} {what} ({cid}): {detail}; refusing to use it")


class NotPublished(LookupError):
    """The expert has no version on chain yet."""
