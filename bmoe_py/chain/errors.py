"""Turns revert data into readable errors using the deployment's ABIs.

The contracts revert with custom errors (`WrongBond(uint256 sent, uint256 required)`); a node returns only the
4-byte selector and the ABI-encoded arguments. `ErrorDecoder` maps every selector in the manifest's ABIs back to
the error's name and named arguments, and also understands Solidity's built-in `Error(string)` and `Panic(uint256)`.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from eth_abi import decode as abi_decode
from eth_abi.exceptions import DecodingError
from eth_utils import function_signature_to_4byte_selector

# https://docs.soliditylang.org/en/latest/control-structures.html#panic-via-assert-and-error-via-require
PANIC_REASONS = {
    0x01: "assertion failed",
    0x11: "arithmetic overflow or underflow",
    0x12: "division or modulo by zero",
    0x21: "invalid enum value",
    0x22: "invalid storage byte array",
    0x31: "pop on an empty array",
    0x32: "array index out of bounds",
    0x41: "out of memory",
    0x51: "call to an uninitialised function",
}


@dataclass(frozen=True)
class DecodedError:
    """A revert, by name: `contract` is the contract whose ABI declares the error (None for built-ins)."""

    name: str
    args: dict[str, Any] = field(default_factory=dict)
    contract: str | None = None

    def __str__(self) -> str:
        args = ", ".join(f"{k}={_show(v)}" for k, v in self.args.items())
        prefix = f"{self.contract}." if self.contract else ""
        return f"{prefix}{self.name}({args})"


def _canonical_type(param: dict[str, Any]) -> str:
    """The ABI type as it appears in a signature: tuples are expanded into their components."""
    kind = param["type"]
    if kind.startswith("tuple"):
        inner = ",".join(_canonical_type(c) for c in param["components"])
        return f"({inner}){kind[len('tuple'):]}"
    return kind


def _show(value: Any) -> str:
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    return repr(value) if isinstance(value, str) else str(value)


class ErrorDecoder:
    def __init__(self, abis: Mapping[str, list[dict[str, Any]]]):
        # selector -> [(contract, error abi)]; one error (e.g. WrongBond) may be declared by several contracts.
        self._errors: dict[bytes, list[tuple[str, dict[str, Any]]]] = {}
        for contract, abi in abis.items():
            for item in abi:
                if item.get("type") != "error":
                    continue
                types = ",".join(_canonical_type(p) for p in item.get("inputs", []))
                selector = function_signature_to_4byte_selector(f"{item['name']}({types})")
                self._errors.setdefault(selector, []).append((contract, item))

    def decode(self, data: bytes | str | None, prefer: str | None = None) -> DecodedError | None:
        """Decodes revert data; `prefer` names the called contract, which wins when several declare the error."""
        raw = _to_bytes(data)
        if raw is None or len(raw) < 4:
            return None
        selector, body = raw[:4], raw[4:]
        try:
            if selector == function_signature_to_4byte_selector("Error(string)"):
                return DecodedError("Error", {"reason": abi_decode(["string"], body)[0]})
            if selector == function_signature_to_4byte_selector("Panic(uint256)"):
                code = abi_decode(["uint256"], body)[0]
                return DecodedError("Panic", {"code": code, "reason": PANIC_REASONS.get(code, "unknown panic")})
            candidates = self._errors.get(selector)
            if not candidates:
                return DecodedError("UnknownError", {"selector": selector, "data": body})
            contract, item = next((c for c in candidates if c[0] == prefer), candidates[0])
            inputs = item.get("inputs", [])
            values = abi_decode([_canonical_type(p) for p in inputs], body)
            names = [p.get("name") or f"arg{i}" for i, p in enumerate(inputs)]
            return DecodedError(item["name"], dict(zip(names, values)), contract)
        except DecodingError:
            return DecodedError("UndecodableRevert", {"data": raw})


def _to_bytes(data: bytes | str | Mapping[str, Any] | None) -> bytes | None:
    """Revert data comes as bytes, a 0x string, or (some nodes) a dict with a `data` entry."""
    if data is None:
        return None
    if isinstance(data, Mapping):
        return _to_bytes(data.get("data"))
    if isinstance(data, (bytes, bytearray)):
        return bytes(data)
    text = str(data)
    if text.startswith("0x"):
        text = text[2:]
    try:
        return bytes.fromhex(text)
    except ValueError:
        return None
