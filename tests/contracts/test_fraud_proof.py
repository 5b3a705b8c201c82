"""FraudProof: the exact dispute of docs/protocol.md section 5, on the whole contract suite with a real int8 expert.

The expert (16 -> 32 -> 8, random int8 weights) runs through the numpy reference; its weights root, the token leaves
and the commitments come from `bmoe_py.crypto`. Gas price is zero on the test chain, so balances move by exactly the
amounts paid. Run with `-s` to see the gas table.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pytest
from brownie import ExpertRegistry, FraudProof, ResultLedger, Staking, accounts, chain, web3

from bmoe_py.crypto import Commitment, MerkleTree, TokenLeaf, WeightsTree, keccak256, request_id, token_tree
from bmoe_py.model.int8_ref import IntLayer, expert_forward, layer_forward
from helpers import reverts_with

DAY = 24 * 3600
UNBONDING_DELAY = 7 * DAY
RESPONSE_WINDOW = DAY
PROOF_WINDOW = DAY
# max(response + proof, draw + commit + reveal) of the default deployment (docs/protocol.md 1)
LONGEST_DISPUTE = 2 * DAY + 3600
CHALLENGE_WINDOW = 2 * DAY
ETH = 10**18
BOND = ETH
# Odd, so that the challenger's half rounds down and the burn gets the extra wei.
NODE_STAKE = 10 * ETH + 1
MIN_NODE_STAKE = 5 * ETH
PRICE = 10**12
ESCROW = 10 * ETH
BURN = "0x000000000000000000000000000000000000dEaD"
EXACT, FLOAT = 0, 1
NONE, AWAITING_RESPONSE, AWAITING_PROOF, NODE_SLASHED, CHALLENGER_LOST = range(5)
POSTED, FINALIZED, INVALIDATED = 1, 2, 3
MODEL, EXPERT, VERSION = 1, 0, 1


# ---------------------------------------------------------------- the expert and its results


def random_expert(rng: np.random.Generator, dims: list[int]) -> list[IntLayer]:
    """Random exact layers, scaled so that outputs spread over the int8 range instead of saturating."""
    layers = []
    for i, (in_dim, out_dim) in enumerate(zip(dims, dims[1:])):
        weight = rng.integers(-128, 128, size=(out_dim, in_dim), dtype=np.int8)
        bias = rng.integers(-5000, 5000, size=out_dim, dtype=np.int32)
        shift = 8 + int(np.log2(np.sqrt(in_dim) * 80))
        layers.append(IntLayer(weight, bias, multiplier=1, shift=shift, relu=i < len(dims) - 2))
    return layers


def layer_params(layers: list[IntLayer]) -> list[tuple]:
    """The `IExpertRegistry.Layer` structs of an expert."""
    return [(l.in_dim, l.out_dim, l.multiplier, l.shift, l.relu) for l in layers]


def tampered(vector: np.ndarray, index: int) -> np.ndarray:
    """A copy of an int8 vector with one element changed."""
    forged = vector.copy()
    forged[index] = np.int8(127) if forged[index] != 127 else np.int8(126)
    return forged


@dataclass
class Token:
    """One token as the node reports it: the input and the activations it claims for every layer."""

    input: np.ndarray
    activations: list[np.ndarray]

    @classmethod
    def honest(cls, layers: list[IntLayer], x: np.ndarray) -> Token:
        return cls(x, expert_forward(layers, x))

    @classmethod
    def cheating(cls, layers: list[IntLayer], x: np.ndarray, row: int = 3) -> Token:
        """Correct up to the last layer, one wrong output element (a node that forges its result)."""
        activations = expert_forward(layers, x)
        return cls(x, activations[:-1] + [tampered(activations[-1], row)])

    def activation_bytes(self) -> list[bytes]:
        return [a.tobytes() for a in self.activations]


@dataclass
class Window:
    """A posted window commitment with everything the node and the challenger keep off chain."""

    commitment: Commitment
    leaves: list[TokenLeaf]
    tree: MerkleTree
    tokens: list[Token]

    @property
    def id(self) -> bytes:
        return self.commitment.id()

    def leaf(self, k: int) -> tuple:
        return self.leaves[k].as_tuple()

    def proof(self, k: int) -> list[bytes]:
        return self.tree.proof(k)


def find_wrong_row(layers: list[IntLayer], token: Token) -> tuple[int, int] | None:
    """What a validator does off chain: the first (layer, row) whose claimed output differs from the recomputed one."""
    x = token.input
    for i, layer in enumerate(layers):
        claimed = token.activations[i]
        diff = np.flatnonzero(layer_forward(layer, x) != claimed)
        if diff.size:
            return i, int(diff[0])
        x = claimed
    return None


# ---------------------------------------------------------------- deployment


@dataclass
class Env:
    staking: object
    registry: object
    ledger: object
    fraud: object
    layers: list[IntLayer]
    weights: WeightsTree
    task_id: int
    deployer: object
    node: object
    challenger: object
    stranger: object
    committee: object  # stands in for CommitteeDispute, the second slasher and dispute module


@pytest.fixture(scope="module")
def env() -> Env:
    deployer, node, challenger, stranger, committee = accounts[0], accounts[1], accounts[2], accounts[3], accounts[9]
    staking = Staking.deploy(UNBONDING_DELAY, {"from": deployer})
    registry = ExpertRegistry.deploy(staking, LONGEST_DISPUTE, {"from": deployer})
    ledger = ResultLedger.deploy(registry, staking, {"from": deployer})
    fraud = FraudProof.deploy(ledger, registry, staking, BOND, RESPONSE_WINDOW, PROOF_WINDOW, {"from": deployer})
    staking.setSlashers([fraud, committee], {"from": deployer})
    ledger.setDisputeModules([fraud, committee], {"from": deployer})

    layers = random_expert(np.random.default_rng(7), [16, 32, 8])
    weights = WeightsTree(layers)
    register_exact_model(registry, deployer, expert_count=1)
    registry.publishExpert(MODEL, EXPERT, "weights-cid", weights.root, layer_params(layers), {"from": deployer})
    staking.deposit({"from": node, "value": NODE_STAKE})
    registry.registerHost(MODEL, EXPERT, "http://node.example", {"from": node})
    task_id = ledger.createTask(MODEL, PRICE, {"from": deployer, "value": ESCROW}).return_value
    return Env(staking, registry, ledger, fraud, layers, weights, task_id, deployer, node, challenger, stranger, committee)


def register_exact_model(registry, owner, expert_count: int) -> int:
    params = (EXACT, expert_count, 0, CHALLENGE_WINDOW, MIN_NODE_STAKE, MIN_NODE_STAKE, "gate-cid", b"\x01" * 32)
    return registry.registerModel(params, {"from": owner}).return_value


def post_window(
    env: Env,
    tokens: list[Token],
    nonce: int,
    *,
    node=None,
    task_id: int | None = None,
    model_id: int = MODEL,
    expert: int = EXPERT,
    filler: int = 0,
) -> Window:
    """The node commits one request's tokens (plus `filler` random leaves, to make the tree deeper)."""
    node = node or env.node
    task_id = task_id or env.task_id
    rid = request_id(task_id, env.deployer.address, nonce)
    leaves = [
        TokenLeaf.from_vectors(node.address, model_id, expert, VERSION, rid, k, t.input, t.activations[-1])
        for k, t in enumerate(tokens)
    ]
    filler_hashes = [keccak256(nonce.to_bytes(32, "big") + k.to_bytes(32, "big")) for k in range(filler)]
    tree = MerkleTree([leaf.hash() for leaf in leaves] + filler_hashes) if filler else token_tree(leaves)
    tx = env.ledger.commit(task_id, expert, VERSION, tree.root, len(tokens) + filler, "bundle-cid", {"from": node})
    commitment = Commitment.from_event(tx.events["CommitmentPosted"]["commitment"])
    assert commitment.id() == bytes(tx.return_value)
    return Window(commitment, leaves, tree, tokens)


