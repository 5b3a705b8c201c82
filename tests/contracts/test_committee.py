"""CommitteeDispute: the committee vote for float experts (docs/protocol.md, section 6).

The module fixture deploys the whole suite once and leaves one posted commitment of a float model on chain;
brownie's function isolation rolls every test back to that state. Gas price is zero on the test chain, so ETH
balances move only by the amounts the contracts send, which lets the tests check payouts to the wei.
"""
from dataclasses import dataclass

import brownie
import pytest
from brownie import ZERO_ADDRESS, chain, web3
from eth_abi import encode
from eth_utils import keccak

from bmoe_py.chain.deploy import DeployParams, deploy_suite
from bmoe_py.crypto import Commitment, MerkleTree, TokenLeaf, request_id, token_tree
from tests.contracts.committee_draw import draw_seed, sample_committee
from tests.helpers import reverts_with

ETHER = 10**18
DAY = 86400
HOUR = 3600
BURN = "0x000000000000000000000000000000000000dEaD"

UNBONDING_DELAY = 7 * DAY
RESPONSE_WINDOW = DAY
PROOF_WINDOW = DAY
DRAW_WINDOW = HOUR
COMMIT_WINDOW = DAY
REVEAL_WINDOW = DAY
LONGEST_DISPUTE = DRAW_WINDOW + COMMIT_WINDOW + REVEAL_WINDOW
CHALLENGE_WINDOW = 2 * DAY

FRAUD_BOND = ETHER // 2
BOND = ETHER + 1  # odd, so that the honest split has a remainder to burn
COMMITTEE_SIZE = 3
NON_REVEAL_PENALTY = ETHER // 10

MIN_NODE_STAKE = 5 * ETHER
MIN_VALIDATOR_STAKE = ETHER
NODE_STAKE = 10 * ETHER + 7  # odd, so that the fraud split has remainders to burn
CHALLENGER_STAKE = 20 * ETHER
# Exactly COMMITTEE_SIZE eligible validators, so every draw of the base fixture picks all three of them.
VALIDATOR_STAKES = [ETHER, 2 * ETHER, 3 * ETHER]
UNDERSTAKED = ETHER - 1
PRICE = 1000
TOKENS = 4

FLOAT, EXACT = 1, 0
# Phase and Outcome enums of ICommitteeDispute
AWAITING_DRAW, VOTING, REVEALING, RESOLVED = 1, 2, 3, 4
PENDING, FRAUD, HONEST, UNDECIDED = 0, 1, 2, 3
# IResultLedger.Status
POSTED, INVALIDATED = 1, 3



@dataclass
class Posted:
    """A commitment on chain with its token leaves and their Merkle tree."""

    commitment: Commitment
    leaves: list[TokenLeaf]
    tree: MerkleTree

    @property
    def id(self) -> bytes:
        return self.commitment.id()

    def leaf(self, i: int) -> tuple:
        return self.leaves[i].as_tuple()

    def proof(self, i: int) -> list[bytes]:
        return self.tree.proof(i)


@dataclass
class Suite:
    staking: object
    registry: object
    ledger: object
    fraud: object
    committee: object
    deployer: object
    publisher: object
    node: object
    challenger: object
    validators: list
    understaked: object
    float_model: int
    exact_model: int
    float_task: int
    posted: Posted


def _post(ledger, node, task_id: int, model_id: int, salt: int) -> Posted:
    rid = request_id(task_id, node.address, salt)
    leaves = [
        TokenLeaf(node.address, model_id, 0, 1, rid, t, keccak(b"in%d" % t), keccak(b"out%d" % (t + salt)))
        for t in range(TOKENS)
    ]
    tree = token_tree(leaves)
    tx = ledger.commit(task_id, 0, 1, tree.root, TOKENS, "bafy-bundle", {"from": node})
    return Posted(Commitment.from_event(tx.events["CommitmentPosted"]["commitment"]), leaves, tree)


def _create_task(ledger, publisher, model_id: int) -> int:
    tx = ledger.createTask(model_id, PRICE, {"from": publisher, "value": 100 * PRICE})
    return tx.events["TaskCreated"]["taskId"]


