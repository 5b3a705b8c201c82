"""Errors of the storage layer. Each names the CID (where there is one) and the node it came from, so
that a failed download in a log says what was asked of whom."""
from __future__ import annotations


class IpfsError(Exception):
    """Base class. `cid` and `node` (an API URL or a repository path) are kept for callers."""

    def __init__(self, message: str, *, cid: str | None = None, node: str | None = None) -> None:
        super().__init__(message)
        self.cid = cid
        self.node = node


class IpfsUnavailable(IpfsError):
    """The node cannot be reached (nothing listens at its address, or the connection broke)."""


class IpfsTimeout(IpfsError):
    """The node did not finish the request within its deadline."""


class CidNotFound(IpfsTimeout):
    """No peer delivered the CID's content within the deadline. IPFS cannot tell "nobody has it" from
    "nobody has answered yet", so this is a timeout."""


class IpfsApiError(IpfsError):
    """The node answered with an error (the `Message` of Kubo's error body)."""


class InvalidCid(IpfsError, ValueError):
    """The text is not a CID."""


class ContentMismatch(IpfsError):
    """The downloaded bytes do not hash to the CID asked for (or to the expected sha256)."""
