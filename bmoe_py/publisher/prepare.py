"""From a data set (or a checkpoint) to the files that `publish_model` publishes: train, quantise, measure, encode.

The float model is trained (or loaded from a `bmoe model train` checkpoint), its experts are quantised into exact
int8 experts calibrated on the training inputs, and both accuracies are measured on the test split, so that the
cost of exactness is reported with every publication.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..model.data import Dataset, load_dataset
from ..model.exact import ExactMoE
from ..model.moe import MoEConfig, MoEModel, default_device
from ..model.train import TrainConfig, accuracy, train_model
from ..model.int8_ref import IntLayer
from ..model.quantize import QuantizedExpert
from ..model.weights import (
    WeightsError,
    encode_checkpoint,
    encode_exact_expert,
    encode_gate,
    gate_root,
    weights_root,
)
from ..model.weights import load_checkpoint as decode_checkpoint
from .errors import PublishError
from .publish import ExpertFile, GateFile, ModelFiles
from .records import LayerSpec, Mode

__all__ = [
    "PreparedModel",
    "TrainingOptions",
    "expert_file",
    "load_checkpoint",
    "model_files",
    "prepare",
    "save_checkpoint",
]

log = logging.getLogger("bmoe.publisher")


@dataclass(frozen=True)
class TrainingOptions:
    """What `bmoe model train` and `bmoe model publish` take; `dataset` also calibrates a loaded checkpoint."""

    dataset: str = "digits"
    epochs: int = 10
    experts: int = 4
    k: int = 2
    d_model: int = 32
    d_hidden: int = 64
    patch_size: int | None = None
    patch_stride: int | None = None  # defaults to patch_size (no overlap)
    samples: int | None = None  # MNIST-1D only
    seed: int = 0

    def load_data(self) -> Dataset:
        kwargs = {"num_samples": self.samples} if self.dataset == "mnist1d" and self.samples else {}
        return load_dataset(self.dataset, **kwargs)


@dataclass
class PreparedModel:
    """A float model, its exact experts ([layer][expert]) and the accuracy of both on the test split."""

    model: MoEModel
    exact: ExactMoE
    dataset: str
    float_accuracy: float
    exact_accuracy: float

    def summary(self) -> str:
        c = self.model.config
        return (
            f"{c.num_layers} MoE layer(s) x {c.num_experts} experts (top-{c.k}, d_model {c.d_model}, d_hidden "
            f"{c.d_hidden}) on {self.dataset}: float accuracy {self.float_accuracy:.4f}, exact int8 accuracy "
            f"{self.exact_accuracy:.4f}"
        )


def prepare(options: TrainingOptions, checkpoint: Path | None = None) -> PreparedModel:
    """Trains a model (or loads `checkpoint`), quantises its experts and measures both accuracies."""
    data = options.load_data()
    if checkpoint is not None:
        model = load_checkpoint(checkpoint).to(default_device())
        if model.config.input_dim != data.input_dim:
            raise PublishError(
                f"{checkpoint} takes inputs of {model.config.input_dim} features; the {options.dataset} data set used to "
                f"calibrate its quantisation has {data.input_dim}: pass the --dataset it was trained on"
            )
        log.info("loaded %s", checkpoint)
    else:
        config = MoEConfig(
            input_dim=data.input_dim,
            num_classes=data.num_classes,
            patch_size=options.patch_size,
            patch_stride=options.patch_stride,
            d_model=options.d_model,
            d_hidden=options.d_hidden,
            num_experts=options.experts,
            k=options.k,
        )
        log.info("training on %s (%d samples, %d epochs)", options.dataset, len(data.x_train), options.epochs)
        model, _ = train_model(data, config, TrainConfig(epochs=options.epochs, seed=options.seed))
    model.eval()
    exact = ExactMoE.quantize(model, data.x_train)
    prepared = PreparedModel(
        model,
        exact,
        options.dataset,
        accuracy(model, data.x_test, data.y_test),
        exact.accuracy(data.x_test, data.y_test),
    )
    log.info("%s", prepared.summary())
    return prepared


def save_checkpoint(model: MoEModel, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encode_checkpoint(model))


def load_checkpoint(path: Path) -> MoEModel:
    try:
        return decode_checkpoint(path.read_bytes())
    except OSError as exc:
        raise PublishError(f"cannot read checkpoint {path}: {exc.strerror}") from None
    except WeightsError as exc:
        raise PublishError(f"{path} is not a B-MoE checkpoint: {exc}") from None


def expert_file(index: int, layers: Sequence[IntLayer]) -> ExpertFile:
    """One exact expert ready to publish: canonical bytes, weights root (docs/protocol.md 2.2), registry layers."""
    return ExpertFile(index, encode_exact_expert(layers), weights_root(layers), tuple(LayerSpec.of(l) for l in layers))


def float_model_files(model: MoEModel) -> ModelFiles:
    """The gate bundle (without token scales) and one `bmoe-expert-f32/1` file per float expert, for a Float model
    (docs/protocol.md 7): each expert's root is the tensors root of its file, its registry layers are shapes only."""
    from ..model.weights import encode_float_expert, float_expert_root

    gate = GateFile(encode_gate(model, None), gate_root(model, None))
    flat = [expert for block in model.blocks for expert in block.experts]
    files = []
    for index, expert in enumerate(flat):
        d_model, d_hidden = expert.fc1.in_features, expert.fc1.out_features
        layers = (LayerSpec(d_model, d_hidden, 0, 0, False), LayerSpec(d_hidden, d_model, 0, 0, False))
        files.append(ExpertFile(index, encode_float_expert(expert), float_expert_root(expert), layers))
    return ModelFiles(gate, tuple(files), Mode.FLOAT)


def model_files(model: MoEModel, experts: Sequence[Sequence[QuantizedExpert]]) -> ModelFiles:
    """The gate bundle and one file per exact expert (`experts[layer][expert]`), numbered
    `layer * num_experts + expert` (docs/protocol.md 7)."""
    gate = GateFile(encode_gate(model, experts), gate_root(model, experts))
    flat = [quantised.layers for layer in experts for quantised in layer]
    return ModelFiles(gate, tuple(expert_file(index, layers) for index, layers in enumerate(flat)))