def random_input(rng: np.random.Generator, n: int = 16) -> np.ndarray:
    return rng.integers(-128, 128, size=n, dtype=np.int8)


@pytest.fixture(scope="module")
def honest_window(env) -> Window:
    rng = np.random.default_rng(1)
    return post_window(env, [Token.honest(env.layers, random_input(rng)) for _ in range(4)], nonce=1)


@pytest.fixture(scope="module")
def cheating_window(env) -> Window:
    """Token 2's output is forged; the others are right."""
    rng = np.random.default_rng(2)
    tokens = [Token.honest(env.layers, random_input(rng)) for _ in range(4)]
    tokens[2] = Token.cheating(env.layers, tokens[2].input)
    return post_window(env, tokens, nonce=2)


# ---------------------------------------------------------------- dispute steps


def challenge(env: Env, window: Window, k: int, *, sender=None, value: int = BOND):
    sender = sender or env.challenger
    return env.fraud.challenge(
        window.commitment.as_tuple(),
        window.leaf(k),
        window.proof(k),
        window.tokens[k].input.tobytes(),
        {"from": sender, "value": value},
    )


def respond(env: Env, dispute_id: int, activations: list[bytes], *, sender=None):
    return env.fraud.respond(dispute_id, activations, {"from": sender or env.node})


def prove(env: Env, dispute_id: int, token: Token, layer: int, row: int, *, sender=None, weights: WeightsTree = None, **override):
    """Proves `row` of `layer` with the token's claimed activations; keyword overrides replace single arguments
    (`layer_arg`, `row_arg`, `layer_input`, `layer_output`, `row_weights`, `bias`, `row_proof`)."""
    weights = weights or env.weights
    leaf = weights.row(layer, row)
    args = {
        "layer_arg": layer,
        "row_arg": row,
        "layer_input": (token.input if layer == 0 else token.activations[layer - 1]).tobytes(),
        "layer_output": token.activations[layer].tobytes(),
        "row_weights": leaf.weights,
        "bias": leaf.bias,
        "row_proof": weights.proof(layer, row),
    }
    args.update(override)
    return env.fraud.prove(dispute_id, *args.values(), {"from": sender or env.challenger})


