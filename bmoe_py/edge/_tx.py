"""Formatting of transaction hashes for the logs."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def tx_hash(receipt: Mapping[str, Any]) -> str:
    """The 0x-prefixed hash of a transaction receipt or log entry (web3 7's HexBytes.hex() drops the prefix)."""
    return "0x" + bytes(receipt["transactionHash"]).hex()
