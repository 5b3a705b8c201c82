"""Deploying the contract suite with brownie (docs/protocol.md section 1), from `scripts/deploy.py` and from tests.

brownie is imported lazily so that `DeployParams` and `build_manifest` stay usable from plain Python.
"""
from __future__ import annotations

import contextlib
import os
import re
import subprocess
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .manifest import CONTRACT_NAMES, ContractRecord, Manifest

MINUTE = 60
HOUR = 60 * MINUTE
DAY = 24 * HOUR
ETHER = 10**18

_DURATION = re.compile(r"^\s*(\d+)\s*([smhd]?)\s*$")
_DURATION_UNITS = {"": 1, "s": 1, "m": MINUTE, "h": HOUR, "d": DAY}
_AMOUNT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(wei|gwei|ether)?\s*$", re.IGNORECASE)
_AMOUNT_UNITS = {"wei": 1, "gwei": 10**9, "ether": ETHER}


@dataclass(frozen=True)
class DeployParams:
    """Constructor parameters of the suite. Durations in seconds, amounts in wei.

    Every field can be overridden by the environment variable `BMOE_<FIELD>` (e.g. `BMOE_FRAUD_BOND=0.05ether`,
    `BMOE_UNBONDING_DELAY=2h`); see `from_env`.
    """

    unbonding_delay: int = 7 * DAY
    fraud_bond: int = ETHER // 10
    response_window: int = DAY
    proof_window: int = DAY
    committee_bond: int = ETHER // 10
    committee_size: int = 5
    draw_window: int = HOUR
    commit_window: int = DAY
    reveal_window: int = DAY
    non_reveal_penalty: int = ETHER // 100

    @property
    def longest_dispute(self) -> int:
        """The registry's `longestDispute`: the longest either dispute module can run (protocol section 1)."""
        return max(
            self.response_window + self.proof_window,
            self.draw_window + self.commit_window + self.reveal_window,
        )

    def validate(self) -> None:
        for f in fields(self):
            if getattr(self, f.name) <= 0:
                raise ValueError(f"{f.name} must be positive, got {getattr(self, f.name)}")
        for name in ("response_window", "proof_window", "draw_window", "commit_window", "reveal_window"):
            if getattr(self, name) >= 2**64:
                raise ValueError(f"{name} does not fit in uint64")
        # The registry refuses any model whose challengeWindow + longestDispute >= unbondingDelay, so with
        # a shorter unbonding delay no model could ever be registered.
        if self.unbonding_delay <= self.longest_dispute + 1:
            raise ValueError(
                f"unbonding_delay ({self.unbonding_delay}s) must exceed the longest dispute "
                f"({self.longest_dispute}s) plus the challenge windows of the models"
            )

    def to_dict(self) -> dict[str, int]:
        return {**asdict(self), "longest_dispute": self.longest_dispute}

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> DeployParams:
        """Defaults overridden by `BMOE_<FIELD>` variables: durations as `90`, `30m`, `2h`, `7d`; amounts as wei
        (`1000`) or with a unit (`0.1ether`, `5 gwei`)."""
        environ = os.environ if environ is None else environ
        values: dict[str, int] = {}
        for f in fields(cls):
            raw = environ.get(f"BMOE_{f.name.upper()}")
            if raw is None or raw == "":
                continue
            try:
                values[f.name] = _parser_for(f.name)(raw)
            except ValueError as exc:
                raise ValueError(f"BMOE_{f.name.upper()}={raw!r}: {exc}") from None
        params = cls(**values)
        params.validate()
        return params


def _parser_for(name: str) -> Callable[[str], int]:
    if name.endswith(("_delay", "_window")):
        return parse_duration
    if name.endswith(("_bond", "_penalty")):
        return parse_amount
    return _parse_count