def open_dispute(env: Env, window: Window, k: int) -> int:
    return challenge(env, window, k).return_value


def responded_dispute(env: Env, window: Window, k: int) -> int:
    dispute_id = open_dispute(env, window, k)
    respond(env, dispute_id, window.tokens[k].activation_bytes())
    return dispute_id


def sleep_past(deadline: int) -> None:
    """Mines a block one second after `deadline`; later transactions land after it.

    By block timestamp, not `chain.time()`: after a snapshot revert, brownie's clock and anvil's can differ by the
    seconds that passed since the snapshot."""
    latest = web3.eth.get_block("latest").timestamp
    web3.provider.make_request("evm_setNextBlockTimestamp", [max(deadline + 1, latest + 1)])
    chain.mine()


def commitment_state(env: Env, window: Window) -> tuple[int, int]:
    state = env.ledger.commitmentState(window.id)
    return int(state["status"]), int(state["openDisputes"])


def fraud_balance_matches_obligations(env: Env, open_bonds: int, accounts_: list) -> bool:
    """ETH held == bonds of open disputes + what is credited (docs/protocol.md 1, the invariant)."""
    return env.fraud.balance() == open_bonds + sum(env.fraud.claimable(a) for a in accounts_)


# ---------------------------------------------------------------- construction


def test_constructor_sets_parameters(env):
    assert env.fraud.ledger() == env.ledger
    assert env.fraud.registry() == env.registry
    assert env.fraud.staking() == env.staking
    assert env.fraud.bond() == BOND
    assert env.fraud.responseWindow() == RESPONSE_WINDOW
    assert env.fraud.proofWindow() == PROOF_WINDOW
    assert env.fraud.disputeCount() == 0
    assert env.fraud.BURN_ADDRESS() == BURN


def test_fixture_expert_outputs_are_not_saturated(env, honest_window):
    # Otherwise a forged output could coincide with a clamped one and the scenarios below would prove less.
    outputs = np.concatenate([a for t in honest_window.tokens for a in t.activations])
    assert np.mean(np.abs(outputs.astype(int)) < 127) > 0.5


# ---------------------------------------------------------------- full lifecycles


def test_cheating_node_is_slashed_and_challenger_paid(env, cheating_window):
    token = cheating_window.tokens[2]
    layer, row = find_wrong_row(env.layers, token)
    assert (layer, row) == (1, 3)
    burned_before = web3.eth.get_balance(BURN)
    available_before = env.ledger.task(env.task_id)["available"]

    dispute_id = open_dispute(env, cheating_window, 2)
    assert env.staking.locksOf(env.node) == 1
    respond(env, dispute_id, token.activation_bytes())
    tx = prove(env, dispute_id, token, layer, row)

    recomputed = int(layer_forward(env.layers[1], token.activations[0])[row])
    assert tx.events["RowChecked"] == {
        "disputeId": dispute_id, "layer": 1, "row": row, "claimed": int(token.activations[1][row]), "recomputed": recomputed,
    }
    reward = BOND + NODE_STAKE // 2
    burned = NODE_STAKE - NODE_STAKE // 2
    assert tx.events["Resolved"] == {
        "disputeId": dispute_id, "fraud": True, "slashed": NODE_STAKE, "challengerReward": reward, "bondToNode": 0,
    }
    assert env.fraud.dispute(dispute_id)["phase"] == NODE_SLASHED
    assert env.fraud.claimable(env.challenger) == reward
    assert web3.eth.get_balance(BURN) - burned_before == burned
    assert env.staking.slashableOf(env.node) == 0
    assert env.staking.locksOf(env.node) == 0
    assert commitment_state(env, cheating_window) == (INVALIDATED, 0)
    assert env.ledger.task(env.task_id)["available"] == available_before + 4 * PRICE
    assert not env.registry.isActiveHost(MODEL, EXPERT, env.node)
    assert fraud_balance_matches_obligations(env, 0, [env.challenger])

    balance = env.challenger.balance()
    env.fraud.claim({"from": env.challenger})
    assert env.challenger.balance() - balance == reward
    assert env.fraud.claimable(env.challenger) == 0
    assert env.fraud.balance() == 0


def test_fraud_in_an_intermediate_layer_is_proven_on_that_layer(env, honest_window):
    # The node forges layer 0 and computes layer 1 honestly from the forgery: its output is consistent with its own
    # activations, so only the first layer's row shows the fraud.
    rng = np.random.default_rng(3)
    x = random_input(rng)
    hidden = tampered(layer_forward(env.layers[0], x), 5)
    token = Token(x, [hidden, layer_forward(env.layers[1], hidden)])
    window = post_window(env, [token], nonce=3)
    assert find_wrong_row(env.layers, token) == (0, 5)

    dispute_id = responded_dispute(env, window, 0)
    tx = prove(env, dispute_id, token, 0, 5)

    assert tx.events["Resolved"]["fraud"] is True
    assert commitment_state(env, window)[0] == INVALIDATED


