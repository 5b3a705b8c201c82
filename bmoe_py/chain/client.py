"""The contract suite from Python, without brownie: what the edge node, publisher, validator and CLI use.

    chain = connect("http://127.0.0.1:8545", private_key=key)
    chain.staking.functions.stakeOf(chain.address).call()
    receipt = chain.send(chain.staking.functions.deposit(), value=10**18)

`connect` reads the chain id from the node, loads `deployments/<chain-id>.json`, checks that the deployment is still
on that chain, and returns a `Chain` with a web3 contract handle per contract. `send` signs with the local key,
waits for the receipt, and raises `TransactionReverted` with the custom error decoded from the ABIs.
"""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.exceptions import ContractLogicError
from web3.logs import DISCARD
from web3.types import TxReceipt

from .errors import DecodedError, ErrorDecoder
from .manifest import Manifest, ManifestError, deployment_gone, load_manifest, manifest_path


DEFAULT_RPC_URL = "http://127.0.0.1:8545"  # the local anvil of `make deploy`


def default_rpc_url() -> str:
    """`$BMOE_RPC_URL`, else the local chain that `make deploy` starts."""
    return os.environ.get("BMOE_RPC_URL") or DEFAULT_RPC_URL


class ChainError(Exception):
    """The node is unreachable, no key was given, or a transaction could not be sent."""


class TransactionReverted(ChainError):
    """A call or transaction reverted; `error` is the decoded custom error (None when the node gave no data)."""

    def __init__(self, action: str, error: DecodedError | None, receipt: TxReceipt | None = None):
        self.action = action
        self.error = error
        self.receipt = receipt
        super().__init__(f"{action} reverted: {error if error else 'no reason given'}")

    @property
    def name(self) -> str | None:
        """The error's name (`"WrongBond"`), handy for `except TransactionReverted as e: if e.name == ...`."""
        return self.error.name if self.error else None


