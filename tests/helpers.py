"""Assertions shared by the contract tests.

`reverts_with` checks that a call reverts with one exact Solidity custom error, arguments included:

    with reverts_with("InsufficientStake(uint256,uint256)", 0, 5):
        staking.requestUnbond(5, {"from": alice})

The error is named by its full signature (as in `interfaces/*.sol`, no spaces, no parameter names) because
two contracts may declare errors with the same name and different parameters (IStaking.InsufficientStake and
IExpertRegistry.InsufficientStake), which have different selectors.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from brownie.exceptions import VirtualMachineError, decode_typed_error
from eth_abi import encode
from eth_utils import keccak


def error_selector(signature: str) -> bytes:
    """The 4-byte selector of a custom error, e.g. `error_selector("ZeroAmount()")`."""
    return keccak(text=signature)[:4]


def encode_error(signature: str, *args: Any) -> bytes:
    """The revert data of a custom error: its selector followed by its ABI-encoded arguments."""
    types = _parameter_types(signature)
    if len(types) != len(args):
        raise TypeError(f"{signature} takes {len(types)} arguments, got {len(args)}")
    return error_selector(signature) + encode(types, [_abi_value(a) for a in args])


@contextmanager
def reverts_with(signature: str, *args: Any) -> Iterator[None]:
    """Asserts that the block reverts with exactly the custom error `signature(args...)`.

    Every argument must be given: an assertion that ignores arguments would pass on the wrong revert path.
    """
    expected = encode_error(signature, *args)
    try:
        yield
    except VirtualMachineError as exc:
        # Brownie keeps only the decoded revert message, not the raw revert data. Decoding our expected
        # data with the same decoder gives the same text iff selector and arguments match (for an error
        # brownie does not know, both texts carry the raw data, so the comparison is byte for byte).
        want = decode_typed_error("0x" + expected.hex())
        assert exc.revert_msg == want, f"expected revert {want!r}, got {exc.revert_msg!r}"
    else:
        raise AssertionError(f"expected revert {signature} {args}, but the call succeeded")


def _parameter_types(signature: str) -> list[str]:
    name, sep, rest = signature.partition("(")
    if not name or not sep or not rest.endswith(")") or " " in signature:
        raise ValueError(f"not a canonical error signature: {signature!r}")
    inner = rest[:-1]
    # Canonical signatures of our errors have no tuple parameters, so a plain split is enough.
    if "(" in inner:
        raise ValueError(f"tuple parameters are not supported: {signature!r}")
    return inner.split(",") if inner else []


def _abi_value(value: Any) -> Any:
    # Brownie accounts and contracts stand for their address.
    address = getattr(value, "address", None)
    return str(address) if address is not None else value