def test_false_challenge_pays_the_bond_to_the_honest_node(env, honest_window):
    token = honest_window.tokens[1]
    dispute_id = responded_dispute(env, honest_window, 1)
    tx = prove(env, dispute_id, token, 1, 4)

    assert tx.events["RowChecked"]["claimed"] == tx.events["RowChecked"]["recomputed"] == token.activations[1][4]
    assert tx.events["Resolved"] == {
        "disputeId": dispute_id, "fraud": False, "slashed": 0, "challengerReward": 0, "bondToNode": BOND,
    }
    assert env.fraud.dispute(dispute_id)["phase"] == CHALLENGER_LOST
    assert env.fraud.claimable(env.node) == BOND
    assert env.fraud.claimable(env.challenger) == 0
    assert env.staking.stakeOf(env.node) == NODE_STAKE
    assert env.staking.locksOf(env.node) == 0
    assert commitment_state(env, honest_window) == (POSTED, 0)
    assert env.registry.isActiveHost(MODEL, EXPERT, env.node)

    balance = env.node.balance()
    env.fraud.claim({"from": env.node})
    assert env.node.balance() - balance == BOND


def test_honest_commitment_finalizes_after_a_failed_challenge(env, honest_window):
    dispute_id = responded_dispute(env, honest_window, 0)
    prove(env, dispute_id, honest_window.tokens[0], 0, 0)
    sleep_past(env.ledger.challengeDeadline(honest_window.commitment.as_tuple()))

    env.ledger.finalize(honest_window.commitment.as_tuple(), {"from": env.stranger})

    assert commitment_state(env, honest_window)[0] == FINALIZED
    assert env.ledger.claimable(env.node) == 4 * PRICE


def test_silent_node_is_slashed_on_timeout(env, honest_window):
    dispute_id = open_dispute(env, honest_window, 0)
    sleep_past(env.fraud.dispute(dispute_id)["deadline"])

    tx = env.fraud.timeout(dispute_id, {"from": env.stranger})

    assert tx.events["TimedOut"] == {"disputeId": dispute_id, "phase": AWAITING_RESPONSE}
    assert tx.events["Resolved"]["fraud"] is True
    assert env.fraud.claimable(env.challenger) == BOND + NODE_STAKE // 2
    assert env.staking.slashableOf(env.node) == 0
    assert env.staking.locksOf(env.node) == 0
    assert commitment_state(env, honest_window)[0] == INVALIDATED
    assert env.fraud.dispute(dispute_id)["phase"] == NODE_SLASHED


def test_silent_challenger_forfeits_the_bond_on_timeout(env, honest_window):
    dispute_id = responded_dispute(env, honest_window, 0)
    sleep_past(env.fraud.dispute(dispute_id)["deadline"])

    tx = env.fraud.timeout(dispute_id, {"from": env.stranger})

    assert tx.events["TimedOut"] == {"disputeId": dispute_id, "phase": AWAITING_PROOF}
    assert tx.events["Resolved"]["bondToNode"] == BOND
    assert env.fraud.claimable(env.node) == BOND
    assert env.staking.stakeOf(env.node) == NODE_STAKE
    assert env.staking.locksOf(env.node) == 0
    assert commitment_state(env, honest_window) == (POSTED, 0)


def test_slash_takes_unbonding_stake_too(env, cheating_window):
    env.staking.requestUnbond(4 * ETH, {"from": env.node})
    dispute_id = responded_dispute(env, cheating_window, 2)

    tx = prove(env, dispute_id, cheating_window.tokens[2], 1, 3)

    assert tx.events["Resolved"]["slashed"] == NODE_STAKE
    assert env.staking.unbondingOf(env.node)[0] == 0


def test_second_fraud_on_a_slashed_node_pays_only_the_bond(env, cheating_window):
    first = open_dispute(env, cheating_window, 2)
    second = open_dispute(env, cheating_window, 0)  # an honest token of the same window, challenged meanwhile
    assert env.staking.locksOf(env.node) == 2
    sleep_past(env.fraud.dispute(second)["deadline"])
    env.fraud.timeout(first, {"from": env.stranger})

    tx = env.fraud.timeout(second, {"from": env.stranger})

    assert tx.events["Resolved"]["slashed"] == 0
    assert env.fraud.claimable(env.challenger) == 2 * BOND + NODE_STAKE // 2
    assert env.staking.locksOf(env.node) == 0
    assert commitment_state(env, cheating_window) == (INVALIDATED, 0)