class Chain:
    """A connection to one deployment. Thread-safe for `send` (nonces are assigned under a lock)."""

    def __init__(self, w3: Web3, manifest: Manifest, account: LocalAccount | None = None):
        self.w3 = w3
        self.manifest = manifest
        self.account = account
        self._contracts: dict[str, Contract] = {
            name: w3.eth.contract(address=record.address, abi=record.abi)
            for name, record in manifest.contracts.items()
        }
        self._names = {record.address.lower(): name for name, record in manifest.contracts.items()}
        self.errors = ErrorDecoder({name: record.abi for name, record in manifest.contracts.items()})
        self._lock = threading.Lock()

    # Typed handles, one per contract of docs/protocol.md section 1.
    @property
    def staking(self) -> Contract:
        return self._contracts["Staking"]

    @property
    def registry(self) -> Contract:
        return self._contracts["ExpertRegistry"]

    @property
    def ledger(self) -> Contract:
        return self._contracts["ResultLedger"]

    @property
    def fraud_proof(self) -> Contract:
        return self._contracts["FraudProof"]

    @property
    def committee(self) -> Contract:
        return self._contracts["CommitteeDispute"]

    @property
    def screening(self) -> Contract:
        return self._contracts["Screening"]

    def contract(self, name: str) -> Contract:
        try:
            return self._contracts[name]
        except KeyError:
            raise ManifestError(f"the deployment on chain {self.manifest.chain_id} has no contract {name!r}") from None

    @property
    def chain_id(self) -> int:
        return self.manifest.chain_id

    @property
    def address(self) -> str:
        """The address of the local key; transactions are sent from it."""
        if self.account is None:
            raise ChainError("no private key was given to connect(): this connection can only read")
        return self.account.address

    def call(self, fn: ContractFunction, block: int | str = "latest") -> Any:
        """Calls a view; a revert raises TransactionReverted with the decoded error."""
        try:
            return fn.call({"from": self.account.address} if self.account else {}, block_identifier=block)
        except ContractLogicError as exc:
            raise self._reverted(f"{self._describe(fn)} (call)", exc.data, fn) from None

    def send(
        self,
        fn: ContractFunction,
        *,
        value: int = 0,
        gas: int | None = None,
        confirmations: int = 1,
        timeout: float = 120.0,
    ) -> TxReceipt:
        """Signs `fn` with the local key, sends it and waits for its receipt (and `confirmations` blocks).

        Gas is estimated unless given; a transaction that would revert raises before it is sent, so no gas is
        spent on it. One that reverts when mined raises too, with the receipt attached.
        """
        sender = self.address
        action = self._describe(fn)
        with self._lock:
            params: dict[str, Any] = {
                "from": sender,
                "value": value,
                "nonce": self.w3.eth.get_transaction_count(sender, "pending"),
            }
            if gas is not None:
                params["gas"] = gas
            try:
                tx = fn.build_transaction(params)
            except ContractLogicError as exc:
                raise self._reverted(action, exc.data, fn) from None
            signed = self.account.sign_transaction(tx)
            tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=timeout)
        if receipt["status"] != 1:
            raise self._reverted(action, self._replay(tx, receipt), fn, receipt)
        self.wait_for_confirmations(receipt, confirmations, timeout)
        return receipt

    def events(self, receipt: TxReceipt, contract: str, event: str) -> list[dict[str, Any]]:
        """The arguments of every `event` that `contract` emitted in the transaction."""
        logs = self.contract(contract).events[event]().process_receipt(receipt, errors=DISCARD)
        return [dict(log["args"]) for log in logs]

    def wait_for_confirmations(self, receipt: TxReceipt, confirmations: int, timeout: float = 120.0) -> None:
        """Blocks until the receipt's block has `confirmations - 1` blocks on top of it."""
        target = receipt["blockNumber"] + confirmations - 1
        deadline = time.monotonic() + timeout
        while self.w3.eth.block_number < target:
            if time.monotonic() > deadline:
                raise ChainError(f"no {confirmations} confirmations for {receipt['transactionHash'].hex()} in {timeout}s")
            time.sleep(0.5)

    def decode_error(self, data: bytes | str | None, contract: str | None = None) -> DecodedError | None:
        return self.errors.decode(data, prefer=contract)

    def _describe(self, fn: ContractFunction) -> str:
        return f"{self._names.get(str(fn.address).lower(), fn.address)}.{fn.fn_name}"

    def _reverted(self, action: str, data: Any, fn: ContractFunction, receipt: TxReceipt | None = None):
        contract = self._names.get(str(fn.address).lower())
        return TransactionReverted(action, self.errors.decode(data, prefer=contract), receipt)

    def _replay(self, tx: dict[str, Any], receipt: TxReceipt) -> Any:
        """A mined transaction's receipt carries no revert data: re-run it as a call in its block to get it."""
        call = {k: tx[k] for k in ("from", "to", "data", "value", "gas") if k in tx}
        try:
            self.w3.eth.call(call, block_identifier=receipt["blockNumber"])
        except ContractLogicError as exc:
            return exc.data
        return None


def connect(
    rpc_url: str,
    private_key: str | bytes | None = None,
    *,
    deployments_dir: Path | str | None = None,
    check_deployed: bool = True,
    timeout: float = 30.0,
) -> Chain:
    """Connects to the node at `rpc_url` and the deployment recorded for its chain id.

    `check_deployed` (default) verifies that the contracts are still there, so that a client started against a
    reset anvil fails at once with a clear message instead of on its first call.
    """
    w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": timeout}))
    try:
        chain_id = w3.eth.chain_id
    except Exception as exc:  # requests' and web3's connection errors share no useful base class
        raise ChainError(f"no Ethereum node answers at {rpc_url} ({type(exc).__name__}): is the chain running?") from None
    manifest = load_manifest(chain_id, deployments_dir)
    if check_deployed:
        reason = deployment_gone(manifest, w3)
        if reason:
            raise ManifestError(
                f"{manifest_path(chain_id, deployments_dir)} is stale: {reason}; redeploy (`make deploy` locally)"
            )
    account = Account.from_key(private_key) if private_key else None
    return Chain(w3, manifest, account)
