"""Checking one commitment: fetch its bundle, check it against the commitment, re-execute a random sample.

The sample is drawn with the operating system's CSPRNG (`secrets`): a node that could predict which tokens get
checked would cheat on the others. ceil(p * n) tokens per commitment, so every commitment gets at least one check.
Exact experts are re-executed with the integer reference arithmetic and compared bit for bit; float experts with
their float32 layers and compared within the model's tolerance (docs/protocol.md 6). Training windows
(`bmoe-train-window/1`, protocol 11) are recognised by their format and handed to `training.TrainingVerifier`.
"""
from __future__ import annotations

import json
import math
import secrets
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import numpy as np

from ..crypto.commitments import Commitment
from ..protocol.bundle import BUNDLE_FORMAT, BundleError, BundleToken, WindowBundle
from ..protocol.tolerance import within_tolerance
from ..storage.cid import cid_of_bytes, parse_cid

if TYPE_CHECKING:
    from ..chain.client import Chain
    from ..storage.client import IpfsClient
    from ..training.records import TrainWindowBundle
    from .training import StepToken

__all__ = ["BadBundle", "CheckResult", "Checker", "bundle_format", "sample_positions", "within_tolerance"]


class BadBundle(Exception):
    """The bundle cannot be fetched, is malformed, or does not match its commitment."""


@dataclass(frozen=True)
class CheckResult:
    bundle: WindowBundle | TrainWindowBundle
    sampled: dict[int, bool]  # position (token, or step of a training window) -> output correct
    priority: bool = False  # every position checked: a training window of a node flagged by screening

    @property
    def wrong(self) -> list[int]:
        return sorted(p for p, ok in self.sampled.items() if not ok)


def bundle_format(data: bytes) -> str | None:
    """The `format` of a B-MoE safetensors file's metadata, read from its header alone (None if there is none)."""
    try:
        (length,) = struct.unpack("<Q", data[:8])
        header = json.loads(data[8 : 8 + length])
        # "bmoe" is model.weights.METADATA_KEY, spelled out: that module imports torch, which exact validators
        # never need.
        fmt = json.loads(header["__metadata__"]["bmoe"]).get("format")
    except (struct.error, ValueError, KeyError, TypeError, AttributeError):
        return None
    return fmt if isinstance(fmt, str) else None


def sample_positions(n: int, rate: float, rng: secrets.SystemRandom | None = None) -> list[int]:
    """ceil(rate * n) distinct positions out of n (at least one, at most n), unpredictable to the node."""
    k = min(n, max(1, math.ceil(rate * n)))
    return sorted((rng or secrets.SystemRandom()).sample(range(n), k))


