"""The two small real benchmarks: MNIST-1D and scikit-learn's digits, made or read locally, never downloaded.

MNIST-1D is generated procedurally by `mnist1d.data.make_dataset` (its `get_dataset` would try a URL first, so it
is never called). The paper's set is 5,000 samples with seed 42 (4,000 for training, on which its MLP reaches about
68%); the generator makes as many samples as asked from the same distribution, and the default here is 20,000
(16,000 for training). Generated sets are cached as `.npz` files under `.bmoe/data` (or $BMOE_DATA_DIR) because
generation runs a Python loop per sample (a few seconds for 20,000).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

__all__ = ["Dataset", "DATASETS", "load_dataset", "load_digits", "load_mnist1d"]

DEFAULT_CACHE = Path(os.environ.get("BMOE_DATA_DIR", ".bmoe/data"))


@dataclass(frozen=True)
class Dataset:
    """Train and test splits: `x_*` float32 [n, features], `y_*` int64 class indices [n]."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int

    @property
    def input_dim(self) -> int:
        return int(self.x_train.shape[1])

    def to(self, device: torch.device | str) -> Dataset:
        return Dataset(
            self.name,
            self.x_train.to(device),
            self.y_train.to(device),
            self.x_test.to(device),
            self.y_test.to(device),
            self.num_classes,
        )


def _as_dataset(name: str, x_train, y_train, x_test, y_test, num_classes: int) -> Dataset:
    return Dataset(
        name,
        torch.as_tensor(np.asarray(x_train, dtype=np.float32)),
        torch.as_tensor(np.asarray(y_train, dtype=np.int64)),
        torch.as_tensor(np.asarray(x_test, dtype=np.float32)),
        torch.as_tensor(np.asarray(y_test, dtype=np.int64)),
        num_classes,
    )


def load_mnist1d(
    num_samples: int = 20_000, seed: int = 42, train_split: float = 0.8, cache_dir: Path | str | None = DEFAULT_CACHE
) -> Dataset:
    """MNIST-1D (40 features, 10 classes) generated with the package's default transforms and `seed`.

    `num_samples=5000, seed=42` is the canonical data set of the MNIST-1D paper. `cache_dir=None` disables the cache.
    """
    cache = None
    if cache_dir is not None:
        cache = Path(cache_dir) / f"mnist1d-n{num_samples}-seed{seed}-split{train_split}.npz"
        if cache.exists():
            with np.load(cache) as f:
                return _as_dataset("mnist1d", f["x"], f["y"], f["x_test"], f["y_test"], 10)

    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples = num_samples
    args.seed = seed
    args.train_split = train_split
    args.url = None  # make_dataset never reads it; cleared so that no code path can fetch it
    raw = make_dataset(args)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".tmp.npz")
        np.savez(tmp, x=raw["x"], y=raw["y"], x_test=raw["x_test"], y_test=raw["y_test"])
        tmp.replace(cache)  # atomic, so concurrent loaders never read a half-written file
    return _as_dataset("mnist1d", raw["x"], raw["y"], raw["x_test"], raw["y_test"], 10)


def load_digits(seed: int = 0, test_fraction: float = 0.25) -> Dataset:
    """scikit-learn's bundled 8x8 digits (1,797 images, 64 features scaled to [0, 1]); stratified split."""
    from sklearn.datasets import load_digits as sk_load_digits
    from sklearn.model_selection import train_test_split

    bunch = sk_load_digits()
    x = bunch.data / 16.0  # pixel values are 0..16
    x_train, x_test, y_train, y_test = train_test_split(
        x, bunch.target, test_size=test_fraction, random_state=seed, stratify=bunch.target
    )
    return _as_dataset("digits", x_train, y_train, x_test, y_test, 10)


DATASETS = {"mnist1d": load_mnist1d, "digits": load_digits}


def load_dataset(name: str, **kwargs) -> Dataset:
    """`load_mnist1d` or `load_digits` by name."""
    try:
        loader = DATASETS[name]
    except KeyError:
        raise ValueError(f"unknown data set {name!r}; choose one of {sorted(DATASETS)}") from None
    return loader(**kwargs)