def test_dispute_records_its_state(env, honest_window):
    tx = challenge(env, honest_window, 3)
    dispute_id = tx.return_value
    leaf = honest_window.leaves[3]

    assert env.fraud.disputeCount() == 1
    assert tx.events["Challenged"] == {
        "disputeId": dispute_id,
        "commitmentId": "0x" + honest_window.id.hex(),
        "challenger": env.challenger,
        "node": env.node,
        "leaf": "0x" + leaf.hash().hex(),
        "input": "0x" + honest_window.tokens[3].input.tobytes().hex(),
    }
    assert env.fraud.dispute(dispute_id).dict() == {
        "commitmentId": "0x" + honest_window.id.hex(),
        "challenger": env.challenger,
        "node": env.node,
        "modelId": MODEL,
        "expertIndex": EXPERT,
        "expertVersion": VERSION,
        "phase": AWAITING_RESPONSE,
        "deadline": tx.timestamp + RESPONSE_WINDOW,
        "bond": BOND,
        "inputHash": "0x" + leaf.input_hash.hex(),
        "outputHash": "0x" + leaf.output_hash.hex(),
    }
    assert commitment_state(env, honest_window) == (POSTED, 1)
    assert fraud_balance_matches_obligations(env, BOND, [])


def test_response_stores_activation_hashes_and_opens_the_proof_window(env, honest_window):
    token = honest_window.tokens[3]
    dispute_id = open_dispute(env, honest_window, 3)

    tx = respond(env, dispute_id, token.activation_bytes())

    assert tx.events["Responded"]["activations"] == ["0x" + a.hex() for a in token.activation_bytes()]
    assert env.fraud.activationHashes(dispute_id) == ["0x" + keccak256(a).hex() for a in token.activation_bytes()]
    assert env.fraud.dispute(dispute_id)["phase"] == AWAITING_PROOF
    assert env.fraud.dispute(dispute_id)["deadline"] == tx.timestamp + PROOF_WINDOW


def test_leaf_can_be_challenged_again_after_its_challenger_lost(env, cheating_window):
    # A challenger that stays silent (perhaps the node itself) must not shield a forged leaf from everyone else.
    first = responded_dispute(env, cheating_window, 2)
    sleep_past(env.fraud.dispute(first)["deadline"])
    env.fraud.timeout(first, {"from": env.stranger})

    second = challenge(env, cheating_window, 2, sender=env.stranger).return_value
    respond(env, second, cheating_window.tokens[2].activation_bytes())
    tx = prove(env, second, cheating_window.tokens[2], 1, 3, sender=env.stranger)

    assert tx.events["Resolved"]["fraud"] is True
    assert env.fraud.claimable(env.stranger) == BOND + NODE_STAKE // 2


def test_respond_at_the_deadline_is_still_in_time(env, honest_window):
    dispute_id = open_dispute(env, honest_window, 0)
    deadline = env.fraud.dispute(dispute_id)["deadline"]
    web3.provider.make_request("evm_setNextBlockTimestamp", [deadline])

    tx = respond(env, dispute_id, honest_window.tokens[0].activation_bytes())

    assert tx.timestamp == deadline


# ---------------------------------------------------------------- challenge: reverts


def test_challenge_with_wrong_bond_reverts(env, honest_window):
    with reverts_with("WrongBond(uint256,uint256)", BOND - 1, BOND):
        challenge(env, honest_window, 0, value=BOND - 1)


def test_challenge_of_a_float_model_reverts(env):
    params = (FLOAT, 1, 1000, CHALLENGE_WINDOW, MIN_NODE_STAKE, MIN_NODE_STAKE, "gate-cid", b"\x01" * 32)
    model_id = env.registry.registerModel(params, {"from": env.deployer}).return_value
    env.registry.publishExpert(model_id, 0, "float-cid", b"\x02" * 32, [(16, 8, 0, 0, False)], {"from": env.deployer})
    env.registry.registerHost(model_id, 0, "http://node.example", {"from": env.node})
    task_id = env.ledger.createTask(model_id, PRICE, {"from": env.deployer, "value": ESCROW}).return_value
    token = Token.honest(env.layers, random_input(np.random.default_rng(4)))
    window = post_window(env, [token], nonce=4, task_id=task_id, model_id=model_id)

    with reverts_with("NotExactModel(uint256)", model_id):
        challenge(env, window, 0)


@pytest.mark.parametrize("field", ["node", "modelId", "expertIndex", "expertVersion"])
def test_challenge_with_leaf_not_matching_the_commitment_reverts(env, honest_window, field):
    leaf = dict(zip(["node", "modelId", "expertIndex", "expertVersion"], honest_window.leaf(0)[:4]))
    leaf[field] = {"node": env.stranger.address, "modelId": 2, "expertIndex": 1, "expertVersion": 2}[field]
    forged = (*leaf.values(), *honest_window.leaf(0)[4:])
    with reverts_with("LeafMismatch()"):
        env.fraud.challenge(
            honest_window.commitment.as_tuple(), forged, honest_window.proof(0),
            honest_window.tokens[0].input.tobytes(), {"from": env.challenger, "value": BOND},
        )


def test_challenge_with_wrong_leaf_proof_reverts(env, honest_window):
    with reverts_with("InvalidLeafProof()"):
        env.fraud.challenge(
            honest_window.commitment.as_tuple(), honest_window.leaf(0), honest_window.proof(1),
            honest_window.tokens[0].input.tobytes(), {"from": env.challenger, "value": BOND},
        )


