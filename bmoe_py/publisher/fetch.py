"""Loading a published model's files back, trusting nothing but the chain.

Every file is fetched by the CID the registry records, and refused unless (1) its bytes have that CID (computed
here, not taken from the IPFS node), (2) they parse as the expected kind of file, (3) their Merkle root is the root
the registry records, and (4) for experts, the layers match the registered shapes and requantisation. A refusal is
a `WeightsMismatch` naming the model, the expert and version, the CID, and what differs.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..crypto.leaves import weights_tree
from ..model.int8_ref import IntLayer
from ..storage.cid import cid_of_bytes, parse_cid
from .artifacts import FileFormatError, GateBundle, decode_expert, decode_gate
from .records import ExpertRecord, LayerSpec, ModelRecord, read_expert, read_model

if TYPE_CHECKING:
    from ..chain.client import Chain
    from ..storage.client import IpfsClient

__all__ = ["LoadedExpert", "LoadedGate", "NotPublished", "WeightsMismatch", "load_expert_from_chain", "load_gate_from_chain"]


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


@dataclass(frozen=True)
class LoadedExpert:
    model_id: int
    record: ExpertRecord
    layers: list[IntLayer]
    data: bytes


@dataclass(frozen=True)
class LoadedGate:
    model: ModelRecord
    bundle: GateBundle
    data: bytes


def load_expert_from_chain(
    chain: Chain, ipfs: IpfsClient, model_id: int, expert_index: int, version: int | None = None,
    *, timeout: float | None = None,
) -> LoadedExpert:  # fmt: skip
    """The int8 layers of one expert version (default: the latest), verified against the registry."""
    record = read_expert(chain, model_id, expert_index, version)
    if not record.published:
        raise NotPublished(f"model {model_id} expert {expert_index} has no published version")
    what = f"expert {expert_index} version {record.version}"
    data = _fetch(ipfs, model_id, what, record.weights_cid, timeout)
    try:
        layers = decode_expert(data)
    except (FileFormatError, ValueError) as exc:
        raise WeightsMismatch(model_id, what, record.weights_cid, f"not an expert file: {exc}") from None
    root = weights_tree(layers).root
    if root != record.weights_root:
        raise WeightsMismatch(
            model_id, what, record.weights_cid,
            f"the weights root of the file is 0x{root.hex()}, the chain records 0x{record.weights_root.hex()}",
        )  # fmt: skip
    # The root covers weights and biases; the requantisation is registered beside it.
    specs = tuple(LayerSpec.of(layer) for layer in layers)
    if specs != record.layers:
        raise WeightsMismatch(model_id, what, record.weights_cid, _layer_difference(specs, record.layers))
    return LoadedExpert(model_id, record, layers, data)


def load_gate_from_chain(chain: Chain, ipfs: IpfsClient, model_id: int, *, timeout: float | None = None) -> LoadedGate:
    """The model's gate bundle, verified against the gate CID and root of the registry."""
    model = read_model(chain, model_id, experts=False)
    data = _fetch(ipfs, model_id, "gate", model.gate_cid, timeout)
    try:
        bundle = decode_gate(data)
    except FileFormatError as exc:
        raise WeightsMismatch(model_id, "gate", model.gate_cid, f"not a gate bundle: {exc}") from None
    root = bundle.root
    if root != model.gate_root:
        raise WeightsMismatch(
            model_id, "gate", model.gate_cid,
            f"the gate root of the file is 0x{root.hex()}, the chain records 0x{model.gate_root.hex()}",
        )  # fmt: skip
    count = bundle.metadata.get("expert_count")
    if count != model.expert_count:
        raise WeightsMismatch(
            model_id, "gate", model.gate_cid, f"the bundle routes to {count} experts, the chain records {model.expert_count}"
        )
    return LoadedGate(model, bundle, data)


def _fetch(ipfs: IpfsClient, model_id: int, what: str, cid: str, timeout: float | None) -> bytes:
    """The bytes of `cid`, checked against the CID itself: the node that served them is not trusted."""
    data = ipfs.cat(cid, timeout)
    actual = cid_of_bytes(data)
    if parse_cid(actual).multihash != parse_cid(cid).multihash:
        raise WeightsMismatch(
            model_id, what, cid, f"the {len(data)} bytes received from {ipfs.api} have CID {actual}, not the registered one"
        )
    return data


def _layer_difference(file: tuple[LayerSpec, ...], chain: tuple[LayerSpec, ...]) -> str:
    if len(file) != len(chain):
        return f"the file has {len(file)} layers, the chain records {len(chain)}"
    for i, (a, b) in enumerate(zip(file, chain)):
        if a != b:
            return f"layer {i} is {a} in the file but {b} on chain"
    return "the layers differ"  # pragma: no cover

