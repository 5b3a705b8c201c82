"""Publishing a model: pin every file to IPFS, then register the model and each of its experts on chain.

    files = model_files(model, exact_experts)      # canonical bytes, roots and layer specs (prepare.py)
    published = publish_model(chain, ipfs, files, PublishParams(challenge_window=DAY))

The order is what keeps a failure from leaving a half-registered model: everything that can be checked without
spending gas is checked first (the key, the deployment, the layers against the registry's rules, the balance
against the gas the transactions will need, the IPFS node), then every file is added and pinned, and only then
do transactions go out. If one of them still fails (the node went away, someone else spent the funds) the error
says which model id was registered and how far publishing got, and `publish_model(..., resume=model_id)` finishes
the job: experts whose latest version already has the right CID and root are skipped.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from web3.exceptions import ContractLogicError

from ..chain.client import ChainError, TransactionReverted
from ..model.int8_ref import MAX_MULTIPLIER, MAX_SHIFT
from ..storage.errors import IpfsError
from .errors import InsufficientFunds, PublishError
from .records import LayerSpec, Mode, read_expert, read_model

if TYPE_CHECKING:
    from ..chain.client import Chain
    from ..storage.client import IpfsClient

__all__ = [
    "ExpertFile",
    "GateFile",
    "InsufficientFunds",
    "ModelFiles",
    "PublishError",
    "PublishParams",
    "PublishedExpert",
    "PublishedModel",
    "publish_expert_gas_bound",
    "publish_model",
]

log = logging.getLogger("bmoe.publisher")

DAY = 24 * 3600
ETHER = 10**18
# Upper bounds of the gas of one registry call, used only to check the balance before the first transaction
# (publishExpert cannot be estimated before the model exists). Measured on anvil: 238,793 gas for a two-layer
# expert with a CIDv0 (tests/e2e/test_model_publish.py checks the bound); each layer adds one storage slot.
_PUBLISH_EXPERT_GAS = 260_000
_PUBLISH_EXPERT_GAS_PER_LAYER = 30_000


@dataclass(frozen=True)
class ExpertFile:
    """One expert, ready to publish: its canonical safetensors bytes, weights root and registry layers
    (exact: shapes and requantisation; float: shapes only, multiplier and shift 0)."""

    index: int
    data: bytes
    root: bytes
    layers: tuple[LayerSpec, ...]


@dataclass(frozen=True)
class GateFile:
    """The gate bundle (everything of the model but its experts) as canonical safetensors bytes, and its root."""

    data: bytes
    root: bytes


@dataclass(frozen=True)
class ModelFiles:
    gate: GateFile
    experts: tuple[ExpertFile, ...]
    mode: Mode = Mode.EXACT_INT8  # Float: bmoe-expert-f32/1 files, judged by committee within a tolerance


@dataclass(frozen=True)
class PublishParams:
    """The model's registry parameters (`IExpertRegistry.ModelParams`, less what the files determine)."""

    challenge_window: int = DAY
    min_node_stake: int = ETHER
    min_validator_stake: int = ETHER // 2
    confirmations: int = 1
    # Float models only: the agreement tolerance in millionths (docs/protocol.md 6); exact models have none.
    tolerance: int = 0


@dataclass(frozen=True)
class PublishedExpert:
    index: int
    version: int
    weights_cid: str
    weights_root: bytes
    layers: tuple[LayerSpec, ...]
    tx_hash: str | None  # None when a resumed publication found this version already on chain
    gas_used: int = 0


@dataclass(frozen=True)
class PublishedModel:
    chain_id: int
    model_id: int
    owner: str
    gate_cid: str
    gate_root: bytes
    register_tx: str | None  # None when resumed
    experts: tuple[PublishedExpert, ...]
    params: PublishParams
    gas_used: int = 0
    pinned: tuple[str, ...] = field(default=())


