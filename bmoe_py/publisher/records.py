"""What the `ExpertRegistry` records about a model, as plain dataclasses (docs/protocol.md section 1).

`read_model` is what `bmoe model show` prints and what every download is checked against: the chain is the only
source of truth for which bytes belong to a model, so nothing here is cached.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING, Any

from ..model.int8_ref import IntLayer

if TYPE_CHECKING:
    from ..chain.client import Chain

__all__ = ["ExpertRecord", "HostRecord", "LayerSpec", "Mode", "ModelRecord", "read_expert", "read_model"]


class Mode(IntEnum):
    """`IExpertRegistry.Mode`."""

    EXACT_INT8 = 0
    FLOAT = 1


@dataclass(frozen=True)
class LayerSpec:
    """`IExpertRegistry.Layer`: the shape and requantisation of one exact layer, as registered on chain."""

    in_dim: int
    out_dim: int
    multiplier: int
    shift: int
    relu: bool

    @classmethod
    def of(cls, layer: IntLayer) -> LayerSpec:
        return cls(layer.in_dim, layer.out_dim, int(layer.multiplier), int(layer.shift), bool(layer.relu))

    @classmethod
    def from_chain(cls, raw: Sequence[Any]) -> LayerSpec:
        in_dim, out_dim, multiplier, shift, relu = raw
        return cls(int(in_dim), int(out_dim), int(multiplier), int(shift), bool(relu))

    def as_tuple(self) -> tuple[int, int, int, int, bool]:
        """The struct as a contract call argument."""
        return (self.in_dim, self.out_dim, self.multiplier, self.shift, self.relu)

    def __str__(self) -> str:
        relu = " relu" if self.relu else ""
        return f"{self.in_dim}->{self.out_dim} x{self.multiplier}>>{self.shift}{relu}"


@dataclass(frozen=True)
class HostRecord:
    address: str
    endpoint: str
    active: bool  # its stake still covers the model's minNodeStake


@dataclass(frozen=True)
class ExpertRecord:
    """One version of one expert. `version == 0` means the expert was never published (no CID, no root)."""

    index: int
    version: int
    latest_version: int
    weights_cid: str
    weights_root: bytes
    published_at: int
    layers: tuple[LayerSpec, ...]
    hosts: tuple[HostRecord, ...] = ()

    @property
    def published(self) -> bool:
        return self.version > 0


@dataclass(frozen=True)
class ModelRecord:
    model_id: int
    owner: str
    mode: Mode
    expert_count: int
    tolerance: int
    challenge_window: int
    min_node_stake: int
    min_validator_stake: int
    gate_cid: str
    gate_root: bytes
    experts: tuple[ExpertRecord, ...] = ()


def read_model(chain: Chain, model_id: int, *, experts: bool = True, hosts: bool = True) -> ModelRecord:
    """The model and (with `experts`) the latest version of each of its experts and (with `hosts`) their hosts.

    An unknown model raises `TransactionReverted` whose name is `UnknownModel`.
    """
    registry = chain.registry
    raw = chain.call(registry.functions.model(model_id))
    owner, mode, expert_count, tolerance, window, min_node, min_validator, gate_cid, gate_root = raw
    records = ()
    if experts:
        records = tuple(read_expert(chain, model_id, index, hosts=hosts) for index in range(expert_count))
    return ModelRecord(
        model_id=model_id,
        owner=owner,
        mode=Mode(mode),
        expert_count=int(expert_count),
        tolerance=int(tolerance),
        challenge_window=int(window),
        min_node_stake=int(min_node),
        min_validator_stake=int(min_validator),
        gate_cid=gate_cid,
        gate_root=bytes(gate_root),
        experts=records,
    )


def read_expert(
    chain: Chain, model_id: int, expert_index: int, version: int | None = None, *, hosts: bool = False
) -> ExpertRecord:
    """One version of an expert (default: the latest). Unknown experts and versions raise `TransactionReverted`
    (`UnknownExpert`, `UnknownVersion`); an expert that was never published comes back with `version == 0`
    when no version was asked for."""
    registry = chain.registry
    latest = int(chain.call(registry.functions.latestVersion(model_id, expert_index)))
    wanted = latest if version is None else version
    host_records: tuple[HostRecord, ...] = ()
    if hosts:
        host_records = tuple(
            HostRecord(
                address,
                chain.call(registry.functions.endpointOf(model_id, expert_index, address)),
                bool(chain.call(registry.functions.isActiveHost(model_id, expert_index, address))),
            )
            for address in chain.call(registry.functions.hosts(model_id, expert_index))
        )
    if wanted == 0:
        return ExpertRecord(expert_index, 0, latest, "", bytes(32), 0, (), host_records)
    cid, root, published_at = chain.call(registry.functions.expertVersion(model_id, expert_index, wanted))
    layers = chain.call(registry.functions.layers(model_id, expert_index, wanted))
    return ExpertRecord(
        index=expert_index,
        version=wanted,
        latest_version=latest,
        weights_cid=cid,
        weights_root=bytes(root),
        published_at=int(published_at),
        layers=tuple(LayerSpec.from_chain(layer) for layer in layers),
        hosts=host_records,
    )