def parse_duration(raw: str) -> int:
    """Seconds from `90`, `90s`, `30m`, `2h` or `7d`; ValueError otherwise."""
    match = _DURATION.match(raw)
    if not match:
        raise ValueError("expected seconds or a number with s/m/h/d, e.g. 90, 30m, 7d")
    return int(match.group(1)) * _DURATION_UNITS[match.group(2)]


def parse_amount(raw: str) -> int:
    """Wei from `1000`, `1000 wei`, `5gwei` or `0.1ether` (exactly, no float rounding); ValueError otherwise."""
    match = _AMOUNT.match(raw)
    if not match:
        raise ValueError("expected wei or a number with wei/gwei/ether, e.g. 0.1ether")
    number, unit = match.group(1), (match.group(2) or "wei").lower()
    whole, _, frac = number.partition(".")
    scale = _AMOUNT_UNITS[unit]
    # Exact decimal arithmetic: float("0.1") * 10**18 is not 10**17.
    if len(frac) > len(str(scale)) - 1:
        raise ValueError(f"too many decimals for {unit}")
    return int(whole) * scale + (int(frac) * scale // 10 ** len(frac) if frac else 0)


def _parse_count(raw: str) -> int:
    if not raw.strip().isdigit():
        raise ValueError("expected a whole number")
    return int(raw)


Log = Callable[[str], None]
# Six deployments and two wiring transactions.
_STEPS = 8


def deploy_suite(
    deployer: Any,
    params: DeployParams | None = None,
    *,
    containers: Mapping[str, Any] | None = None,
    confirmations: int = 1,
    log: Log = print,
) -> dict[str, Any]:
    """Deploys and wires the suite from `deployer` (a brownie account); returns {contract name: brownie Contract}.

    `containers` maps contract names to brownie ContractContainers; by default they come from the loaded brownie
    project. Each transaction waits for `confirmations` blocks.
    """
    params = params or DeployParams()
    params.validate()
    containers = containers or _project_containers()
    _forget_stale_brownie_deployments(containers)
    with _without_brownie_deployment_records():
        return _deploy_and_wire(containers, params, {"from": deployer, "required_confs": confirmations}, log)


def _deploy_and_wire(containers: Mapping[str, Any], params: DeployParams, tx: dict, log: Log) -> dict[str, Any]:
    deployed: dict[str, Any] = {}
    deployed["Staking"] = _deploy_step(containers, "Staking", (params.unbonding_delay,), tx, log, 1)
    staking = deployed["Staking"]
    deployed["ExpertRegistry"] = _deploy_step(
        containers, "ExpertRegistry", (staking, params.longest_dispute), tx, log, 2
    )
    registry = deployed["ExpertRegistry"]
    deployed["ResultLedger"] = _deploy_step(containers, "ResultLedger", (registry, staking), tx, log, 3)
    ledger = deployed["ResultLedger"]
    deployed["FraudProof"] = _deploy_step(
        containers,
        "FraudProof",
        (ledger, registry, staking, params.fraud_bond, params.response_window, params.proof_window),
        tx,
        log,
        4,
    )
    deployed["CommitteeDispute"] = _deploy_step(
        containers,
        "CommitteeDispute",
        (
            ledger,
            registry,
            staking,
            params.committee_bond,
            params.committee_size,
            params.draw_window,
            params.commit_window,
            params.reveal_window,
            params.non_reveal_penalty,
        ),
        tx,
        log,
        5,
    )
    deployed["Screening"] = _deploy_step(containers, "Screening", (registry,), tx, log, 6)
    modules = [deployed["FraudProof"], deployed["CommitteeDispute"]]
    log(f"[7/{_STEPS}] Staking.setSlashers([FraudProof, CommitteeDispute])")
    _log_receipt(staking.setSlashers(modules, tx), log)
    log(f"[8/{_STEPS}] ResultLedger.setDisputeModules([FraudProof, CommitteeDispute])")
    _log_receipt(ledger.setDisputeModules(modules, tx), log)
    return deployed


@contextlib.contextmanager
def _without_brownie_deployment_records() -> Iterator[None]:
    """Deploys without brownie's own records of live deployments (build/deployments/<chain-id>/ and
    ~/.brownie/deployments.db). The manifest is the record of a deployment; brownie's records go stale when a chain
    with the same id is reset (a restarted anvil), after which brownie refuses to connect to that network at all
    (ContractNotFound while loading them). Writing to deployments.db also fails in brownie 1.22 ("dict object
    expected; got Sources"), in a background thread, with a traceback in the middle of the output."""
    from brownie.network import contract as brownie_contract

    saved = brownie_contract._add_deployment, brownie_contract.ProjectContract._deployment_path
    brownie_contract._add_deployment = lambda contract, alias=None: None
    brownie_contract.ProjectContract._deployment_path = lambda self: None
    try:
        yield
    finally:
        brownie_contract._add_deployment, brownie_contract.ProjectContract._deployment_path = saved


def _forget_stale_brownie_deployments(containers: Mapping[str, Any]) -> None:
    """On live networks brownie remembers deployed contracts in build/deployments/<chain-id>/ and refuses
    (ContractExists) or silently reuses a remembered object when a new deployment lands on a remembered address.
    After an anvil restart the same deployer and nonces give the same addresses, so records of contracts that
    no longer have code on this chain are dropped before deploying."""
    from brownie import web3

    for container in containers.values():
        for contract in list(container):
            if not web3.eth.get_code(contract.address):
                container.remove(contract)


def _deploy_step(containers, name: str, args: tuple, tx: dict, log: Log, step: int):
    shown = ", ".join(_short(a) for a in args)
    log(f"[{step}/{_STEPS}] {name}({shown})")
    return _deploy(containers[name], args, tx, log)


def _deploy(container, args: tuple, tx: dict, log: Log):
    contract = container.deploy(*args, tx)
    log(f"      at {contract.address}")
    _log_receipt(contract.tx, log)
    return contract


def _log_receipt(receipt, log: Log) -> None:
    log(f"      block {receipt.block_number}, gas {receipt.gas_used}, {receipt.confirmations} confirmation(s)")


def _short(value: Any) -> str:
    # A deployed contract is shown by name (brownie's ProjectContract._name), anything else as is.
    return getattr(value, "_name", None) or str(value)


def _project_containers() -> dict[str, Any]:
    from brownie import project

    loaded = project.get_loaded_projects()
    if not loaded:
        raise RuntimeError("no brownie project is loaded: run from `brownie run`/`brownie test` or pass containers")
    return {name: loaded[0][name] for name in loaded[0].keys()}


def git_commit(root: Path | None = None) -> tuple[str | None, bool]:
    """The checked-out commit and whether contracts/ or interfaces/ differ from it (None outside git)."""
    root = root or Path(__file__).resolve().parents[2]
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--", "contracts", "interfaces"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None, False
    return sha, bool(status.strip())


def build_manifest(
    deployed: Mapping[str, Any],
    *,
    chain_id: int,
    network: str,
    deployer: str,
    params: DeployParams,
    confirmations: int,
    block_hash: Callable[[int], str],
) -> Manifest:
    """The manifest of a finished `deploy_suite` run. `block_hash(n)` returns the hash of block n."""
    contracts = {
        name: ContractRecord.create(
            deployed[name].address, deployed[name].abi, str(deployed[name].tx.txid), deployed[name].tx.block_number
        )
        for name in CONTRACT_NAMES
    }
    deploy_block = min(r.block for r in contracts.values())
    compiler = dict(deployed["Staking"]._build.get("compiler", {}))
    sha, dirty = git_commit()
    return Manifest(
        chain_id=int(chain_id),
        network=network,
        deployer=str(deployer),
        deploy_block=deploy_block,
        deploy_block_hash=block_hash(deploy_block),
        timestamp=datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
        git_commit=sha,
        git_dirty=dirty,
        confirmations=confirmations,
        parameters=params.to_dict(),
        compiler=compiler,
        contracts=contracts,
    )
