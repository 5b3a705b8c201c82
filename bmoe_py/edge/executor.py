"""The experts a node serves, loaded from IPFS by the CIDs on chain and verified before use, resident on CUDA when
there is one: exact int8 experts on `ExactExpertKernel` (bit for bit equal to the on-chain arithmetic), float
experts as a torch module."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..model.kernel import ExactExpertKernel
from ..model.weights import WeightsError, load_float_expert
from ..publisher.errors import NotPublished, WeightsMismatch
from ..publisher.fetch import _fetch, load_expert_from_chain
from ..publisher.records import Mode, read_expert

if TYPE_CHECKING:
    from ..chain.client import Chain
    from ..storage.client import IpfsClient

__all__ = ["LoadedExecutor", "load_executor", "pick_device"]

log = logging.getLogger("bmoe.edge")


def pick_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda: no CUDA device is available")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


@dataclass
class LoadedExecutor:
    """One expert version, ready to run."""

    index: int
    version: int
    exact: bool
    in_dim: int
    out_dim: int
    kernel: ExactExpertKernel | None = None
    module: torch.nn.Module | None = None

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.int8) if self.exact else np.dtype("<f4")

    def run(self, tokens: np.ndarray) -> np.ndarray:
        """Outputs [n, out_dim] for tokens [n, in_dim] (int8 for exact experts, float32 for float ones)."""
        if self.exact:
            assert self.kernel is not None
            # a copy: frames are decoded as read-only views of the request body, which torch will not wrap
            return self.kernel(torch.from_numpy(np.array(tokens, dtype=np.int8))).cpu().numpy()
        assert self.module is not None
        device = next(self.module.parameters()).device
        with torch.inference_mode():
            return self.module(torch.from_numpy(np.array(tokens, dtype=np.float32)).to(device)).cpu().numpy()

    def activations(self, token: np.ndarray) -> list[np.ndarray]:
        """Every layer's int8 output for one exact token (what the node reveals when challenged)."""
        assert self.kernel is not None, "only exact experts have provable activations"
        layers = self.kernel.forward_all(torch.from_numpy(np.array(token, dtype=np.int8).reshape(1, -1)))
        return [a.cpu().numpy()[0] for a in layers]


def load_executor(chain: Chain, ipfs: IpfsClient, model_id: int, mode: Mode, index: int, device: torch.device) -> LoadedExecutor:
    """The latest published version of expert `index`, verified against the registry (WeightsMismatch otherwise)."""
    if mode is Mode.EXACT_INT8:
        loaded = load_expert_from_chain(chain, ipfs, model_id, index)
        kernel = ExactExpertKernel(loaded.layers, device)
        return LoadedExecutor(index, loaded.record.version, True, kernel.in_dim, kernel.out_dim, kernel=kernel)
    record = read_expert(chain, model_id, index)
    if not record.published:
        raise NotPublished(f"model {model_id} expert {index} has no published version")
    what = f"expert {index} version {record.version}"
    data = _fetch(ipfs, model_id, what, record.weights_cid, None)
    try:
        module = load_float_expert(data, expected_root=record.weights_root)
    except WeightsError as exc:
        raise WeightsMismatch(model_id, what, record.weights_cid, str(exc)) from None
    module = module.to(device).eval()
    first = next(module.parameters())
    return LoadedExecutor(index, record.version, False, int(first.shape[1]), int(first.shape[1]), module=module)