def test_challenge_replaying_a_leaf_of_another_commitment_reverts(env, honest_window, cheating_window):
    # The leaf and its proof are valid, but under the other window's root.
    with reverts_with("InvalidLeafProof()"):
        env.fraud.challenge(
            honest_window.commitment.as_tuple(), cheating_window.leaf(2), cheating_window.proof(2),
            cheating_window.tokens[2].input.tobytes(), {"from": env.challenger, "value": BOND},
        )


def test_challenge_of_a_leaf_under_challenge_reverts(env, honest_window):
    open_dispute(env, honest_window, 0)
    leaf_hash = honest_window.leaves[0].hash()
    with reverts_with("LeafAlreadyChallenged(bytes32,bytes32)", honest_window.id, leaf_hash):
        challenge(env, honest_window, 0, sender=env.stranger)


def test_challenge_of_a_leaf_proven_fraudulent_reverts(env, cheating_window):
    dispute_id = responded_dispute(env, cheating_window, 2)
    prove(env, dispute_id, cheating_window.tokens[2], 1, 3)
    with reverts_with("LeafAlreadyChallenged(bytes32,bytes32)", cheating_window.id, cheating_window.leaves[2].hash()):
        challenge(env, cheating_window, 2, sender=env.stranger)


def test_challenge_with_wrong_input_reverts(env, honest_window):
    with reverts_with("InputHashMismatch()"):
        env.fraud.challenge(
            honest_window.commitment.as_tuple(), honest_window.leaf(0), honest_window.proof(0),
            honest_window.tokens[1].input.tobytes(), {"from": env.challenger, "value": BOND},
        )


def test_challenge_with_input_of_wrong_length_reverts(env):
    # The node committed a token whose input has 15 elements (the hash matches; the length cannot).
    short = Token(random_input(np.random.default_rng(5), 15), [np.zeros(32, np.int8), np.zeros(8, np.int8)])
    window = post_window(env, [short], nonce=5)
    with reverts_with("InputLengthMismatch(uint256,uint256)", 15, 16):
        challenge(env, window, 0)


def test_challenge_after_the_challenge_window_reverts(env, honest_window):
    ends_at = env.ledger.challengeDeadline(honest_window.commitment.as_tuple())
    sleep_past(ends_at)
    with reverts_with("ChallengeWindowClosed(uint256)", ends_at):
        challenge(env, honest_window, 0)


def test_challenge_of_an_unposted_commitment_reverts(env, honest_window):
    fake = dataclasses.replace(honest_window.commitment, token_count=5)
    window = Window(fake, honest_window.leaves, honest_window.tree, honest_window.tokens)
    with reverts_with("UnknownCommitment(bytes32)", fake.id()):
        challenge(env, window, 0)


# ---------------------------------------------------------------- respond: reverts


def test_respond_by_someone_else_than_the_node_reverts(env, honest_window):
    dispute_id = open_dispute(env, honest_window, 0)
    with reverts_with("NotNode(address)", env.stranger):
        respond(env, dispute_id, honest_window.tokens[0].activation_bytes(), sender=env.stranger)


def test_respond_with_wrong_layer_count_reverts(env, honest_window):
    dispute_id = open_dispute(env, honest_window, 0)
    with reverts_with("WrongLayerCount(uint256,uint256)", 1, 2):
        respond(env, dispute_id, honest_window.tokens[0].activation_bytes()[1:])


def test_respond_with_activation_of_wrong_length_reverts(env, honest_window):
    dispute_id = open_dispute(env, honest_window, 0)
    hidden, output = honest_window.tokens[0].activation_bytes()
    with reverts_with("ActivationLengthMismatch(uint256,uint256,uint256)", 0, 31, 32):
        respond(env, dispute_id, [hidden[:31], output])


def test_respond_with_output_not_matching_the_leaf_reverts(env, honest_window):
    dispute_id = open_dispute(env, honest_window, 0)
    hidden, output = honest_window.tokens[0].activations
    with reverts_with("OutputHashMismatch()"):
        respond(env, dispute_id, [hidden.tobytes(), tampered(output, 0).tobytes()])


def test_respond_after_the_deadline_reverts(env, honest_window):
    dispute_id = open_dispute(env, honest_window, 0)
    deadline = env.fraud.dispute(dispute_id)["deadline"]
    sleep_past(deadline)
    with reverts_with("DeadlinePassed(uint256)", deadline):
        respond(env, dispute_id, honest_window.tokens[0].activation_bytes())


def test_respond_twice_reverts(env, honest_window):
    dispute_id = responded_dispute(env, honest_window, 0)
    with reverts_with("WrongPhase(uint256,uint8)", dispute_id, AWAITING_PROOF):
        respond(env, dispute_id, honest_window.tokens[0].activation_bytes())


def test_respond_to_an_unknown_dispute_reverts(env):
    with reverts_with("UnknownDispute(uint256)", 1):
        respond(env, 1, [b"", b""])


# ---------------------------------------------------------------- prove: reverts