def publish_model(
    chain: Chain,
    ipfs: IpfsClient,
    files: ModelFiles,
    params: PublishParams = PublishParams(),
    *,
    resume: int | None = None,
) -> PublishedModel:
    """Pins `files` to the IPFS node behind `ipfs`, registers the model (ExactInt8, or Float with
    `params.tolerance`) with `params` and publishes one version of every expert, waiting for each receipt. With `resume=MODEL_ID` the model is not registered again:
    experts whose latest version already carries their CID and root are skipped, the others are published."""
    owner = chain.address  # raises ChainError without a key, before anything else happens
    _check_files(files)
    _check_tolerance(files, params)
    registry = chain.registry
    _check_layer_limits(chain, files)

    if resume is not None:
        existing = _check_resumable(chain, resume, files, owner)
    else:
        existing = {}
    todo = [expert for expert in files.experts if expert.index not in existing]

    _check_funds(chain, owner, files, params, todo, register=resume is None)

    log.info("IPFS: pinning %d files to %s", len(files.experts) + 1, ipfs.api)
    try:
        ipfs.id()
    except IpfsError as exc:
        raise PublishError(f"nothing was published: {exc}") from exc
    gate_cid = _pin(ipfs, files.gate.data, "gate.safetensors", "gate")
    expert_cids = {
        expert.index: _pin(ipfs, expert.data, f"expert-{expert.index}.safetensors", f"expert {expert.index}")
        for expert in files.experts
    }
    pinned = ipfs.pin_ls()
    missing = [cid for cid in [gate_cid, *expert_cids.values()] if cid not in pinned]
    if missing:
        raise PublishError(f"nothing was registered: {ipfs.api} does not list {', '.join(missing)} as pinned")

    gas_used = 0
    register_tx = None
    if resume is None:
        log.info(
            "chain %d: registering the model (%d experts, challenge window %ds) from %s",
            chain.chain_id, len(files.experts), params.challenge_window, owner,
        )  # fmt: skip
        call = registry.functions.registerModel(_model_params(files, params, gate_cid))
        try:
            receipt = chain.send(call, confirmations=params.confirmations)
        except (ChainError, TransactionReverted) as exc:
            raise PublishError(f"nothing was registered: {exc}") from exc
        model_id = int(chain.events(receipt, "ExpertRegistry", "ModelRegistered")[0]["modelId"])
        register_tx = _hex(receipt["transactionHash"])
        gas_used += int(receipt["gasUsed"])
        log.info("model %d registered (tx %s, gas %d)", model_id, register_tx, receipt["gasUsed"])
    else:
        model_id = resume
        if existing:
            log.info("model %d: experts %s are already published, skipping them", model_id, sorted(existing))

    published: dict[int, PublishedExpert] = dict(existing)
    for expert in todo:
        cid = expert_cids[expert.index]
        log.info("model %d: publishing expert %d (%s, root 0x%s)", model_id, expert.index, cid, expert.root.hex())
        call = registry.functions.publishExpert(
            model_id, expert.index, cid, expert.root, [layer.as_tuple() for layer in expert.layers]
        )
        try:
            receipt = chain.send(call, confirmations=params.confirmations)
        except (ChainError, TransactionReverted) as exc:
            done = sorted(published)
            raise PublishError(
                f"model {model_id} is registered but publishing expert {expert.index} failed: {exc}. "
                f"Experts published so far: {done or 'none'}; finish with `bmoe model publish --resume {model_id}` "
                "(same model files)"
            ) from exc
        version = int(chain.events(receipt, "ExpertRegistry", "ExpertPublished")[0]["version"])
        gas_used += int(receipt["gasUsed"])
        published[expert.index] = PublishedExpert(
            expert.index, version, cid, expert.root, expert.layers, _hex(receipt["transactionHash"]), int(receipt["gasUsed"])
        )
        log.info("expert %d version %d published (gas %d)", expert.index, version, receipt["gasUsed"])

    return PublishedModel(
        chain_id=chain.chain_id,
        model_id=model_id,
        owner=owner,
        gate_cid=gate_cid,
        gate_root=files.gate.root,
        register_tx=register_tx,
        experts=tuple(published[index] for index in sorted(published)),
        params=params,
        gas_used=gas_used,
        pinned=(gate_cid, *expert_cids.values()),
    )


