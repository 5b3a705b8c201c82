"""Deployment manifests: `deployments/<chain-id>.json`, one per chain, written by `brownie run deploy`.

A manifest is everything a client needs to talk to a deployment without brownie: the chain id, the address and
ABI of each contract, and the parameters the suite was deployed with. Each ABI carries the keccak256 of its
canonical JSON (`abi_hash`) so that a hand-edited or truncated ABI is caught before it is used.
"""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eth_utils import keccak, to_checksum_address

if TYPE_CHECKING:
    from web3 import Web3

FORMAT_VERSION = 1
# The six contracts of docs/protocol.md section 1, in deployment order.
CONTRACT_NAMES: tuple[str, ...] = (
    "Staking",
    "ExpertRegistry",
    "ResultLedger",
    "FraudProof",
    "CommitteeDispute",
    "Screening",
)
# Chains that `make deploy` serves (anvil's default id; 1337 is ganache's and geth --dev's).
LOCAL_CHAIN_IDS = frozenset({31337, 1337})


class ManifestError(Exception):
    """A manifest is missing, malformed, or does not match the chain it claims to describe."""


class ManifestNotFound(ManifestError):
    pass


def deployments_dir() -> Path:
    """`$BMOE_DEPLOYMENTS_DIR`, else `deployments/` at the repository root (the package is installed editable)."""
    env = os.environ.get("BMOE_DEPLOYMENTS_DIR")
    if env:
        return Path(env).expanduser()
    return Path(__file__).resolve().parents[2] / "deployments"


def manifest_path(chain_id: int, directory: Path | str | None = None) -> Path:
    return Path(directory or deployments_dir()) / f"{int(chain_id)}.json"


def abi_hash(abi: list[dict[str, Any]]) -> str:
    """keccak256 of the ABI as canonical JSON (sorted keys, no whitespace), as a 0x-prefixed hex string."""
    canonical = json.dumps(abi, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return "0x" + keccak(text=canonical).hex()


@dataclass(frozen=True)
class ContractRecord:
    address: str
    abi: list[dict[str, Any]]
    abi_hash: str
    tx_hash: str | None = None
    block: int | None = None

    @classmethod
    def create(cls, address: str, abi: list[dict[str, Any]], tx_hash: str | None = None, block: int | None = None):
        return cls(to_checksum_address(address), abi, abi_hash(abi), tx_hash, block)


@dataclass(frozen=True)
class Manifest:
    chain_id: int
    network: str
    deployer: str
    deploy_block: int
    deploy_block_hash: str
    timestamp: str
    git_commit: str | None
    git_dirty: bool
    confirmations: int
    parameters: dict[str, Any]
    compiler: dict[str, Any]
    contracts: dict[str, ContractRecord]
    format: int = FORMAT_VERSION

    def address(self, name: str) -> str:
        try:
            return self.contracts[name].address
        except KeyError:
            raise ManifestError(f"the deployment on chain {self.chain_id} has no contract {name!r}") from None

    def verify(self) -> None:
        """Checks that all contracts of CONTRACT_NAMES are present and every ABI matches its recorded hash."""
        missing = [name for name in CONTRACT_NAMES if name not in self.contracts]
        if missing:
            raise ManifestError(f"manifest for chain {self.chain_id} lacks {', '.join(missing)}")
        for name, record in self.contracts.items():
            actual = abi_hash(record.abi)
            if actual != record.abi_hash:
                raise ManifestError(
                    f"manifest for chain {self.chain_id}: the ABI of {name} does not match its abi_hash "
                    f"(recorded {record.abi_hash}, actual {actual}); the file was edited or truncated: redeploy "
                    "or restore it"
                )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        if data.get("format") != FORMAT_VERSION:
            raise ManifestError(f"unsupported manifest format {data.get('format')!r} (expected {FORMAT_VERSION})")
        try:
            fields = dict(data)
            fields["contracts"] = {k: ContractRecord(**v) for k, v in data["contracts"].items()}
            return cls(**fields)
        except (KeyError, TypeError) as exc:
            raise ManifestError(f"malformed manifest: {exc}") from None


def load_manifest(chain_id: int, directory: Path | str | None = None, *, verify: bool = True) -> Manifest:
    """Reads `<directory>/<chain_id>.json`; raises ManifestNotFound with the command that would create it."""
    path = manifest_path(chain_id, directory)
    if not path.exists():
        how = "run `make deploy`" if chain_id in LOCAL_CHAIN_IDS else "run `brownie run deploy --network <network>`"
        raise ManifestNotFound(f"no deployment for chain {chain_id} (no {path}): {how}")
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ManifestError(f"cannot read {path}: {exc}") from None
    manifest = Manifest.from_dict(data)
    if manifest.chain_id != int(chain_id):
        raise ManifestError(f"{path} describes chain {manifest.chain_id}, not {chain_id}")
    if verify:
        manifest.verify()
    return manifest


def save_manifest(manifest: Manifest, directory: Path | str | None = None) -> Path:
    """Writes the manifest atomically (a reader never sees half a file) and returns its path."""
    path = manifest_path(manifest.chain_id, directory)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fp:
            json.dump(manifest.to_dict(), fp, indent=2)
            fp.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def deployment_gone(manifest: Manifest, w3: Web3) -> str | None:
    """Why the deployment described by `manifest` no longer exists on the chain `w3` talks to, or None if it does.

    A chain that was reset (a restarted anvil) may reuse the same addresses for a new deployment, so besides the
    code at every address the hash of the deployment block must still be the recorded one.
    """
    if w3.eth.chain_id != manifest.chain_id:
        return f"the node serves chain {w3.eth.chain_id}, the manifest chain {manifest.chain_id}"
    if w3.eth.block_number < manifest.deploy_block:
        return f"the chain is at block {w3.eth.block_number}, before the deployment block {manifest.deploy_block}"
    block_hash = w3.eth.get_block(manifest.deploy_block)["hash"]
    if _hex(block_hash) != manifest.deploy_block_hash.lower():
        return f"block {manifest.deploy_block} is not the deployment block any more (the chain was reset)"
    for name, record in manifest.contracts.items():
        if not w3.eth.get_code(record.address):
            return f"{name} has no code at {record.address}"
    return None


def _hex(value: bytes | str) -> str:
    text = value.hex() if isinstance(value, (bytes, bytearray)) else str(value)
    return (text if text.startswith("0x") else "0x" + text).lower()