def test_prove_before_the_response_reverts(env, honest_window):
    dispute_id = open_dispute(env, honest_window, 0)
    with reverts_with("WrongPhase(uint256,uint8)", dispute_id, AWAITING_RESPONSE):
        prove(env, dispute_id, honest_window.tokens[0], 0, 0)


def test_prove_after_resolution_reverts(env, cheating_window):
    dispute_id = responded_dispute(env, cheating_window, 2)
    prove(env, dispute_id, cheating_window.tokens[2], 1, 3)
    with reverts_with("WrongPhase(uint256,uint8)", dispute_id, NODE_SLASHED):
        prove(env, dispute_id, cheating_window.tokens[2], 1, 3)


def test_prove_by_someone_else_than_the_challenger_reverts(env, cheating_window):
    dispute_id = responded_dispute(env, cheating_window, 2)
    with reverts_with("NotChallenger(address)", env.stranger):
        prove(env, dispute_id, cheating_window.tokens[2], 1, 3, sender=env.stranger)


def test_prove_after_the_deadline_reverts(env, cheating_window):
    dispute_id = responded_dispute(env, cheating_window, 2)
    deadline = env.fraud.dispute(dispute_id)["deadline"]
    sleep_past(deadline)
    with reverts_with("DeadlinePassed(uint256)", deadline):
        prove(env, dispute_id, cheating_window.tokens[2], 1, 3)


def test_prove_of_a_layer_out_of_range_reverts(env, cheating_window):
    dispute_id = responded_dispute(env, cheating_window, 2)
    with reverts_with("LayerOutOfRange(uint256)", 2):
        prove(env, dispute_id, cheating_window.tokens[2], 1, 3, layer_arg=2)


def test_prove_of_a_row_out_of_range_reverts(env, cheating_window):
    dispute_id = responded_dispute(env, cheating_window, 2)
    with reverts_with("RowOutOfRange(uint256)", 8):
        prove(env, dispute_id, cheating_window.tokens[2], 1, 3, row_arg=8)


@pytest.mark.parametrize("length", [31, 33, 4097])
def test_prove_with_row_not_of_the_layer_length_reverts(env, cheating_window, length):
    # Rows longer than the layer (up to beyond MAX_ROW_LENGTH) are refused before any hashing or arithmetic.
    dispute_id = responded_dispute(env, cheating_window, 2)
    with reverts_with("RowLengthMismatch(uint256,uint256)", length, 32):
        prove(env, dispute_id, cheating_window.tokens[2], 1, 3, row_weights=bytes(length))


@pytest.mark.parametrize("forgery", ["proof of another row", "bias changed", "weight changed", "row number changed"])
def test_prove_with_row_not_under_the_weights_root_reverts(env, cheating_window, forgery):
    dispute_id = responded_dispute(env, cheating_window, 2)
    leaf = env.weights.row(1, 3)
    override = {
        "proof of another row": {"row_proof": env.weights.proof(1, 4)},
        "bias changed": {"bias": leaf.bias + 1},
        "weight changed": {"row_weights": bytes([(leaf.weights[0] + 1) % 256]) + leaf.weights[1:]},
        # row 3's weights and proof offered as row 4: the leaf encodes the row number
        "row number changed": {"row_arg": 4},
    }[forgery]
    with reverts_with("InvalidRowProof()"):
        prove(env, dispute_id, cheating_window.tokens[2], 1, 3, **override)


@pytest.mark.parametrize(("layer", "which"), [(0, "input"), (0, "output"), (1, "input"), (1, "output")])
def test_prove_with_activation_not_committed_reverts(env, cheating_window, layer, which):
    token = cheating_window.tokens[2]
    dispute_id = responded_dispute(env, cheating_window, 2)
    honest = expert_forward(env.layers, token.input)
    # For layer 1 the challenger offers the honest output, which is not what the node committed to.
    replacement = {
        (0, "input"): {"layer_input": tampered(token.input, 0).tobytes()},
        (0, "output"): {"layer_output": tampered(token.activations[0], 0).tobytes()},
        (1, "input"): {"layer_input": tampered(token.activations[0], 0).tobytes()},
        (1, "output"): {"layer_output": honest[1].tobytes()},
    }[(layer, which)]
    with reverts_with("ActivationHashMismatch(uint256)", layer):
        prove(env, dispute_id, token, layer, 3, **replacement)


# ---------------------------------------------------------------- timeout, claim, receive: reverts


def test_timeout_before_the_response_deadline_reverts(env, honest_window):
    dispute_id = open_dispute(env, honest_window, 0)
    deadline = env.fraud.dispute(dispute_id)["deadline"]
    with reverts_with("DeadlineNotReached(uint256)", deadline):
        env.fraud.timeout(dispute_id, {"from": env.stranger})


def test_timeout_before_the_proof_deadline_reverts(env, honest_window):
    dispute_id = responded_dispute(env, honest_window, 0)
    deadline = env.fraud.dispute(dispute_id)["deadline"]
    with reverts_with("DeadlineNotReached(uint256)", deadline):
        env.fraud.timeout(dispute_id, {"from": env.stranger})