def _register_model(registry, owner, mode: int) -> int:
    params = (mode, 1, 1000 if mode == FLOAT else 0, CHALLENGE_WINDOW, MIN_NODE_STAKE, MIN_VALIDATOR_STAKE,
              "bafy-gate", keccak(b"gate"))
    model_id = registry.registerModel(params, {"from": owner}).events["ModelRegistered"]["modelId"]
    layer = (4, 2, 0, 0, False) if mode == FLOAT else (4, 2, 1, 0, False)
    registry.publishExpert(model_id, 0, "bafy-weights", keccak(b"weights"), [layer], {"from": owner})
    return model_id


@pytest.fixture(scope="module")
def suite(accounts, Staking, ExpertRegistry, ResultLedger, FraudProof, CommitteeDispute, Screening) -> Suite:
    deployer, publisher, node, challenger = accounts[:4]
    validators, understaked = list(accounts[4:7]), accounts[7]
    names = ("Staking", "ExpertRegistry", "ResultLedger", "FraudProof", "CommitteeDispute", "Screening")
    containers = dict(zip(names, (Staking, ExpertRegistry, ResultLedger, FraudProof, CommitteeDispute, Screening)))
    params = DeployParams(
        unbonding_delay=UNBONDING_DELAY, fraud_bond=FRAUD_BOND, response_window=RESPONSE_WINDOW,
        proof_window=PROOF_WINDOW, committee_bond=BOND, committee_size=COMMITTEE_SIZE, draw_window=DRAW_WINDOW,
        commit_window=COMMIT_WINDOW, reveal_window=REVEAL_WINDOW, non_reveal_penalty=NON_REVEAL_PENALTY,
    )
    assert params.longest_dispute == LONGEST_DISPUTE
    deployed = deploy_suite(deployer, params, containers=containers, log=lambda _: None)
    staking, registry, ledger, fraud, committee = (deployed[name] for name in names[:5])

    float_model = _register_model(registry, publisher, FLOAT)
    exact_model = _register_model(registry, publisher, EXACT)
    # The node and the challenger are validators too, with the largest stakes: the draw must still skip them.
    for account, stake in [(node, NODE_STAKE), (challenger, CHALLENGER_STAKE), (understaked, UNDERSTAKED),
                           *zip(validators, VALIDATOR_STAKES)]:
        staking.deposit({"from": account, "value": stake})
        staking.joinValidators({"from": account})
    registry.registerHost(float_model, 0, "http://node", {"from": node})
    registry.registerHost(exact_model, 0, "http://node", {"from": node})
    float_task = _create_task(ledger, publisher, float_model)
    posted = _post(ledger, node, float_task, float_model, salt=1)
    return Suite(staking, registry, ledger, fraud, committee, deployer, publisher, node, challenger, validators,
                 understaked, float_model, exact_model, float_task, posted)


# ------------------------------------------------------------------------------------------------ helpers


def _challenge(s: Suite, leaf: int = 0, posted: Posted | None = None):
    posted = posted or s.posted
    tx = s.committee.challenge(posted.commitment.as_tuple(), posted.leaf(leaf), posted.proof(leaf),
                               {"from": s.challenger, "value": BOND})
    return tx.events["Challenged"]["disputeId"]


def _drawn(s: Suite) -> int:
    """Challenges leaf 0 and draws the committee (one block later, so that the seed block exists)."""
    dispute_id = _challenge(s)
    chain.mine()
    s.committee.drawCommittee(dispute_id, {"from": s.deployer})
    return dispute_id


def _salt(voter) -> bytes:
    return keccak(b"salt" + bytes.fromhex(voter.address[2:]))


def _vote(s: Suite, dispute_id: int, votes: dict) -> None:
    """Commits every vote in `votes` (member -> fraud), lets the commit window pass and reveals them."""
    for voter, fraud in votes.items():
        s.committee.commitVote(dispute_id, s.committee.voteCommitment(dispute_id, _salt(voter), voter, fraud),
                               {"from": voter})
    chain.sleep(COMMIT_WINDOW + 1)
    for voter, fraud in votes.items():
        s.committee.revealVote(dispute_id, fraud, _salt(voter), {"from": voter})


def _finalize(s: Suite, dispute_id: int):
    """Finalizes right after the reveal deadline."""
    chain.sleep(s.committee.dispute(dispute_id)["revealDeadline"] + 1 - chain.time())
    return s.committee.finalize(dispute_id, {"from": s.deployer})


# ------------------------------------------------------------------------------------------------ challenge