def _check_files(files: ModelFiles) -> None:
    indices = [expert.index for expert in files.experts]
    if not indices:
        raise PublishError("a model needs at least one expert")
    if indices != list(range(len(indices))):
        raise PublishError(f"experts must be numbered 0..{len(indices) - 1} in order, got {indices}")
    for data, what in [(files.gate.data, "the gate"), *((e.data, f"expert {e.index}") for e in files.experts)]:
        if not data:
            raise PublishError(f"{what} has no bytes")
    if files.gate.root == bytes(32) or any(e.root == bytes(32) for e in files.experts):
        raise PublishError("a weights root is zero; roots come from the files (bmoe_py.publisher.artifacts)")


def _check_tolerance(files: ModelFiles, params: PublishParams) -> None:
    """The registry's rule: exact models have tolerance 0, float models a positive one (uint32 millionths)."""
    if files.mode is Mode.EXACT_INT8 and params.tolerance != 0:
        raise PublishError(f"an exact model is judged bit for bit: tolerance must be 0, not {params.tolerance}")
    if files.mode is Mode.FLOAT and not 0 < params.tolerance < 2**32:
        raise PublishError(f"a float model needs a tolerance in millionths, 1..{2**32 - 1}, not {params.tolerance}")


def _check_layer_limits(chain: Chain, files: ModelFiles) -> None:
    """The registry's `_checkLayers`, run locally so that an unpublishable expert stops us before the model is
    registered (the contract would only refuse it after)."""
    max_row = int(chain.call(chain.registry.functions.MAX_ROW_LENGTH()))
    max_layers = int(chain.call(chain.registry.functions.MAX_LAYERS()))
    for expert in files.experts:
        layers = expert.layers
        where = f"expert {expert.index}"
        if not 1 <= len(layers) <= max_layers:
            raise PublishError(f"{where} has {len(layers)} layers; the registry takes 1..{max_layers}")
        for i, layer in enumerate(layers):
            if layer.in_dim < 1 or layer.out_dim < 1:
                raise PublishError(f"{where} layer {i} has an empty shape {layer}")
            if layer.in_dim > max_row:
                raise PublishError(f"{where} layer {i}: rows of {layer.in_dim} weights exceed {max_row}")
            if i and layer.in_dim != layers[i - 1].out_dim:
                raise PublishError(f"{where} layer {i} takes {layer.in_dim} inputs, layer {i - 1} gives {layers[i - 1].out_dim}")
            if files.mode is Mode.FLOAT:
                if (layer.multiplier, layer.shift, layer.relu) != (0, 0, False):
                    raise PublishError(f"{where} layer {i}: a float layer registers its shape only, not {layer}")
            elif not 1 <= layer.multiplier <= MAX_MULTIPLIER or not 0 <= layer.shift <= MAX_SHIFT:
                raise PublishError(f"{where} layer {i}: requantisation {layer} is outside the protocol's limits")


def _check_resumable(chain: Chain, model_id: int, files: ModelFiles, owner: str) -> dict[int, PublishedExpert]:
    """The experts of `model_id` already published with exactly these files' roots and layers."""
    try:
        model = read_model(chain, model_id, experts=False)
    except TransactionReverted as exc:
        raise PublishError(f"cannot resume model {model_id}: {exc}") from exc
    if model.owner.lower() != owner.lower():
        raise PublishError(f"cannot resume model {model_id}: it is owned by {model.owner}, not {owner}")
    if model.expert_count != len(files.experts) or model.gate_root != files.gate.root:
        raise PublishError(
            f"cannot resume model {model_id}: it was registered with {model.expert_count} experts and gate root "
            f"0x{model.gate_root.hex()}, these files have {len(files.experts)} and 0x{files.gate.root.hex()}"
        )
    done = {}
    for expert in files.experts:
        record = read_expert(chain, model_id, expert.index)
        if record.published and record.weights_root == expert.root and record.layers == expert.layers:
            done[expert.index] = PublishedExpert(
                expert.index, record.version, record.weights_cid, record.weights_root, record.layers, None
            )
    return done


