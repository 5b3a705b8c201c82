"""Data sets are made locally (MNIST-1D generated, digits bundled with scikit-learn), with fixed seeds."""
import pytest
import requests
import torch

from bmoe_py.model.data import load_dataset, load_digits, load_mnist1d


@pytest.fixture
def no_network(monkeypatch):
    """Any HTTP request fails the test: the data must never be downloaded."""

    def refuse(*args, **kwargs):
        raise AssertionError("a data loader tried to download something")

    monkeypatch.setattr(requests, "get", refuse)
    monkeypatch.setattr(requests.Session, "request", refuse)


def test_mnist1d_is_generated_without_network_with_the_requested_split(no_network, tmp_path):
    data = load_mnist1d(num_samples=500, cache_dir=tmp_path)
    assert data.x_train.shape == (400, 40) and data.x_test.shape == (100, 40)
    assert data.x_train.dtype == torch.float32 and data.y_train.dtype == torch.int64
    assert data.num_classes == 10 and set(data.y_train.tolist()) == set(range(10))


def test_mnist1d_is_deterministic_and_cached(no_network, tmp_path):
    fresh = load_mnist1d(num_samples=300, seed=3, cache_dir=tmp_path)
    assert len(list(tmp_path.iterdir())) == 1
    cached = load_mnist1d(num_samples=300, seed=3, cache_dir=tmp_path)
    uncached = load_mnist1d(num_samples=300, seed=3, cache_dir=None)
    assert torch.equal(fresh.x_train, cached.x_train) and torch.equal(fresh.x_train, uncached.x_train)
    assert torch.equal(fresh.y_test, cached.y_test)


def test_mnist1d_seed_changes_the_samples(tmp_path):
    assert not torch.equal(
        load_mnist1d(num_samples=200, seed=1, cache_dir=None).x_train,
        load_mnist1d(num_samples=200, seed=2, cache_dir=None).x_train,
    )


def test_digits_split_is_stratified_scaled_and_deterministic(no_network):
    data = load_digits()
    assert data.x_train.shape[1] == 64 and len(data.x_train) + len(data.x_test) == 1797
    assert 0.0 <= data.x_train.min() and data.x_train.max() <= 1.0
    assert torch.bincount(data.y_test).min() >= 40  # ~45 per class in a stratified 25% split
    assert torch.equal(load_digits().x_test, data.x_test)


def test_unknown_data_set_name_is_rejected():
    with pytest.raises(ValueError, match="unknown data set"):
        load_dataset("cifar")