def test_challenge_opens_dispute_and_locks_node(suite):
    s = suite
    tx = s.committee.challenge(s.posted.commitment.as_tuple(), s.posted.leaf(1), s.posted.proof(1),
                               {"from": s.challenger, "value": BOND})
    d = s.committee.dispute(1)
    assert tx.events["Challenged"]["disputeId"] == 1 == s.committee.disputeCount()
    assert d["commitmentId"] == "0x" + s.posted.id.hex()
    assert (d["challenger"], d["node"], d["modelId"], d["bond"]) == (s.challenger, s.node, s.float_model, BOND)
    assert d["anchorBlock"] == tx.block_number
    assert d["drawDeadline"] == tx.timestamp + DRAW_WINDOW
    assert d["phase"] == AWAITING_DRAW and d["outcome"] == PENDING
    assert tx.events["Challenged"]["leaf"] == "0x" + s.posted.leaves[1].hash().hex()
    assert s.staking.locksOf(s.node) == 1
    assert s.ledger.commitmentState(s.posted.id)["openDisputes"] == 1
    assert s.committee.balance() == BOND


def test_challenge_with_wrong_bond_reverts(suite):
    s = suite
    with reverts_with("WrongBond(uint256,uint256)", BOND - 1, BOND):
        s.committee.challenge(s.posted.commitment.as_tuple(), s.posted.leaf(0), s.posted.proof(0),
                              {"from": s.challenger, "value": BOND - 1})


def test_challenge_of_exact_model_reverts(suite):
    s = suite
    task = _create_task(s.ledger, s.publisher, s.exact_model)
    exact = _post(s.ledger, s.node, task, s.exact_model, salt=2)
    with reverts_with("NotFloatModel(uint256)", s.exact_model):
        s.committee.challenge(exact.commitment.as_tuple(), exact.leaf(0), exact.proof(0), {"from": s.challenger, "value": BOND})


def test_challenge_with_leaf_of_another_node_reverts(suite):
    s = suite
    leaf = (s.challenger.address, *s.posted.leaf(0)[1:])
    with reverts_with("LeafMismatch()"):
        s.committee.challenge(s.posted.commitment.as_tuple(), leaf, s.posted.proof(0), {"from": s.challenger, "value": BOND})


def test_challenge_with_leaf_of_another_model_reverts(suite):
    s = suite
    # A commitment whose tree holds a leaf naming the wrong model: the proof is valid, the model is not.
    leaves = [TokenLeaf(s.node.address, s.exact_model, 0, 1, keccak(b"r"), t, keccak(b"i"), keccak(b"o"))
              for t in range(2)]
    tree = token_tree(leaves)
    tx = s.ledger.commit(s.float_task, 0, 1, tree.root, 2, "bafy", {"from": s.node})
    commitment = Commitment.from_event(tx.events["CommitmentPosted"]["commitment"])
    with reverts_with("LeafMismatch()"):
        s.committee.challenge(commitment.as_tuple(), leaves[0].as_tuple(), tree.proof(0),
                              {"from": s.challenger, "value": BOND})


def test_challenge_with_invalid_leaf_proof_reverts(suite):
    s = suite
    with reverts_with("InvalidLeafProof()"):
        s.committee.challenge(s.posted.commitment.as_tuple(), s.posted.leaf(0), s.posted.proof(1),
                              {"from": s.challenger, "value": BOND})


def test_challenging_a_leaf_under_dispute_reverts(suite):
    s = suite
    _challenge(s, leaf=2)
    with reverts_with("LeafAlreadyChallenged(bytes32,bytes32)", s.posted.id, s.posted.leaves[2].hash()):
        _challenge(s, leaf=2)


def test_leaf_judged_honest_cannot_be_challenged_again(suite):
    s = suite
    dispute_id = _drawn(s)
    _vote(s, dispute_id, {v: False for v in s.validators})
    _finalize(s, dispute_id)
    with reverts_with("LeafAlreadyChallenged(bytes32,bytes32)", s.posted.id, s.posted.leaves[0].hash()):
        _challenge(s, leaf=0)


