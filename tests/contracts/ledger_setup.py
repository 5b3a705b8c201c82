"""Deploys the staking, registry and ledger contracts as docs/protocol.md wires them, with one small exact model."""
from __future__ import annotations

from dataclasses import dataclass

from brownie import ExpertRegistry, ResultLedger, Staking

DAY = 24 * 3600
ETH = 10**18
UNBONDING_DELAY = 7 * DAY
LONGEST_DISPUTE = 2 * DAY + 3600
CHALLENGE_WINDOW = DAY
MIN_NODE_STAKE = ETH
EXACT, FLOAT = 0, 1
# A CIDv0 is 46 characters, as the embedded Kubo node produces them.
BUNDLE_CID = "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG"
WEIGHTS_ROOT = b"\x77" * 32
LAYERS = [(4, 3, 1 << 20, 24, True), (3, 2, 1 << 20, 24, False)]


@dataclass
class Core:
    staking: object
    registry: object
    ledger: object


def deploy_core(deployer, dispute_modules) -> Core:
    staking = Staking.deploy(UNBONDING_DELAY, {"from": deployer})
    registry = ExpertRegistry.deploy(staking, LONGEST_DISPUTE, {"from": deployer})
    ledger = ResultLedger.deploy(registry, staking, {"from": deployer})
    ledger.setDisputeModules(list(dispute_modules), {"from": deployer})
    return Core(staking, registry, ledger)


def register_model(registry, owner, mode=EXACT, expert_count=2, versions=1) -> int:
    """Registers a model and publishes `versions` versions of expert 0; returns the model id."""
    params = (mode, expert_count, 0 if mode == EXACT else 1000, CHALLENGE_WINDOW, MIN_NODE_STAKE, ETH, "QmGate",
              b"\x01" * 32)
    model_id = registry.registerModel(params, {"from": owner}).return_value
    layers = LAYERS if mode == EXACT else [(4, 3, 0, 0, False), (3, 2, 0, 0, False)]
    for _ in range(versions):
        registry.publishExpert(model_id, 0, "QmWeights", WEIGHTS_ROOT, layers, {"from": owner})
    return model_id


def stake_and_host(staking, registry, node, model_id, expert_index=0, stake=2 * ETH) -> None:
    staking.deposit({"from": node, "value": stake})
    registry.registerHost(model_id, expert_index, "http://127.0.0.1:9000", {"from": node})
