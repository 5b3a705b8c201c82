"""A small token-level Mixture-of-Experts classifier in PyTorch.

An input vector is cut into patches (tokens); each token is projected to `d_model`, gets a learned position
embedding, and passes `num_layers` MoE blocks; the head reads the flattened tokens. An MoE block is pre-norm and
residual: `h + sum_j g_j * expert_j(norm(h))` over the top-k experts of each token. The expert is the only part that
edge nodes run, so it is kept a plain Linear-ReLU-Linear block that quantises exactly (`quantize.py`).

Experts are called through an `ExpertRunner`, one call per MoE layer with every expert's batch of tokens, so the
same model runs its float experts locally, exact int8 experts (`exact.py`) or remote experts (the publisher).
Everything follows the device of the parameters: `.to("cuda")` is the only change for a GPU.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "BlockRunner",
    "Expert",
    "ExpertRunner",
    "MoEBlock",
    "MoEConfig",
    "MoEModel",
    "ModelOutput",
    "Routing",
    "TopKGate",
    "default_device",
    "load_balancing_loss",
]

# {expert index: float tokens [n, d_model]} -> {expert index: float outputs [n, d_model]}, for one MoE block
BlockRunner = Callable[[dict[int, torch.Tensor]], dict[int, torch.Tensor]]
# the same for a whole model: (MoE layer index, batches) -> outputs
ExpertRunner = Callable[[int, dict[int, torch.Tensor]], dict[int, torch.Tensor]]


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@dataclass(frozen=True)
class MoEConfig:
    """Shape of an `MoEModel`. `patch_size=None` makes the whole input one token (one routing per sample)."""

    input_dim: int
    num_classes: int
    patch_size: int | None = None
    patch_stride: int | None = None  # defaults to patch_size (no overlap)
    d_model: int = 64
    d_hidden: int = 128
    num_experts: int = 8
    k: int = 2
    num_layers: int = 1
    noisy_gating: bool = False
    aux_loss_weight: float = 0.01

    def __post_init__(self) -> None:
        if not 1 <= self.k <= self.num_experts:
            raise ValueError(f"k={self.k} must be in 1..num_experts={self.num_experts}")
        if self.num_layers < 1:
            raise ValueError("num_layers must be at least 1")
        if not 1 <= self.patch <= self.input_dim:
            raise ValueError(f"patch_size {self.patch_size} must be in 1..input_dim={self.input_dim}")
        if self.stride < 1:
            raise ValueError("patch_stride must be positive")

    @property
    def patch(self) -> int:
        return self.input_dim if self.patch_size is None else self.patch_size

    @property
    def stride(self) -> int:
        return self.patch if self.patch_stride is None else self.patch_stride

    @property
    def num_tokens(self) -> int:
        """Tokens per sample; input features past the last whole patch are dropped."""
        return (self.input_dim - self.patch) // self.stride + 1

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> MoEConfig:
        return cls(**data)


@dataclass(frozen=True)
class Routing:
    """Top-k routing of n tokens: `indices`/`weights` [n, k] (weights sum to 1 per token), `probs` [n, E]."""

    indices: torch.Tensor
    weights: torch.Tensor
    probs: torch.Tensor
    aux_loss: torch.Tensor

    def groups(self) -> list[tuple[int, torch.Tensor, torch.Tensor]]:
        """(expert, token indices, gate weights) for every expert that got at least one token, in expert order."""
        num_experts = self.probs.shape[1]
        flat_expert = self.indices.reshape(-1)
        flat_token = torch.arange(self.indices.shape[0], device=flat_expert.device).repeat_interleave(
            self.indices.shape[1]
        )
        flat_weight = self.weights.reshape(-1)
        order = torch.argsort(flat_expert, stable=True)  # tokens stay in order within an expert
        counts = torch.bincount(flat_expert, minlength=num_experts).tolist()
        groups, start = [], 0
        for expert, count in enumerate(counts):
            if count:
                sel = order[start : start + count]
                groups.append((expert, flat_token[sel], flat_weight[sel]))
            start += count
        return groups


def load_balancing_loss(probs: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """Switch Transformer load-balancing loss (Fedus et al. 2021, eq. 4), extended to top-k as in GShard.

    `E * sum_e f_e * P_e` where `f_e` is the fraction of the n*k routing slots sent to expert e and `P_e` the mean
    router probability of e. It is 1 when routing is uniform and grows to E when every token goes to one expert;
    `f` is not differentiable, so the gradient flows through `P` and pushes probability away from busy experts.
    """
    num_experts = probs.shape[1]
    dispatch = torch.zeros_like(probs).scatter_(1, indices, 1.0)
    fraction = dispatch.mean(0) / indices.shape[1]
    mean_prob = probs.mean(0)
    return num_experts * torch.sum(fraction * mean_prob)


class TopKGate(nn.Module):
    """Linear router; each token goes to its k largest logits, weighted by a softmax over those k logits.

    With `noisy=True` (Shazeer et al. 2017) training adds Gaussian noise with a learned, per-expert softplus scale
    to the logits before the top-k choice, which spreads early routing; evaluation is deterministic.
    """

    def __init__(self, d_model: int, num_experts: int, k: int, noisy: bool = False) -> None:
        super().__init__()
        self.k = k
        self.proj = nn.Linear(d_model, num_experts, bias=False)
        self.noise = nn.Linear(d_model, num_experts, bias=False) if noisy else None
        if self.noise is not None:
            nn.init.zeros_(self.noise.weight)  # start at softplus(0) ~ 0.69 noise, then learn it

    def forward(self, x: torch.Tensor) -> Routing:
        logits = self.proj(x)
        if self.noise is not None and self.training:
            logits = logits + torch.randn_like(logits) * F.softplus(self.noise(x))
        top_logits, indices = logits.topk(self.k, dim=-1)
        weights = torch.softmax(top_logits, dim=-1)
        probs = torch.softmax(logits, dim=-1)
        return Routing(indices, weights, probs, load_balancing_loss(probs, indices))


class Expert(nn.Module):
    """The unit an edge node hosts: Linear(d_model, d_hidden) - ReLU - Linear(d_hidden, d_model)."""

    def __init__(self, d_model: int, d_hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(d_model, d_hidden)
        self.fc2 = nn.Linear(d_hidden, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.relu(self.fc1(x)))


class MoEBlock(nn.Module):
    """Pre-norm residual MoE block over flat tokens [n, d_model]."""

    def __init__(self, config: MoEConfig) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(config.d_model)
        self.gate = TopKGate(config.d_model, config.num_experts, config.k, config.noisy_gating)
        self.experts = nn.ModuleList(Expert(config.d_model, config.d_hidden) for _ in range(config.num_experts))

    def run_local(self, batches: dict[int, torch.Tensor]) -> dict[int, torch.Tensor]:
        return {e: self.experts[e](x) for e, x in batches.items()}

    def forward(self, h: torch.Tensor, runner: BlockRunner | None = None) -> tuple[torch.Tensor, Routing]:
        x = self.norm(h)
        routing = self.gate(x)
        groups = routing.groups()
        outputs = (runner or self.run_local)({e: x[tokens] for e, tokens, _ in groups})
        mixed = torch.zeros_like(h)
        for e, tokens, weights in groups:
            mixed = mixed.index_add(0, tokens, outputs[e].to(h.dtype) * weights[:, None])
        return h + mixed, routing


@dataclass(frozen=True)
class ModelOutput:
    logits: torch.Tensor  # [batch, num_classes]
    aux_loss: torch.Tensor  # mean load-balancing loss over the MoE layers (scalar)
    routings: list[Routing]


class MoEModel(nn.Module):
    """Patch tokens -> input projection + position embedding -> MoE blocks -> norm -> linear head."""

    def __init__(self, config: MoEConfig) -> None:
        super().__init__()
        self.config = config
        self.embed = nn.Linear(config.patch, config.d_model)
        self.position = nn.Parameter(torch.zeros(config.num_tokens, config.d_model))
        self.blocks = nn.ModuleList(MoEBlock(config) for _ in range(config.num_layers))
        self.norm = nn.LayerNorm(config.d_model)
        self.head = nn.Linear(config.num_tokens * config.d_model, config.num_classes)
        nn.init.normal_(self.position, std=1 / math.sqrt(config.d_model))

    @property
    def device(self) -> torch.device:
        return self.position.device

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        """[batch, input_dim] -> [batch, num_tokens, patch]"""
        return x.unfold(1, self.config.patch, self.config.stride)

    def forward(self, x: torch.Tensor, runner: ExpertRunner | None = None) -> ModelOutput:
        batch = x.shape[0]
        h = self.embed(self.tokens(x)) + self.position
        h = h.reshape(-1, self.config.d_model)
        routings = []
        for layer, block in enumerate(self.blocks):
            layer_runner = None if runner is None else (lambda batches, layer=layer: runner(layer, batches))
            h, routing = block(h, layer_runner)
            routings.append(routing)
        h = self.norm(h).reshape(batch, -1)
        aux = torch.stack([r.aux_loss for r in routings]).mean()
        return ModelOutput(self.head(h), aux, routings)