class Checker:
    """Re-executes the tokens of one model's commitments with its registered (verified) experts."""

    def __init__(self, chain: Chain, ipfs: IpfsClient, model_id: int, *, ipfs_timeout: float = 30.0) -> None:
        from ..publisher.records import Mode, read_model

        self.chain = chain
        self.ipfs = ipfs
        self.model_id = model_id
        self.ipfs_timeout = ipfs_timeout
        record = read_model(chain, model_id, experts=False)
        self.exact = record.mode is Mode.EXACT_INT8
        self.tolerance = record.tolerance
        self._experts: dict[tuple[int, int], Callable[[np.ndarray], np.ndarray]] = {}
        self._training = None

    @property
    def training(self):
        """The verifier of training windows (`training.TrainingVerifier`), made on first use."""
        if self._training is None:
            from .training import TrainingVerifier

            self._training = TrainingVerifier(
                self.chain, self.ipfs, self.model_id, self.tolerance, ipfs_timeout=self.ipfs_timeout
            )
        return self._training

    def fetch(self, commitment: Commitment, cid: str) -> WindowBundle | TrainWindowBundle:
        """The commitment's bundle, checked: its bytes have `cid`, its metadata and root are the commitment's."""
        try:
            data = self.ipfs.cat(cid, self.ipfs_timeout)
        except Exception as exc:  # the storage client's errors and a malformed CID alike: no bundle to check
            raise BadBundle(f"cannot fetch bundle {cid}: {exc}") from None
        if parse_cid(cid_of_bytes(data)).multihash != parse_cid(cid).multihash:
            raise BadBundle(f"the bytes served for {cid} have another CID")
        # Any other format is a training window or nothing (TrainWindowBundle.decode says which); only float
        # experts are trained. Training windows are told apart here, without importing torch for exact models.
        if not self.exact and bundle_format(data) != BUNDLE_FORMAT:
            return self.training.decode(commitment, data)
        try:
            bundle = WindowBundle.decode(data)
        except BundleError as exc:
            raise BadBundle(str(exc)) from None
        c = commitment
        expected = (c.node.lower(), c.task_id, self.model_id, c.expert_index, c.expert_version, c.token_count)
        actual = (bundle.node.lower(), bundle.task_id, bundle.model_id, bundle.expert_index, bundle.expert_version, len(bundle))
        if actual != expected:
            raise BadBundle(f"bundle metadata {actual} does not match the commitment {expected}")
        if bundle.exact != self.exact:
            raise BadBundle("bundle tensors are of the wrong kind for the model's mode")
        if bundle.root != c.root:
            raise BadBundle(f"bundle root 0x{bundle.root.hex()} is not the committed 0x{c.root.hex()}")
        return bundle

    def check(self, commitment: Commitment, cid: str, rate: float) -> CheckResult:
        bundle = self.fetch(commitment, cid)
        if not isinstance(bundle, WindowBundle):
            flagged = self.training.flagged(bundle.node)
            positions = list(range(len(bundle))) if flagged else sample_positions(len(bundle), rate)
            return CheckResult(bundle, self.training.check(bundle, positions), priority=flagged)
        positions = sample_positions(len(bundle), rate)
        return CheckResult(bundle, {p: self.correct(bundle, p) for p in positions})

    def token(self, bundle: WindowBundle | TrainWindowBundle, position: int) -> BundleToken | StepToken:
        """What a challenge of one token (or training step) needs: its leaf and proof."""
        if not isinstance(bundle, WindowBundle):
            return self.training.token(bundle, position)
        return bundle.token(position)

    def correct(self, bundle: WindowBundle | TrainWindowBundle, position: int) -> bool:
        """Whether the committed output of one token is what the registered expert computes (for a training
        window: whether the step is right, `records.judge_step`)."""
        if not isinstance(bundle, WindowBundle):
            return self.training.correct(bundle, position)
        run = self.executor(bundle.expert_index, bundle.expert_version)
        x = bundle.inputs[position]
        try:
            expected = run(x)
        except ValueError:  # an input of the wrong shape cannot have a right output
            return False
        claimed = bundle.outputs[position]
        if self.exact:
            return bool(np.array_equal(claimed, expected))
        return within_tolerance(claimed, expected, self.tolerance)

    def executor(self, expert_index: int, version: int) -> Callable[[np.ndarray], np.ndarray]:
        """The registered expert as a function of one token, loaded and verified once."""
        key = (expert_index, version)
        if key not in self._experts:
            if self.exact:
                from ..model.int8_ref import expert_forward
                from ..publisher.fetch import load_expert_from_chain

                layers = load_expert_from_chain(
                    self.chain, self.ipfs, self.model_id, expert_index, version, timeout=self.ipfs_timeout
                ).layers
                self._experts[key] = lambda x, layers=layers: expert_forward(layers, x[None, :])[-1][0]
            else:
                from ..publisher.fetch import load_float_expert_from_chain

                expert = load_float_expert_from_chain(
                    self.chain, self.ipfs, self.model_id, expert_index, version, timeout=self.ipfs_timeout
                )
                self._experts[key] = lambda x, expert=expert: expert.forward(x[None, :])[0]
        return self._experts[key]
