"""Training and evaluation of an `MoEModel` (Adam, cross-entropy + weighted load-balancing loss)."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from .data import Dataset
from .moe import ExpertRunner, MoEConfig, MoEModel, default_device

__all__ = ["TrainConfig", "TrainResult", "accuracy", "train", "train_model"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 10
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 0.0
    seed: int = 0


@dataclass
class TrainResult:
    seconds: float  # wall clock
    cpu_seconds: float  # CPU time of this process, all threads (robust to other load on the machine)
    test_accuracy: float
    history: list[dict] = field(default_factory=list)  # one {epoch, loss, aux_loss, test_accuracy} per epoch


@torch.no_grad()
def accuracy(
    model: MoEModel, x: torch.Tensor, y: torch.Tensor, runner: ExpertRunner | None = None, batch_size: int = 4096
) -> float:
    """Top-1 accuracy; `runner` swaps the experts (exact int8, remote) while the rest of the model stays float."""
    was_training = model.training
    model.eval()
    correct = 0
    for start in range(0, len(x), batch_size):
        xb = x[start : start + batch_size].to(model.device)
        logits = model(xb, runner).logits
        correct += int((logits.argmax(-1).cpu() == y[start : start + batch_size].cpu()).sum())
    model.train(was_training)
    return correct / len(x)


def train(model: MoEModel, data: Dataset, config: TrainConfig = TrainConfig()) -> TrainResult:
    """Trains `model` in place on `data.x_train`; evaluates on `data.x_test` after every epoch."""
    torch.manual_seed(config.seed)
    device = model.device
    x, y = data.x_train.to(device), data.y_train.to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    steps = config.epochs * ((len(x) + config.batch_size - 1) // config.batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.lr, total_steps=steps, pct_start=0.1)
    aux_weight = model.config.aux_loss_weight
    history = []
    start, cpu_start = time.perf_counter(), time.process_time()
    model.train()
    for epoch in range(config.epochs):
        order = torch.randperm(len(x), device=device)
        total_loss = total_aux = 0.0
        batches = 0
        for first in range(0, len(x), config.batch_size):
            idx = order[first : first + config.batch_size]
            out = model(x[idx])
            loss = F.cross_entropy(out.logits, y[idx])
            optimizer.zero_grad(set_to_none=True)
            (loss + aux_weight * out.aux_loss).backward()
            optimizer.step()
            schedule.step()
            total_loss += loss.item()
            total_aux += out.aux_loss.item()
            batches += 1
        test_acc = accuracy(model, data.x_test, data.y_test)
        history.append(
            {"epoch": epoch + 1, "loss": total_loss / batches, "aux_loss": total_aux / batches, "test_accuracy": test_acc}
        )
        log.info("epoch %d loss %.4f aux %.4f test acc %.4f", epoch + 1, total_loss / batches, total_aux / batches, test_acc)
    model.eval()
    return TrainResult(
        time.perf_counter() - start,
        time.process_time() - cpu_start,
        history[-1]["test_accuracy"] if history else 0.0,
        history,
    )


def train_model(
    data: Dataset, config: MoEConfig, train_config: TrainConfig = TrainConfig(), device: torch.device | None = None
) -> tuple[MoEModel, TrainResult]:
    """Builds a model for `data` (seeded by `train_config.seed`) and trains it on `device` (CUDA when available)."""
    torch.manual_seed(train_config.seed)
    model = MoEModel(config).to(device or default_device())
    return model, train(model, data, train_config)