def test_leaf_of_undecided_dispute_can_be_challenged_again(suite):
    s = suite
    dispute_id = _challenge(s, leaf=0)
    chain.sleep(DRAW_WINDOW + 1)
    s.committee.finalize(dispute_id, {"from": s.deployer})  # nobody drew a committee: undecided
    assert _challenge(s, leaf=0) == dispute_id + 1
    assert s.committee.leafDispute(s.posted.id, s.posted.leaves[0].hash()) == dispute_id + 1


def test_two_leaves_of_one_commitment_can_be_disputed_at_once(suite):
    s = suite
    assert (_challenge(s, leaf=0), _challenge(s, leaf=1)) == (1, 2)
    assert s.staking.locksOf(s.node) == 2
    assert s.ledger.commitmentState(s.posted.id)["openDisputes"] == 2


def test_challenge_after_challenge_window_reverts(suite):
    s = suite
    chain.sleep(CHALLENGE_WINDOW + 1)
    with reverts_with("ChallengeWindowClosed(uint256)", s.posted.commitment.posted_at + CHALLENGE_WINDOW):
        _challenge(s)


# ------------------------------------------------------------------------------------------------ draw


def test_draw_in_the_challenge_block_successor_reverts_seed_not_ready(suite):
    s = suite
    dispute_id = _challenge(s)
    anchor = s.committee.dispute(dispute_id)["anchorBlock"]
    with reverts_with("SeedNotReady(uint256)", anchor + 2):
        s.committee.drawCommittee(dispute_id, {"from": s.deployer})  # mined in block anchor + 1


def test_draw_uses_hash_of_block_after_anchor_as_seed(suite):
    s = suite
    dispute_id = _challenge(s)
    chain.mine()
    tx = s.committee.drawCommittee(dispute_id, {"from": s.deployer})
    anchor = s.committee.dispute(dispute_id)["anchorBlock"]
    expected = draw_seed(web3.eth.get_block(anchor + 1).hash, dispute_id)
    assert tx.events["CommitteeDrawn"]["seed"] == "0x" + expected.hex()


def test_draw_excludes_node_challenger_and_understaked_validators(suite):
    s = suite
    # Of the six validators only three are eligible, and the committee has three seats: they are all drawn.
    dispute_id = _drawn(s)
    members, weights = s.committee.committee(dispute_id)
    assert sorted(members) == sorted(v.address for v in s.validators)
    assert {m: w for m, w in zip(members, weights)} == {v.address: st for v, st in zip(s.validators, VALIDATOR_STAKES)}


def test_draw_locks_members_and_opens_commit_window(suite):
    s = suite
    dispute_id = _challenge(s)
    chain.mine()
    tx = s.committee.drawCommittee(dispute_id, {"from": s.deployer})
    d = s.committee.dispute(dispute_id)
    assert d["phase"] == VOTING
    assert d["commitDeadline"] == tx.timestamp + COMMIT_WINDOW
    assert d["revealDeadline"] == tx.timestamp + COMMIT_WINDOW + REVEAL_WINDOW
    assert all(s.staking.locksOf(v) == 1 for v in s.validators)
    assert s.staking.locksOf(s.understaked) == 0 and s.staking.locksOf(s.challenger) == 0


def test_draw_is_the_stake_weighted_sample_determined_by_the_seed(suite, accounts):
    s = suite
    # More eligible validators than seats, with distinct stakes, so that the draw has something to choose.
    for i, extra in enumerate(accounts[8:10]):
        s.staking.deposit({"from": extra, "value": (4 + i) * ETHER})
        s.staking.joinValidators({"from": extra})
    validators = list(s.staking.validators())
    stakes = {v: s.staking.stakeOf(v) for v in validators}
    for leaf in range(TOKENS):
        dispute_id = _challenge(s, leaf=leaf)
        chain.mine()
        tx = s.committee.drawCommittee(dispute_id, {"from": s.deployer})
        seed = bytes(tx.events["CommitteeDrawn"]["seed"])
        expected = sample_committee(seed, validators, stakes, {s.node.address, s.challenger.address},
                           MIN_VALIDATOR_STAKE, COMMITTEE_SIZE)
        members, weights = s.committee.committee(dispute_id)
        assert list(members) == expected
        assert list(weights) == [stakes[m] for m in expected]