def publish_expert_gas_bound(layer_count: int) -> int:
    """An upper bound of the gas of one `publishExpert` with a CIDv0 and `layer_count` layers."""
    return _PUBLISH_EXPERT_GAS + _PUBLISH_EXPERT_GAS_PER_LAYER * layer_count


def _model_params(files: ModelFiles, params: PublishParams, gate_cid: str) -> tuple:
    """`IExpertRegistry.ModelParams` of the model."""
    return (
        int(files.mode),
        len(files.experts),
        params.tolerance,  # 0 for exact experts, judged bit for bit
        params.challenge_window,
        params.min_node_stake,
        params.min_validator_stake,
        gate_cid,
        files.gate.root,
    )


def _check_funds(
    chain: Chain, owner: str, files: ModelFiles, params: PublishParams, experts: Sequence[ExpertFile], *, register: bool
) -> None:
    """Estimates registerModel (which also runs the registry's checks of the parameters: a bad challenge window
    fails here, before anything is spent) and bounds the gas of the expert publications, then compares the
    worst-case fee with the balance."""
    w3 = chain.w3
    gas = 0
    if register:
        # The gate is not pinned yet: any CIDv0 (46 characters) costs the same gas as its real CID.
        placeholder = _model_params(files, params, "Qm" + "1" * 44)
        try:
            gas += chain.registry.functions.registerModel(placeholder).estimate_gas({"from": owner})
        except ContractLogicError as exc:
            decoded = chain.decode_error(getattr(exc, "data", None), "ExpertRegistry")
            raise PublishError(f"nothing was published: registerModel would revert: {decoded or exc}") from exc
    gas += sum(publish_expert_gas_bound(len(e.layers)) for e in experts)
    block = w3.eth.get_block("latest")
    base_fee = int(block.get("baseFeePerGas", 0) or 0)
    # web3 offers maxFeePerGas = 2 * baseFee + tip, the most a transaction may cost per gas.
    try:
        tip = int(w3.eth.max_priority_fee)
    except Exception:  # nodes without eth_maxPriorityFeePerGas
        tip = 0
    fee_per_gas = max(2 * base_fee + tip, int(w3.eth.gas_price))
    need = gas * fee_per_gas
    balance = int(w3.eth.get_balance(owner))
    log.info(
        "chain %d: %s has %.6f ETH; publishing needs at most %d gas (%.6f ETH at %.2f gwei)",
        chain.chain_id, owner, balance / ETHER, gas, need / ETHER, fee_per_gas / 1e9,
    )  # fmt: skip
    if balance < need:
        raise InsufficientFunds(
            f"nothing was published: {owner} has {balance / ETHER:.6f} ETH on chain {chain.chain_id}, publishing "
            f"{len(experts)} experts needs up to {need / ETHER:.6f} ETH of gas ({gas} gas at {fee_per_gas / 1e9:.2f} gwei)"
        )


def _pin(ipfs: IpfsClient, data: bytes, name: str, what: str) -> str:
    try:
        cid = ipfs.add_bytes(data, name)  # adds with pin=true and checks the CID the node answers
        ipfs.pin_add(cid)  # a no-op on a node that pinned on add; a real Kubo with other defaults pins here
    except IpfsError as exc:
        raise PublishError(f"nothing was registered: pinning {what} to {ipfs.api} failed: {exc}") from exc
    log.info("IPFS: %s pinned as %s (%d bytes)", what, cid, len(data))
    return cid


def _hex(value: bytes | str) -> str:
    text = value.hex() if isinstance(value, (bytes, bytearray)) else str(value)
    return text if text.startswith("0x") else "0x" + text
