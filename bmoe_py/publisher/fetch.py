"""Loading a published model's files back, trusting nothing but the chain.

Every file is fetched by the CID the registry records, and refused unless (1) its bytes have that CID (computed
here, not taken from the IPFS node that served them), (2) they are a canonical file of the expected kind, (3) their
Merkle root is the root the registry records, and (4) for experts, the layers match the registered shapes and
requantisation. A refusal is a `WeightsMismatch` naming the model, the expert and version, the CID and what differs.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..model.int8_ref import IntLayer
from ..model.weights import (
    Gate,
    WeightsError,
    decode_safetensors,
    load_exact_expert,
    load_float_expert,
    load_gate,
    tensors_root,
    weights_root,
)
from ..storage.cid import cid_of_bytes, parse_cid
from .errors import NotPublished, WeightsMismatch
from .records import ExpertRecord, LayerSpec, Mode, ModelRecord, read_expert, read_model

if TYPE_CHECKING:
    from ..chain.client import Chain
    from ..model.exact import ExactMoE
    from ..model.moe import Expert
    from ..storage.client import IpfsClient

__all__ = [
    "LoadedExpert",
    "LoadedFloatExpert",
    "LoadedGate",
    "NotPublished",
    "WeightsMismatch",
    "load_exact_model_from_chain",
    "load_expert_from_chain",
    "load_float_expert_from_chain",
    "load_gate_from_chain",
]


@dataclass(frozen=True)
class LoadedExpert:
    model_id: int
    record: ExpertRecord
    layers: list[IntLayer]
    data: bytes


@dataclass(frozen=True)
class LoadedFloatExpert:
    model_id: int
    record: ExpertRecord
    expert: Expert  # the float Linear-ReLU-Linear module, on CPU
    data: bytes

    def forward(self, x: np.ndarray) -> np.ndarray:
        """float32 tokens [n, d_model] -> float32 outputs [n, d_model], on CPU."""
        import torch

        with torch.no_grad():
            return self.expert(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))).numpy()


@dataclass(frozen=True)
class LoadedGate:
    model: ModelRecord
    gate: Gate  # the float model without its experts, and the exact experts' token scales
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
        layers = load_exact_expert(data)
    except WeightsError as exc:
        raise WeightsMismatch(model_id, what, record.weights_cid, f"not an exact expert file: {exc}") from None
    root = weights_root(layers)
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


def load_float_expert_from_chain(
    chain: Chain, ipfs: IpfsClient, model_id: int, expert_index: int, version: int | None = None,
    *, timeout: float | None = None,
) -> LoadedFloatExpert:  # fmt: skip
    """One float expert version (default: the latest) of a Float model, verified against the registry: the bytes
    have the registered CID, they are a canonical `bmoe-expert-f32/1` file, its tensors root (protocol 2.3) is the
    registered weights root and its layer shapes are the registered ones."""
    model = read_model(chain, model_id, experts=False)
    if model.mode is not Mode.FLOAT:
        raise WeightsMismatch(model_id, f"expert {expert_index}", "", "the model is exact: use load_expert_from_chain")
    record = read_expert(chain, model_id, expert_index, version)
    if not record.published:
        raise NotPublished(f"model {model_id} expert {expert_index} has no published version")
    what = f"expert {expert_index} version {record.version}"
    data = _fetch(ipfs, model_id, what, record.weights_cid, timeout)
    try:
        tensors, metadata = decode_safetensors(data)
        expert = load_float_expert(data)
    except WeightsError as exc:
        raise WeightsMismatch(model_id, what, record.weights_cid, f"not a float expert file: {exc}") from None
    root = tensors_root(tensors, metadata)
    if root != record.weights_root:
        raise WeightsMismatch(
            model_id, what, record.weights_cid,
            f"the weights root of the file is 0x{root.hex()}, the chain records 0x{record.weights_root.hex()}",
        )  # fmt: skip
    specs = tuple(
        LayerSpec(linear.in_features, linear.out_features, 0, 0, False) for linear in (expert.fc1, expert.fc2)
    )
    if specs != record.layers:
        raise WeightsMismatch(model_id, what, record.weights_cid, _layer_difference(specs, record.layers))
    return LoadedFloatExpert(model_id, record, expert, data)


def load_gate_from_chain(chain: Chain, ipfs: IpfsClient, model_id: int, *, timeout: float | None = None) -> LoadedGate:
    """The model's gate bundle, verified against the gate CID and root of the registry."""
    model = read_model(chain, model_id, experts=False)
    data = _fetch(ipfs, model_id, "gate", model.gate_cid, timeout)
    try:
        gate = load_gate(data)
        root = tensors_root(*decode_safetensors(data))
    except WeightsError as exc:
        raise WeightsMismatch(model_id, "gate", model.gate_cid, f"not a gate bundle: {exc}") from None
    if root != model.gate_root:
        raise WeightsMismatch(
            model_id, "gate", model.gate_cid,
            f"the gate root of the file is 0x{root.hex()}, the chain records 0x{model.gate_root.hex()}",
        )  # fmt: skip
    config = gate.model.config
    if config.num_layers * config.num_experts != model.expert_count:
        raise WeightsMismatch(
            model_id, "gate", model.gate_cid,
            f"the bundle routes to {config.num_layers * config.num_experts} experts, the chain records {model.expert_count}",
        )  # fmt: skip
    return LoadedGate(model, gate, data)


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


def load_exact_model_from_chain(chain: Chain, ipfs: IpfsClient, model_id: int, *, timeout: float | None = None) -> ExactMoE:
    """The whole published exact model in this process: the gate and every expert's latest version, each verified.

    What an honest network of edge nodes must reproduce bit for bit; the reference of the tests, the demo and the
    runtime benchmark.
    """
    from ..model.exact import ExactMoE

    gate = load_gate_from_chain(chain, ipfs, model_id, timeout=timeout).gate
    config = gate.model.config
    experts = [
        [
            gate.exact_expert(layer, e, load_expert_from_chain(chain, ipfs, model_id, layer * config.num_experts + e, timeout=timeout).layers)
            for e in range(config.num_experts)
        ]
        for layer in range(config.num_layers)
    ]
    return ExactMoE(gate.model.eval(), experts)
