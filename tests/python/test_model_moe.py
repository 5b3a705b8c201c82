"""Routing, load balancing and shapes of the MoE model (bmoe_py.model.moe)."""
import pytest
import torch

from bmoe_py.model.moe import MoEConfig, MoEModel, TopKGate, load_balancing_loss
from torch_threads import one_torch_thread  # noqa: F401  (autouse: torch on one thread)


def config(**overrides):
    return MoEConfig(**{"input_dim": 40, "num_classes": 10, "d_model": 16, "d_hidden": 32, **overrides})


@pytest.mark.parametrize("k", [1, 2, 3])
def test_gate_routes_every_token_to_exactly_k_distinct_experts(k):
    torch.manual_seed(0)
    routing = TopKGate(16, 6, k)(torch.randn(300, 16))
    assert routing.indices.shape == (300, k)
    assert all(len(set(row.tolist())) == k for row in routing.indices)


def test_gate_weights_are_positive_and_sum_to_one_per_token():
    torch.manual_seed(0)
    routing = TopKGate(16, 6, 3)(torch.randn(300, 16))
    assert (routing.weights > 0).all()
    torch.testing.assert_close(routing.weights.sum(-1), torch.ones(300))


def test_gate_weights_are_the_softmax_of_the_selected_logits():
    torch.manual_seed(0)
    gate = TopKGate(16, 6, 2)
    x = torch.randn(50, 16)
    routing = gate(x)
    selected = gate.proj(x).gather(1, routing.indices)
    torch.testing.assert_close(routing.weights, torch.softmax(selected, -1))
    assert (selected[:, 0] >= selected[:, 1]).all()  # the k largest, in order


def test_groups_dispatch_every_token_slot_exactly_once():
    torch.manual_seed(0)
    routing = TopKGate(16, 5, 2)(torch.randn(100, 16))
    slots = sorted((int(t), e) for e, tokens, _ in routing.groups() for t in tokens)
    assert slots == sorted((t, int(e)) for t in range(100) for e in routing.indices[t])


def test_load_balancing_loss_is_one_for_uniform_routing():
    num_experts, k = 4, 2
    indices = torch.tensor([[e, (e + 1) % num_experts] for e in range(num_experts)] * 10)
    probs = torch.full((len(indices), num_experts), 1 / num_experts)
    assert load_balancing_loss(probs, indices).item() == pytest.approx(1.0)


def test_load_balancing_loss_grows_when_routing_collapses():
    num_experts = 4
    uniform = load_balancing_loss(torch.full((8, num_experts), 0.25), torch.arange(8).remainder(num_experts)[:, None])
    collapsed_probs = torch.tensor([[0.97, 0.01, 0.01, 0.01]] * 8)
    collapsed = load_balancing_loss(collapsed_probs, torch.zeros(8, 1, dtype=torch.long))
    assert collapsed.item() == pytest.approx(num_experts * 0.97)
    assert collapsed > uniform


def test_load_balancing_loss_is_at_least_one_for_random_routing():
    torch.manual_seed(0)
    for _ in range(20):
        routing = TopKGate(8, 6, 2)(torch.randn(64, 8) * 3)
        assert routing.aux_loss.item() >= 1.0 - 1e-6


def test_load_balancing_loss_gradient_moves_probability_away_from_the_busy_expert():
    logits = torch.zeros(16, 4, requires_grad=True)
    indices = torch.zeros(16, 1, dtype=torch.long)  # every token went to expert 0
    load_balancing_loss(torch.softmax(logits, -1), indices).backward()
    assert (logits.grad[:, 0] > 0).all() and (logits.grad[:, 1:] < 0).all()


def test_noisy_gating_is_random_in_training_and_deterministic_in_eval():
    torch.manual_seed(0)
    gate = TopKGate(16, 8, 2, noisy=True)
    x = torch.randn(200, 16)
    assert not torch.equal(gate(x).indices, gate(x).indices)
    gate.eval()
    assert torch.equal(gate(x).indices, gate(x).indices)


@pytest.mark.parametrize(
    "overrides, tokens",
    [({}, 1), ({"patch_size": 8}, 5), ({"patch_size": 8, "patch_stride": 4}, 9), ({"num_layers": 3, "k": 1}, 1)],
)
def test_model_gives_logits_per_sample_and_one_routing_per_layer(overrides, tokens):
    cfg = config(**overrides)
    model = MoEModel(cfg)
    out = model(torch.randn(7, 40))
    assert cfg.num_tokens == tokens
    assert out.logits.shape == (7, 10)
    assert len(out.routings) == cfg.num_layers
    assert all(r.indices.shape == (7 * tokens, cfg.k) for r in out.routings)
    assert out.aux_loss.ndim == 0


def test_runner_receives_every_layers_routed_tokens_and_replaces_the_experts():
    model = MoEModel(config(num_layers=2, patch_size=8)).eval()
    x = torch.randn(5, 40)
    calls = []

    def runner(layer, batches):
        calls.append((layer, sum(len(t) for t in batches.values())))
        return model.blocks[layer].run_local(batches)

    torch.testing.assert_close(model(x, runner).logits, model(x).logits)
    assert calls == [(0, 5 * 5 * 2), (1, 5 * 5 * 2)]


@pytest.mark.parametrize(
    "overrides", [{"k": 0}, {"k": 9}, {"num_layers": 0}, {"patch_size": 41}, {"patch_size": 8, "patch_stride": 0}]
)
def test_invalid_configurations_are_rejected(overrides):
    with pytest.raises(ValueError):
        config(**overrides)


def test_config_round_trips_through_a_dict():
    cfg = config(patch_size=8, noisy_gating=True)
    assert MoEConfig.from_dict(cfg.to_dict()) == cfg