def test_timeout_of_a_resolved_dispute_reverts(env, honest_window):
    dispute_id = responded_dispute(env, honest_window, 0)
    prove(env, dispute_id, honest_window.tokens[0], 0, 0)
    sleep_past(env.fraud.dispute(dispute_id)["deadline"])
    with reverts_with("WrongPhase(uint256,uint8)", dispute_id, CHALLENGER_LOST):
        env.fraud.timeout(dispute_id, {"from": env.stranger})


def test_timeout_of_an_unknown_dispute_reverts(env):
    with reverts_with("UnknownDispute(uint256)", 0):
        env.fraud.timeout(0, {"from": env.stranger})


def test_dispute_view_of_an_unknown_dispute_reverts(env):
    with reverts_with("UnknownDispute(uint256)", 1):
        env.fraud.dispute(1)


def test_claim_with_nothing_credited_reverts(env):
    with reverts_with("NothingToClaim()"):
        env.fraud.claim({"from": env.stranger})


def test_claim_twice_reverts(env, honest_window):
    dispute_id = responded_dispute(env, honest_window, 0)
    prove(env, dispute_id, honest_window.tokens[0], 0, 0)
    env.fraud.claim({"from": env.node})
    with reverts_with("NothingToClaim()"):
        env.fraud.claim({"from": env.node})


def test_plain_eth_transfer_reverts(env):
    # Only Staking sends ETH here (slashed stake); even another slasher cannot.
    with reverts_with("NotStaking(address)", env.committee):
        env.committee.transfer(env.fraud, 1)


# ---------------------------------------------------------------- gas


def calldata_floor(tx) -> int:
    """EIP-7623 (Prague, anvil's default): a transaction pays at least 21000 + 10 gas per calldata token."""
    data = bytes.fromhex(tx.input[2:])
    zeros = data.count(0)
    return 21_000 + 10 * (zeros + 4 * (len(data) - zeros))


def test_gas_of_a_dispute_by_row_length(env):
    """challenge / respond / prove gas for single-layer experts n -> 16 in windows of 1024 leaves."""
    sizes = [64, 256, 1024, 4096]
    model_id = register_exact_model(env.registry, env.deployer, expert_count=len(sizes))
    task_id = env.ledger.createTask(model_id, PRICE, {"from": env.deployer, "value": ESCROW}).return_value
    env.deployer.transfer(BURN, 1)  # the burn address exists on a real chain; creating it would cost 25k once
    rng = np.random.default_rng(6)
    print("\nFraudProof gas, single-layer expert n -> 16, window of 1024 leaves (proof depth 10), 16-row weights tree")
    print(f"{'n':>6} {'challenge':>10} {'respond':>8} {'prove honest':>13} {'prove fraud':>12} {'(calldata floor)':>17}"
          f" {'fraud gas/MAC':>14}")
    for expert, n in enumerate(sizes):
        node = accounts[4 + expert]
        layers = [IntLayer(
            rng.integers(-128, 128, size=(16, n), dtype=np.int8), rng.integers(-5000, 5000, 16, dtype=np.int32),
            1, 8 + int(np.log2(np.sqrt(n) * 80)), False,
        )]
        weights = WeightsTree(layers)
        env.registry.publishExpert(model_id, expert, "weights-cid", weights.root, layer_params(layers), {"from": env.deployer})
        env.staking.deposit({"from": node, "value": NODE_STAKE})
        env.registry.registerHost(model_id, expert, "http://node.example", {"from": node})
        x = rng.integers(-128, 128, size=n, dtype=np.int8)
        tokens = [Token.honest(layers, x), Token.cheating(layers, x, row=3)]
        window = post_window(env, tokens, nonce=100 + n, node=node, task_id=task_id, model_id=model_id, expert=expert,
                             filler=1022)

        honest_id = challenge(env, window, 0).return_value
        cheat_tx = challenge(env, window, 1)  # measured: not the first dispute ever (a cold counter costs 17k more)
        respond_tx = respond(env, honest_id, tokens[0].activation_bytes(), sender=node)
        respond(env, cheat_tx.return_value, tokens[1].activation_bytes(), sender=node)
        proven_honest = prove(env, honest_id, tokens[0], 0, 3, weights=weights)
        proven_fraud = prove(env, cheat_tx.return_value, tokens[1], 0, 3, weights=weights)
        assert proven_honest.events["Resolved"]["fraud"] is False
        assert proven_fraud.events["Resolved"]["fraud"] is True
        env.fraud.claim({"from": env.challenger})  # so that every row credits a fresh balance
        print(f"{n:>6} {cheat_tx.gas_used:>10} {respond_tx.gas_used:>8} {proven_honest.gas_used:>13} "
              f"{proven_fraud.gas_used:>12} {calldata_floor(proven_fraud):>17} {proven_fraud.gas_used / n:>14.1f}")
        # One dot product (~14 gas per MAC) on top of fixed costs; at large n the calldata (input and row, 2n bytes)
        # dominates, and at n = 4096 the transaction pays the calldata floor.
        assert proven_fraud.gas_used < 200_000 + 45 * n