def test_sampling_picks_first_member_in_proportion_to_stake():
    # The draw replay above shows the contract runs the sampling of `sample_committee`; this shows that it is
    # stake-weighted
    # (pure Python over many seeds: fast, unlike thousands of on-chain draws).
    stakes = {"a": 1, "b": 2, "c": 3, "d": 4}
    firsts = {v: 0 for v in stakes}
    runs = 4000
    for i in range(runs):
        firsts[sample_committee(keccak(i.to_bytes(32, "big")), list(stakes), stakes, set(), 1, 2)[0]] += 1
    for v, stake in stakes.items():
        assert abs(firsts[v] / runs - stake / 10) < 0.03


def test_draw_with_no_eligible_validator_reverts(suite):
    s = suite
    dispute_id = _challenge(s)
    for v in s.validators:
        s.staking.leaveValidators({"from": v})
    with reverts_with("NoEligibleValidators()"):
        s.committee.drawCommittee(dispute_id, {"from": s.deployer})


def test_draw_after_256_blocks_reanchors_to_current_block(suite):
    s = suite
    dispute_id = _challenge(s)
    chain.mine(300)
    tx = s.committee.drawCommittee(dispute_id, {"from": s.deployer})
    assert tx.events["SeedReanchored"]["anchorBlock"] == tx.block_number
    d = s.committee.dispute(dispute_id)
    assert d["anchorBlock"] == tx.block_number and d["phase"] == AWAITING_DRAW
    with reverts_with("SeedNotReady(uint256)", tx.block_number + 2):
        s.committee.drawCommittee(dispute_id, {"from": s.deployer})
    chain.mine()
    tx = s.committee.drawCommittee(dispute_id, {"from": s.deployer})
    expected = draw_seed(web3.eth.get_block(d["anchorBlock"] + 1).hash, dispute_id)
    assert tx.events["CommitteeDrawn"]["seed"] == "0x" + expected.hex()


def test_draw_after_draw_deadline_reverts(suite):
    s = suite
    dispute_id = _challenge(s)
    deadline = s.committee.dispute(dispute_id)["drawDeadline"]
    chain.sleep(DRAW_WINDOW + 1)
    with reverts_with("DeadlinePassed(uint256)", deadline):
        s.committee.drawCommittee(dispute_id, {"from": s.deployer})


def test_draw_twice_reverts_wrong_phase(suite):
    s = suite
    dispute_id = _drawn(s)
    with reverts_with("WrongPhase(uint256,uint8)", dispute_id, VOTING):
        s.committee.drawCommittee(dispute_id, {"from": s.deployer})


def test_draw_of_unknown_dispute_reverts(suite):
    with reverts_with("UnknownDispute(uint256)", 7):
        suite.committee.drawCommittee(7, {"from": suite.deployer})


# ------------------------------------------------------------------------------------------------ votes


def test_vote_commitment_is_hash_of_encoded_vote(suite):
    voter, salt = suite.validators[0], keccak(b"s")
    expected = keccak(encode(["uint256", "address", "bool", "bytes32"], [5, voter.address, True, salt]))
    assert suite.committee.voteCommitment(5, salt, voter, True) == "0x" + expected.hex()


def test_commit_by_non_member_reverts(suite):
    s = suite
    dispute_id = _drawn(s)
    with reverts_with("NotCommitteeMember(address)", s.understaked.address):
        s.committee.commitVote(dispute_id, keccak(b"v"), {"from": s.understaked})


def test_commit_twice_reverts(suite):
    s = suite
    dispute_id = _drawn(s)
    voter = s.validators[0]
    s.committee.commitVote(dispute_id, keccak(b"v"), {"from": voter})
    with reverts_with("AlreadyCommitted(address)", voter.address):
        s.committee.commitVote(dispute_id, keccak(b"w"), {"from": voter})


def test_commit_before_draw_reverts_wrong_phase(suite):
    s = suite
    dispute_id = _challenge(s)
    with reverts_with("WrongPhase(uint256,uint8)", dispute_id, AWAITING_DRAW):
        s.committee.commitVote(dispute_id, keccak(b"v"), {"from": s.validators[0]})


def test_commit_after_commit_deadline_reverts(suite):
    s = suite
    dispute_id = _drawn(s)
    deadline = s.committee.dispute(dispute_id)["commitDeadline"]
    chain.sleep(COMMIT_WINDOW + 1)
    with reverts_with("DeadlinePassed(uint256)", deadline):
        s.committee.commitVote(dispute_id, keccak(b"v"), {"from": s.validators[0]})


