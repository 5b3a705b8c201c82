"""Training improves a tiny model, and its exact-int8 version agrees with it (bmoe_py.model.train, .exact)."""
import pytest
import torch

from bmoe_py.model.data import load_digits
from bmoe_py.model.exact import ExactMoE
from bmoe_py.model.moe import MoEConfig, MoEModel
from bmoe_py.model.train import TrainConfig, accuracy, train, train_model
from torch_threads import one_torch_thread  # noqa: F401  (autouse: torch on one thread)


@pytest.fixture(scope="module")
def digits():
    return load_digits()


@pytest.fixture(scope="module")
def trained(digits):
    config = MoEConfig(digits.input_dim, digits.num_classes, patch_size=16, patch_stride=8, d_model=16, d_hidden=32, num_experts=4)
    model, result = train_model(digits, config, TrainConfig(epochs=4, batch_size=64, lr=5e-3), device=torch.device("cpu"))
    return model, result


def test_training_improves_accuracy_well_above_chance(digits):
    torch.manual_seed(0)
    model = MoEModel(MoEConfig(digits.input_dim, digits.num_classes, d_model=16, d_hidden=32, num_experts=4))
    before = accuracy(model, digits.x_test, digits.y_test)
    result = train(model, digits, TrainConfig(epochs=3, batch_size=64, lr=5e-3))
    assert before < 0.3 < 0.8 < result.test_accuracy
    assert result.history[-1]["loss"] < result.history[0]["loss"]


def test_exact_int8_model_stays_within_two_points_of_float(digits, trained):
    model, result = trained
    exact = ExactMoE.quantize(model, digits.x_train)
    assert abs(exact.accuracy(digits.x_test, digits.y_test) - result.test_accuracy) <= 0.02


def test_exact_experts_give_the_same_int8_outputs_whatever_tokens_share_their_batch(digits, trained):
    model, _ = trained
    exact = ExactMoE.quantize(model, digits.x_train)
    tokens = exact.experts[0][0].quantize_input(torch.randn(300, model.config.d_model))
    kernel = exact.kernels[0][0]
    one_by_one = torch.cat([kernel(tokens[i : i + 1]) for i in range(len(tokens))])
    assert torch.equal(kernel(tokens), one_by_one)
    assert torch.equal(kernel(tokens.flip(0)).flip(0), one_by_one)


def test_exact_model_needs_one_exact_expert_per_float_expert(trained):
    model, _ = trained
    exact = ExactMoE.quantize(model, torch.randn(50, model.config.input_dim))
    with pytest.raises(ValueError, match="exact experts"):
        ExactMoE(model, [exact.experts[0][:-1]])