def test_reveal_before_commit_deadline_reverts(suite):
    s = suite
    dispute_id = _drawn(s)
    voter = s.validators[0]
    s.committee.commitVote(dispute_id, s.committee.voteCommitment(dispute_id, _salt(voter), voter, True),
                           {"from": voter})
    with reverts_with("DeadlineNotReached(uint256)", s.committee.dispute(dispute_id)["commitDeadline"]):
        s.committee.revealVote(dispute_id, True, _salt(voter), {"from": voter})


def test_reveal_not_matching_commitment_reverts(suite):
    s = suite
    dispute_id = _drawn(s)
    voter = s.validators[0]
    s.committee.commitVote(dispute_id, s.committee.voteCommitment(dispute_id, _salt(voter), voter, True),
                           {"from": voter})
    chain.sleep(COMMIT_WINDOW + 1)
    with reverts_with("RevealMismatch()"):
        s.committee.revealVote(dispute_id, False, _salt(voter), {"from": voter})


def test_reveal_without_commit_reverts(suite):
    s = suite
    dispute_id = _drawn(s)
    voter = s.validators[0]
    chain.sleep(COMMIT_WINDOW + 1)
    with reverts_with("NotCommitted(address)", voter.address):
        s.committee.revealVote(dispute_id, True, _salt(voter), {"from": voter})


def test_reveal_twice_reverts(suite):
    s = suite
    dispute_id = _drawn(s)
    voter = s.validators[0]
    _vote(s, dispute_id, {voter: True})
    with reverts_with("AlreadyRevealed(address)", voter.address):
        s.committee.revealVote(dispute_id, True, _salt(voter), {"from": voter})


def test_reveal_by_non_member_reverts(suite):
    s = suite
    dispute_id = _drawn(s)
    chain.sleep(COMMIT_WINDOW + 1)
    with reverts_with("NotCommitteeMember(address)", s.challenger.address):
        s.committee.revealVote(dispute_id, True, _salt(s.challenger), {"from": s.challenger})


def test_reveal_after_reveal_deadline_reverts(suite):
    s = suite
    dispute_id = _drawn(s)
    voter = s.validators[0]
    s.committee.commitVote(dispute_id, s.committee.voteCommitment(dispute_id, _salt(voter), voter, True),
                           {"from": voter})
    chain.sleep(COMMIT_WINDOW + REVEAL_WINDOW + 1)
    with reverts_with("DeadlinePassed(uint256)", s.committee.dispute(dispute_id)["revealDeadline"]):
        s.committee.revealVote(dispute_id, True, _salt(voter), {"from": voter})


def test_reveal_counts_snapshotted_weight(suite):
    s = suite
    dispute_id = _drawn(s)
    voter = s.validators[2]
    # Stake added after the draw does not change the vote's weight.
    s.staking.deposit({"from": voter, "value": 50 * ETHER})
    _vote(s, dispute_id, {voter: True})
    d = s.committee.dispute(dispute_id)
    assert d["phase"] == REVEALING
    assert (d["fraudStake"], d["honestStake"]) == (VALIDATOR_STAKES[2], 0)
    assert s.committee.ballot(dispute_id, voter)["weight"] == VALIDATOR_STAKES[2]


# ------------------------------------------------------------------------------------------------ outcomes


def test_fraud_majority_slashes_node_pays_challenger_and_majority(suite):
    s = suite
    v1, v2, v3 = s.validators
    dispute_id = _drawn(s)
    _vote(s, dispute_id, {v1: False, v2: True, v3: True})
    burned_before = web3.eth.get_balance(BURN)
    available_before = s.ledger.task(s.float_task)["available"]
    tx = _finalize(s, dispute_id)

    slashed = NODE_STAKE
    fraud_stake = VALIDATOR_STAKES[1] + VALIDATOR_STAKES[2]
    pool = slashed // 4
    shares = {v2: pool * VALIDATOR_STAKES[1] // fraud_stake, v3: pool * VALIDATOR_STAKES[2] // fraud_stake}
    assert tx.events["Resolved"]["outcome"] == FRAUD and tx.events["Resolved"]["slashed"] == slashed
    assert s.committee.claimable(s.challenger) == BOND + slashed // 2
    assert {v: s.committee.claimable(v) for v in (v1, v2, v3)} == {v1: 0, **shares}
    assert s.committee.claimable(s.node) == 0
    assert web3.eth.get_balance(BURN) - burned_before == slashed - slashed // 2 - sum(shares.values())
    assert s.staking.slashableOf(s.node) == 0
    assert s.ledger.commitmentState(s.posted.id)["status"] == INVALIDATED
    assert s.ledger.task(s.float_task)["available"] == available_before + TOKENS * PRICE
    assert s.committee.balance() == BOND + slashed // 2 + sum(shares.values())


def test_fraud_rewards_are_claimable_exactly(suite):
    s = suite
    v1, v2, v3 = s.validators
    dispute_id = _drawn(s)
    _vote(s, dispute_id, {v1: True, v2: True, v3: True})
    _finalize(s, dispute_id)
    for account in (s.challenger, v1, v2, v3):
        owed, before = s.committee.claimable(account), account.balance()
        tx = s.committee.claim({"from": account})
        assert tx.events["Claimed"]["amount"] == owed > 0
        assert account.balance() - before == owed
        assert s.committee.claimable(account) == 0
    assert s.committee.balance() == 0


def test_honest_majority_splits_bond_between_node_and_majority(suite):
    s = suite
    v1, v2, v3 = s.validators
    dispute_id = _drawn(s)
    _vote(s, dispute_id, {v1: True, v2: False, v3: False})
    burned_before = web3.eth.get_balance(BURN)
    tx = _finalize(s, dispute_id)

    honest_stake = VALIDATOR_STAKES[1] + VALIDATOR_STAKES[2]
    pool = BOND - BOND // 2
    shares = {v2: pool * VALIDATOR_STAKES[1] // honest_stake, v3: pool * VALIDATOR_STAKES[2] // honest_stake}
    assert tx.events["Resolved"]["outcome"] == HONEST and tx.events["Resolved"]["slashed"] == 0
    assert s.committee.claimable(s.node) == BOND // 2
    assert {v: s.committee.claimable(v) for v in (v1, v2, v3)} == {v1: 0, **shares}
    assert s.committee.claimable(s.challenger) == 0
    assert web3.eth.get_balance(BURN) - burned_before == pool - sum(shares.values())
    assert s.staking.stakeOf(s.node) == NODE_STAKE
    assert s.ledger.commitmentState(s.posted.id)["status"] == POSTED
    assert s.ledger.commitmentState(s.posted.id)["openDisputes"] == 0


def test_honest_commitment_can_be_finalized_after_dispute(suite):
    s = suite
    dispute_id = _drawn(s)
    _vote(s, dispute_id, {v: False for v in s.validators})
    _finalize(s, dispute_id)
    chain.sleep(CHALLENGE_WINDOW)
    s.ledger.finalize(s.posted.commitment.as_tuple(), {"from": s.deployer})
    assert s.ledger.claimable(s.node) == TOKENS * PRICE


def test_tie_is_undecided_and_returns_bond(suite):
    s = suite
    v1, v2, v3 = s.validators
    dispute_id = _drawn(s)
    _vote(s, dispute_id, {v1: True, v2: True, v3: False})  # 1 + 2 == 3 ether
    burned_before = web3.eth.get_balance(BURN)
    tx = _finalize(s, dispute_id)
    assert tx.events["Resolved"]["outcome"] == UNDECIDED
    assert s.committee.claimable(s.challenger) == BOND
    assert all(s.committee.claimable(v) == 0 for v in (s.node, v1, v2, v3))
    assert web3.eth.get_balance(BURN) == burned_before
    assert s.ledger.commitmentState(s.posted.id)["status"] == POSTED


def test_no_reveal_is_undecided_and_penalises_every_member(suite):
    s = suite
    dispute_id = _drawn(s)
    burned_before = web3.eth.get_balance(BURN)
    tx = _finalize(s, dispute_id)
    assert tx.events["Resolved"]["outcome"] == UNDECIDED
    assert s.committee.claimable(s.challenger) == BOND
    assert [e["voter"] for e in tx.events["NonRevealPenalized"]] == list(s.committee.committee(dispute_id)[0])
    assert [s.staking.stakeOf(v) for v in s.validators] == [st - NON_REVEAL_PENALTY for st in VALIDATOR_STAKES]
    assert web3.eth.get_balance(BURN) - burned_before == COMMITTEE_SIZE * NON_REVEAL_PENALTY


def test_members_who_commit_but_do_not_reveal_are_penalised(suite):
    s = suite
    v1, v2, v3 = s.validators
    dispute_id = _drawn(s)
    s.committee.commitVote(dispute_id, s.committee.voteCommitment(dispute_id, _salt(v1), v1, False), {"from": v1})
    _vote(s, dispute_id, {v2: True, v3: True})
    burned_before = web3.eth.get_balance(BURN)
    tx = _finalize(s, dispute_id)
    assert [(e["voter"], e["penalty"]) for e in tx.events["NonRevealPenalized"]] == [(v1.address, NON_REVEAL_PENALTY)]
    assert s.staking.stakeOf(v1) == VALIDATOR_STAKES[0] - NON_REVEAL_PENALTY
    assert s.staking.stakeOf(v2) == VALIDATOR_STAKES[1]
    fraud_stake = VALIDATOR_STAKES[1] + VALIDATOR_STAKES[2]
    paid = sum(NODE_STAKE // 4 * w // fraud_stake for w in VALIDATOR_STAKES[1:])
    assert web3.eth.get_balance(BURN) - burned_before == (
        NODE_STAKE - NODE_STAKE // 2 - paid + NON_REVEAL_PENALTY)


def test_no_draw_by_draw_deadline_is_undecided(suite):
    s = suite
    dispute_id = _challenge(s)
    chain.sleep(DRAW_WINDOW + 1)
    tx = s.committee.finalize(dispute_id, {"from": s.deployer})
    assert tx.events["Resolved"]["outcome"] == UNDECIDED
    assert "NonRevealPenalized" not in tx.events
    assert s.committee.claimable(s.challenger) == BOND
    assert s.staking.locksOf(s.node) == 0
    assert s.ledger.commitmentState(s.posted.id)["openDisputes"] == 0


def test_finalize_releases_every_lock(suite):
    s = suite
    dispute_id = _drawn(s)
    _vote(s, dispute_id, {v: False for v in s.validators})
    _finalize(s, dispute_id)
    assert [s.staking.locksOf(a) for a in (s.node, *s.validators)] == [0] * 4
    assert s.committee.dispute(dispute_id)["phase"] == RESOLVED


def test_locked_node_cannot_withdraw_until_finalized(suite):
    s = suite
    dispute_id = _challenge(s)
    s.staking.requestUnbond(ETHER, {"from": s.node})
    chain.sleep(UNBONDING_DELAY + 1)
    with reverts_with("StakeLocked(address,uint256)", s.node.address, 1):
        s.staking.withdraw({"from": s.node})
    s.committee.finalize(dispute_id, {"from": s.deployer})  # no draw by the deadline: undecided
    s.staking.withdraw({"from": s.node})


def test_finalize_before_reveal_deadline_reverts(suite):
    s = suite
    dispute_id = _drawn(s)
    with reverts_with("DeadlineNotReached(uint256)", s.committee.dispute(dispute_id)["revealDeadline"]):
        s.committee.finalize(dispute_id, {"from": s.deployer})


def test_finalize_before_draw_deadline_reverts(suite):
    s = suite
    dispute_id = _challenge(s)
    with reverts_with("DeadlineNotReached(uint256)", s.committee.dispute(dispute_id)["drawDeadline"]):
        s.committee.finalize(dispute_id, {"from": s.deployer})


def test_finalize_twice_reverts_wrong_phase(suite):
    s = suite
    dispute_id = _challenge(s)
    chain.sleep(DRAW_WINDOW + 1)
    s.committee.finalize(dispute_id, {"from": s.deployer})
    with reverts_with("WrongPhase(uint256,uint8)", dispute_id, RESOLVED):
        s.committee.finalize(dispute_id, {"from": s.deployer})


def test_finalize_unknown_dispute_reverts(suite):
    with reverts_with("UnknownDispute(uint256)", 0):
        suite.committee.finalize(0, {"from": suite.deployer})


# ------------------------------------------------------------------------------------------------ money


def test_claim_with_nothing_owed_reverts(suite):
    with reverts_with("NothingToClaim()"):
        suite.committee.claim({"from": suite.challenger})


def test_plain_eth_transfer_reverts(suite):
    with reverts_with("NotStaking(address)", suite.deployer.address):
        suite.deployer.transfer(suite.committee, 1)
