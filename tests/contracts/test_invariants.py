"""Stateful property test of the whole contract suite: random sequences of stake, unbond, withdraw, fund, commit,
challenge (exact fraud proof and committee), respond, prove, vote, finalize, claim and time travel, valid and invalid.

The state machine keeps its own model of the protocol (docs/protocol.md) and, after every step, checks:
- the money invariant of section 1: the ETH held by the contracts equals stakes + unbonding + escrow (available +
  reserved) + bonds of open disputes + claimable balances, all summed from the contracts' views;
- that every view the model predicts (stakes, unbonding, locks, escrow, commitment states, dispute phases and tallies,
  claimable balances, burned ETH) matches the chain to the wei;
- that no account has ever received more than it paid in plus what the model credited to it as owed.
Every action is predicted valid or invalid, with the custom error the contract checks first; an invalid action must
revert with that error and leave every balance unchanged. In a successful transaction only the sender's balance may
move (pull payments), besides burned ETH.

Block timestamps are set before every transaction (anvil's evm_setNextBlockTimestamp), so the model knows the exact
second each one runs at and tests deadlines to the second; the "at" time jump lands exactly on a deadline.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import functools

import pytest
import requests
from brownie import chain, web3
from brownie.exceptions import VirtualMachineError
from brownie.test import strategy
from eth_utils import keccak
from hypothesis import settings
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

from bmoe_py.chain.deploy import DeployParams, deploy_suite
from bmoe_py.crypto import Commitment, MerkleTree, TokenLeaf, WeightsTree, request_id, token_tree
from bmoe_py.model.int8_ref import IntLayer, expert_forward, layer_forward
from tests.contracts.committee_draw import draw_seed, sample_committee

ETHER = 10**18
QUARTER = ETHER // 4
HOUR = 3600
DAY = 86400
BURN = "0x000000000000000000000000000000000000dEaD"

UNBONDING_DELAY = 7 * DAY
RESPONSE_WINDOW = DAY
PROOF_WINDOW = DAY
DRAW_WINDOW = HOUR
COMMIT_WINDOW = DAY
REVEAL_WINDOW = DAY
LONGEST_DISPUTE = DRAW_WINDOW + COMMIT_WINDOW + REVEAL_WINDOW
CHALLENGE_WINDOW = 2 * DAY

FRAUD_BOND = 3 * ETHER // 10
COMMITTEE_BOND = 2 * ETHER // 5 + 1  # odd: the honest split has a remainder to burn
COMMITTEE_SIZE = 2
NON_REVEAL_PENALTY = ETHER // 20
MIN_NODE_STAKE = 2 * ETHER
MIN_VALIDATOR_STAKE = ETHER
PRICE = 10**15

FLOAT, EXACT = 1, 0
# ICommitteeDispute.Phase and Outcome
AWAITING_DRAW, VOTING, REVEALING, RESOLVED = 1, 2, 3, 4
PENDING, FRAUD, HONEST, UNDECIDED = 0, 1, 2, 3
# IFraudProof.Phase
AWAITING_RESPONSE, AWAITING_PROOF, NODE_SLASHED, CHALLENGER_LOST = 1, 2, 3, 4
# IResultLedger.Status
POSTED, FINALIZED, INVALIDATED = 1, 2, 3

# Roles, by index into brownie's accounts. Everyone may try everything; these are only the starting positions.
DEPLOYER = 0
PUBLISHERS = [1, 2]
NODES = [3, 4]
VALIDATORS = [5, 6, 7, 8]
OUTSIDER = 9
INITIAL_STAKES = {3: 3 * ETHER, 4: 3 * ETHER, 5: ETHER, 6: 3 * ETHER // 2, 7: 2 * ETHER, 8: 5 * ETHER // 2}
# Time travel: fixed jumps; "next" jumps just past the next deadline the model knows of, "at" lands on it;
# "blocks" mines 257 blocks, so that a pending draw has to re-anchor its seed. Every action waits first (mostly
# not at all): hypothesis picks rules unevenly, and a separate sleep rule alone left most deadlines unreached.
SLEEPS = [1, HOUR, DAY, UNBONDING_DELAY, "next", "next", "at", "blocks"]
WAITS = [0, 0, 0, 0, 1, HOUR, DAY, UNBONDING_DELAY, "next", "at"]

# What the runs did, for `pytest -s`: how often each action succeeded or failed, and with which error.
ACTIONS: Counter = Counter()


def exact_expert() -> list[IntLayer]:
    """A small exact expert (4 -> 3 -> 2) whose outputs spread over the int8 range."""
    rng = np.random.default_rng(7)
    return [
        IntLayer(rng.integers(-60, 60, (3, 4), dtype=np.int8), rng.integers(-500, 500, 3, dtype=np.int32), 3, 7, True),
        IntLayer(rng.integers(-60, 60, (2, 3), dtype=np.int8), rng.integers(-500, 500, 2, dtype=np.int32), 5, 8, False),
    ]


EXPERT = exact_expert()
WEIGHTS = WeightsTree(EXPERT)


# ------------------------------------------------------------------------------------------------ model


@dataclass
class StakeModel:
    active: int = 0
    unbonding: int = 0
    ready_at: int = 0
    locks: int = 0

    def slash(self, amount: int) -> int:
        """Staking.slash: active stake first, then unbonding; returns what was taken."""
        from_active = min(amount, self.active)
        from_unbonding = min(amount - from_active, self.unbonding)
        self.active -= from_active
        self.unbonding -= from_unbonding
        return from_active + from_unbonding


@dataclass
class TaskModel:
    id: int
    publisher: str
    model_id: int
    available: int
    reserved: int = 0
    closed: bool = False


@dataclass
class Token:
    """One committed token of an exact window: its input and the activations the node claims for it."""

    input: bytes
    activations: list[bytes]


@dataclass
class WindowModel:
    """A posted commitment with its leaves (and, for an exact model, its tokens)."""

    commitment: Commitment
    leaves: list[TokenLeaf]
    tree: MerkleTree
    model_id: int
    tokens: list[Token]
    status: int = POSTED
    open_disputes: int = 0
    # leaf hash -> the latest dispute on it, per module
    committee_cases: dict = field(default_factory=dict)
    fraud_cases: dict = field(default_factory=dict)

    @property
    def payment(self) -> int:
        return self.commitment.token_count * PRICE


@dataclass
class BallotModel:
    weight: int
    fraud: bool | None = None  # the committed vote
    revealed: bool = False


@dataclass
class CommitteeCase:
    id: int
    window: WindowModel
    challenger: str
    anchor: int
    draw_deadline: int
    phase: int = AWAITING_DRAW
    commit_deadline: int = 0
    reveal_deadline: int = 0
    members: list[str] = field(default_factory=list)
    ballots: dict[str, BallotModel] = field(default_factory=dict)
    fraud_stake: int = 0
    honest_stake: int = 0
    outcome: int = PENDING

    @property
    def node(self) -> str:
        return self.window.commitment.node


@dataclass
class FraudCase:
    id: int
    window: WindowModel
    token: Token
    challenger: str
    deadline: int
    phase: int = AWAITING_RESPONSE

    @property
    def node(self) -> str:
        return self.window.commitment.node


def salt_of(dispute_id: int, voter: str) -> bytes:
    return keccak(b"salt" + dispute_id.to_bytes(32, "big") + bytes.fromhex(voter[2:]))


# ------------------------------------------------------------------------------------------------ batched reads


def rpc_batch(calls: list[tuple[str, list]]) -> list:
    """Sends JSON-RPC calls in one HTTP request: reading ~70 views one by one would make each step ~10x slower."""
    payload = [{"jsonrpc": "2.0", "id": i, "method": method, "params": params}
               for i, (method, params) in enumerate(calls)]
    replies = {r["id"]: r for r in requests.post(web3.provider.endpoint_uri, json=payload, timeout=60).json()}
    return [replies[i]["result"] for i in range(len(calls))]


def call_views(calls: list[tuple]) -> list:
    """Calls view functions (ContractCall, *args) at the latest block; values as plain ints, bools, tuples."""
    results = rpc_batch([("eth_call", [{"to": fn._address, "data": fn.encode_input(*args)}, "latest"])
                         for fn, *args in calls])
    return [plain(fn.decode_output(r)) for (fn, *_), r in zip(calls, results)]


def get_balances(addresses: list[str]) -> list[int]:
    return [int(b, 16) for b in rpc_batch([("eth_getBalance", [a, "latest"]) for a in addresses])]


def plain(value):
    """brownie's return types as plain Python values (its mypyc-compiled Wei raises on arithmetic with int)."""
    if isinstance(value, (tuple, list)):
        return tuple(plain(v) for v in value)
    if isinstance(value, bool) or not isinstance(value, int):
        return value
    return int(value)


# ------------------------------------------------------------------------------------------------ fixture


@dataclass
class Suite:
    staking: object
    registry: object
    ledger: object
    fraud: object
    committee: object
    accounts: list
    float_model: int
    exact_model: int


@pytest.fixture(scope="module")
def suite(accounts, Staking, ExpertRegistry, ResultLedger, FraudProof, CommitteeDispute, Screening) -> Suite:
    """The suite deployed and wired as docs/protocol.md section 1 says, a float and an exact model, staked nodes
    hosting both, and four validators."""
    names = ("Staking", "ExpertRegistry", "ResultLedger", "FraudProof", "CommitteeDispute", "Screening")
    containers = dict(zip(names, (Staking, ExpertRegistry, ResultLedger, FraudProof, CommitteeDispute, Screening)))
    params = DeployParams(
        unbonding_delay=UNBONDING_DELAY, fraud_bond=FRAUD_BOND, response_window=RESPONSE_WINDOW,
        proof_window=PROOF_WINDOW, committee_bond=COMMITTEE_BOND, committee_size=COMMITTEE_SIZE, draw_window=DRAW_WINDOW,
        commit_window=COMMIT_WINDOW, reveal_window=REVEAL_WINDOW, non_reveal_penalty=NON_REVEAL_PENALTY,
    )
    assert params.longest_dispute == LONGEST_DISPUTE
    deployed = deploy_suite(accounts[DEPLOYER], params, containers=containers, log=lambda _: None)
    staking, registry, ledger, fraud, committee = (deployed[name] for name in names[:5])

    owner = accounts[PUBLISHERS[0]]
    model_ids = []
    for mode in (FLOAT, EXACT):
        params = (mode, 1, 1000 if mode == FLOAT else 0, CHALLENGE_WINDOW, MIN_NODE_STAKE, MIN_VALIDATOR_STAKE,
                  "bafy-gate", keccak(b"gate"))
        model_id = registry.registerModel(params, {"from": owner}).events["ModelRegistered"]["modelId"]
        if mode == FLOAT:
            layers, root = [(4, 3, 0, 0, False), (3, 2, 0, 0, False)], keccak(b"float weights")
        else:
            layers, root = [(l.in_dim, l.out_dim, l.multiplier, l.shift, l.relu) for l in EXPERT], WEIGHTS.root
        registry.publishExpert(model_id, 0, "bafy-weights", root, layers, {"from": owner})
        model_ids.append(model_id)
    for i, stake in INITIAL_STAKES.items():
        staking.deposit({"from": accounts[i], "value": stake})
    for i in VALIDATORS:
        staking.joinValidators({"from": accounts[i]})
    for i in NODES:
        for model_id in model_ids:
            registry.registerHost(model_id, 0, "http://node", {"from": accounts[i]})
    return Suite(staking, registry, ledger, fraud, committee, list(accounts), *model_ids)


# ------------------------------------------------------------------------------------------------ machine

st_actor = strategy("uint8", max_value=9)
st_quarters = strategy("uint8", max_value=12)
st_pick = strategy("uint16")
st_bool = strategy("bool")
st_kind = strategy("uint8", max_value=2)
st_tamper = strategy("uint8", max_value=3)  # 0 and 1: two kinds of bad argument; 2, 3: none
st_tokens = strategy("uint8", min_value=1, max_value=4)
st_layer = strategy("uint8", max_value=len(EXPERT) - 1)
st_row = strategy("uint8", max_value=7)
st_sleep = strategy("uint8", max_value=len(SLEEPS) - 1)
st_wait = strategy("uint8", max_value=len(WAITS) - 1)
st_stage = strategy("uint8", max_value=3)


def step(**strategies):
    """@rule with a `wait` before the action (index into WAITS; 0, no wait, when called directly)."""

    def decorate(action):
        @functools.wraps(action)
        def run(self, wait=0, **kwargs):
            self._travel(WAITS[wait])
            return action(self, **kwargs)

        return rule(wait=st_wait, **strategies)(run)

    return decorate


class Machine(RuleBasedStateMachine):
    """Rules are the protocol's actions with random actors and arguments; `suite` is set on a subclass."""

    suite: Suite

    def __init__(self) -> None:
        # Every example starts from the deployed suite (the snapshot the test took).
        chain.revert()
        super().__init__()
        s = self.s = self.suite
        self.addresses = [a.address for a in s.accounts]
        self.contracts = {"staking": s.staking, "registry": s.registry, "ledger": s.ledger, "fraud": s.fraud,
                          "committee": s.committee}
        self.watched = self.addresses + [c.address for c in self.contracts.values()] + [BURN]
        self.now = web3.eth.get_block("latest").timestamp
        self.stakes = {a: StakeModel() for a in self.addresses}
        for i, stake in INITIAL_STAKES.items():
            self.stakes[self.addresses[i]].active = stake
        self.validators = [self.addresses[i] for i in VALIDATORS]
        self.tasks: list[TaskModel] = []
        self.windows: list[WindowModel] = []
        self.cases: list[CommitteeCase] = []
        self.fraud_cases: list[FraudCase] = []
        self.claimable = {(name, a): 0 for name in ("ledger", "fraud", "committee") for a in self.addresses}
        # The fixture's stakes count as paid in.
        self.deposited = {a: INITIAL_STAKES.get(i, 0) for i, a in enumerate(self.addresses)}
        self.credited = {a: 0 for a in self.addresses}
        self.received = {a: 0 for a in self.addresses}
        self.burn_start = web3.eth.get_balance(BURN)
        self.burned = 0
        self.salt = 0
        assert list(s.staking.validators()) == self.validators

    @initialize(lie=st_bool, first_vote=st_bool, second_vote=st_bool, fraud_stage=st_stage, vote_stage=st_stage)
    def start_with_work_in_flight(self, lie, first_vote, second_vote, fraud_stage, vote_stage):
        """Every run starts with funded tasks, posted windows and disputes at random stages, so that short random
        runs still reach the later steps (reveals, verdicts, slashing, payouts)."""
        # A validator and a node start unbonding (validator stakes stay distinct: 1, 1.5, 1.75, 2.5 ether, so that
        # no two committees of two tie by weight).
        self.rule_unbond(who=7, quarters=1)
        self.rule_unbond(who=4, quarters=4)
        self.rule_fund(who=1, pick=1, quarters=4, new=True)  # float task, 1 ether
        self.rule_fund(who=1, pick=0, quarters=4, new=True)  # exact task
        self.rule_commit(who=0, pick=1, tokens=2, lie=False)  # window 0: node 3, float
        self.rule_commit(who=1, pick=1, tokens=3, lie=False)  # window 1: node 4, float
        self.rule_commit(who=0, pick=5, tokens=2, lie=lie)  # window 2: node 3, exact; if it lies, token 1 is wrong
        self.rule_challenge(who=5, pick=1, leaf=0, to_committee=True, tamper=2)  # window 0, by a validator
        self.rule_challenge(who=9, pick=5, leaf=1, to_committee=True, tamper=2)  # window 1, by an outsider
        self.rule_challenge(who=6, pick=1, leaf=1, to_committee=False, tamper=2)  # window 2 token 1, by a validator
        self.rule_draw(who=0, pick=1)  # the first committee
        case, fraud_case = self.cases[0], self.fraud_cases[0]
        assert case.phase == VOTING and fraud_case.phase == AWAITING_RESPONSE
        if fraud_stage:
            self.rule_respond(pick=1, tamper=2)
        if vote_stage:
            self.rule_commit_vote(who=1, pick=1, fraud=first_vote)
            self.rule_commit_vote(who=1, pick=1, fraud=second_vote)
        if vote_stage >= 2:
            self.now = case.commit_deadline  # the next transaction runs in the reveal window
        if vote_stage == 3:
            self.rule_reveal_vote(who=1, pick=1, fraud=first_vote, honest=True)
            self.rule_reveal_vote(who=1, pick=1, fraud=second_vote, honest=True)
            self.now = case.reveal_deadline  # finalizable from the next transaction on

    # -------------------------------------------------------------------------------------- transactions

    def _send(self, fn, *args, sender: str, value: int = 0, error: str | None = None):
        """Sends one transaction at the model's next second. `error` is the custom error the model expects
        (None: success). Tracks what the sender paid in and received."""
        self.now += 1
        web3.provider.make_request("evm_setNextBlockTimestamp", [self.now])
        ACTIONS[f"{fn._name}: {error or 'ok'}"] += 1
        before = self._balances()
        try:
            tx = fn(*args, {"from": sender, "value": value})
        except VirtualMachineError as exc:
            assert error is not None, f"{fn._name} reverted unexpectedly: {exc.revert_msg}"
            assert exc.revert_msg.split(":")[0] == error, f"{fn._name}: expected {error}, got {exc.revert_msg}"
            assert self._balances() == before, "a reverted transaction moved ETH"
            return None
        assert error is None, f"{fn._name} should have reverted with {error}"
        assert tx.timestamp == self.now
        after = self._balances()
        for address in self.watched:
            delta = after[address] - before[address]
            if address == sender:
                self.deposited[sender] += value
                self.received[sender] += delta + value
            elif address == BURN:
                assert delta >= 0
            elif address in self.addresses:
                assert delta == 0, f"{address} received ETH in a transaction it did not send"
        return tx

    def _balances(self) -> dict[str, int]:
        return dict(zip(self.watched, get_balances(self.watched)))

    def _credit(self, contract: str, account: str, amount: int) -> None:
        self.claimable[(contract, account)] += amount
        self.credited[account] += amount

    def _pick(self, items: list, pick: int, prefer=None):
        """items[pick], mostly among those satisfying `prefer` (the ones the action can succeed on); one pick in
        four is among all items, so that actions on the wrong item are attempted too."""
        if prefer is not None and pick % 4:
            items = [item for item in items if prefer(item)] or items
        return items[pick // 4 % len(items)] if items else None

    # -------------------------------------------------------------------------------------- staking

    @step(who=st_actor, quarters=st_quarters)
    def rule_stake(self, who, quarters):
        account, amount = self.addresses[who], quarters * QUARTER
        if self._send(self.s.staking.deposit, sender=account, value=amount, error=None if amount else "ZeroAmount"):
            self.stakes[account].active += amount

    @step(who=st_actor, quarters=st_quarters)
    def rule_unbond(self, who, quarters):
        account, amount = self.addresses[who], quarters * QUARTER
        stake = self.stakes[account]
        error = "ZeroAmount" if amount == 0 else "InsufficientStake" if amount > stake.active else None
        if self._send(self.s.staking.requestUnbond, amount, sender=account, error=error):
            stake.active -= amount
            stake.unbonding += amount
            stake.ready_at = self.now + UNBONDING_DELAY

    @step(who=st_pick)
    def rule_withdraw(self, who):
        account = self._pick(self.addresses, who, lambda a: self._can_withdraw(self.stakes[a]))
        stake = self.stakes[account]
        error = None
        if stake.unbonding == 0:
            error = "NothingToWithdraw"
        elif self.now + 1 < stake.ready_at:
            error = "UnbondingNotDue"
        elif stake.locks > 0:
            error = "StakeLocked"
        received = self.received[account]
        if self._send(self.s.staking.withdraw, sender=account, error=error):
            assert self.received[account] - received == stake.unbonding
            stake.unbonding, stake.ready_at = 0, 0

    def _can_withdraw(self, stake: StakeModel) -> bool:
        return stake.unbonding > 0 and self.now + 1 >= stake.ready_at and not stake.locks

    # -------------------------------------------------------------------------------------- tasks and results

    @step(who=st_actor, pick=st_pick, quarters=st_quarters, new=st_bool)
    def rule_fund(self, who, pick, quarters, new):
        """Creates a task (on either model) or adds to an existing one (its publisher only)."""
        account, amount = self.addresses[who], quarters * QUARTER
        task = self._pick(self.tasks, pick)
        if new or task is None:
            model_id = self.s.float_model if pick % 2 else self.s.exact_model
            tx = self._send(self.s.ledger.createTask, model_id, PRICE, sender=account, value=amount,
                            error=None if amount else "ZeroAmount")
            if tx:
                task_id = tx.events["TaskCreated"]["taskId"]
                assert task_id == len(self.tasks) + 1
                self.tasks.append(TaskModel(task_id, account, model_id, amount))
            return
        error = None
        if account != task.publisher:
            error = "NotPublisher"
        elif task.closed:
            error = "TaskAlreadyClosed"
        elif amount == 0:
            error = "ZeroAmount"
        if self._send(self.s.ledger.fund, task.id, sender=account, value=amount, error=error):
            task.available += amount

    @step(who=st_actor, pick=st_pick)
    def rule_close_task(self, who, pick):
        task = self._pick(self.tasks, pick, lambda t: not t.closed)
        if task is None:
            return
        account = self.addresses[who] if who % 3 == 0 else task.publisher  # mostly the publisher
        error = "NotPublisher" if account != task.publisher else "TaskAlreadyClosed" if task.closed else None
        if self._send(self.s.ledger.closeTask, task.id, sender=account, error=error):
            self._credit("ledger", account, task.available)
            task.available, task.closed = 0, True

    @step(who=st_actor, pick=st_pick, tokens=st_tokens, lie=st_bool)
    def rule_commit(self, who, pick, tokens, lie):
        """A node commits a window of `tokens` results; for an exact model, one of them is wrong if it `lie`s."""
        task = self._pick(self.tasks, pick, lambda t: not t.closed)
        if task is None:
            return
        account = self.addresses[NODES[who % 2]] if who < 8 else self.addresses[who]  # mostly a node
        self.salt += 1
        rid = request_id(task.id, task.publisher, self.salt)
        token_list = []
        if task.model_id == self.s.exact_model:
            rng = np.random.default_rng(self.salt)
            for t in range(tokens):
                x = rng.integers(-128, 128, EXPERT[0].in_dim, dtype=np.int8)
                activations = expert_forward(EXPERT, x)
                if lie and t == self.salt % tokens:
                    # a forged output: every element of the last layer differs from the true one
                    activations[-1] = activations[-1] ^ np.int8(1)
                token_list.append(Token(x.tobytes(), [a.tobytes() for a in activations]))
        else:
            token_list = [Token(b"in%d" % t, [b"out%d" % self.salt]) for t in range(tokens)]
        leaves = [TokenLeaf(account, task.model_id, 0, 1, rid, t, keccak(tok.input), keccak(tok.activations[-1]))
                  for t, tok in enumerate(token_list)]
        tree = token_tree(leaves)
        payment = tokens * PRICE
        error = None
        if task.closed:
            error = "TaskAlreadyClosed"
        elif account not in (self.addresses[i] for i in NODES) or self.stakes[account].active < MIN_NODE_STAKE:
            error = "NotActiveHost"
        elif payment > task.available:
            error = "InsufficientEscrow"
        tx = self._send(self.s.ledger.commit, task.id, 0, 1, tree.root, tokens, "bafy", sender=account, error=error)
        if tx:
            commitment = Commitment.from_event(tx.events["CommitmentPosted"]["commitment"])
            assert commitment == Commitment(task.id, account, 0, 1, tokens, self.now, tree.root)
            task.available -= payment
            task.reserved += payment
            self.windows.append(WindowModel(commitment, leaves, tree, task.model_id, token_list))

    def _task(self, window: WindowModel) -> TaskModel:
        return self.tasks[window.commitment.task_id - 1]

    def _close_dispute(self, window: WindowModel, fraud: bool) -> None:
        """ResultLedger.closeDispute as the dispute modules call it."""
        window.open_disputes -= 1
        if fraud and window.status == POSTED:
            window.status = INVALIDATED
            task = self._task(window)
            task.reserved -= window.payment
            if task.closed:
                self._credit("ledger", task.publisher, window.payment)
            else:
                task.available += window.payment

    def _ledger_open_dispute_error(self, window: WindowModel) -> str | None:
        if window.status != POSTED:
            return "WrongStatus"
        if self.now + 1 >= window.commitment.posted_at + CHALLENGE_WINDOW:
            return "ChallengeWindowClosed"
        return None

    # -------------------------------------------------------------------------------------- challenges

    @step(who=st_actor, pick=st_pick, leaf=st_pick, to_committee=st_bool, tamper=st_tamper)
    def rule_challenge(self, who, pick, leaf, to_committee, tamper):
        """Challenges a leaf, mostly through the module of the window's model (the other one must refuse); now and
        then with a wrong bond (tamper 0) or, for the fraud proof, a wrong input (tamper 1)."""
        model = self.s.float_model if to_committee else self.s.exact_model
        window = self._pick(self.windows, pick, lambda w: w.model_id == model and not self._ledger_open_dispute_error(w))
        if window is None:
            return
        index = leaf % len(window.leaves)
        if to_committee:
            self._challenge_committee(self.addresses[who], window, index, wrong_bond=tamper == 0)
        else:
            self._challenge_exact(self.addresses[who], window, index, wrong_bond=tamper == 0, wrong_input=tamper == 1)

    def _challenge_committee(self, account: str, window: WindowModel, index: int, wrong_bond: bool) -> None:
        leaf_hash = window.leaves[index].hash()
        latest = window.committee_cases.get(leaf_hash)
        bond = COMMITTEE_BOND - 1 if wrong_bond else COMMITTEE_BOND
        error = None
        if wrong_bond:
            error = "WrongBond"
        elif window.model_id != self.s.float_model:
            error = "NotFloatModel"
        elif latest is not None and latest.outcome != UNDECIDED:
            error = "LeafAlreadyChallenged"
        else:
            error = self._ledger_open_dispute_error(window)
        tx = self._send(self.s.committee.challenge, window.commitment.as_tuple(), window.leaves[index].as_tuple(),
                        window.tree.proof(index), sender=account, value=bond, error=error)
        if tx:
            dispute_id = tx.events["Challenged"]["disputeId"]
            assert dispute_id == len(self.cases) + 1
            case = CommitteeCase(dispute_id, window, account, tx.block_number, self.now + DRAW_WINDOW)
            self.cases.append(case)
            window.committee_cases[leaf_hash] = case
            window.open_disputes += 1
            self.stakes[case.node].locks += 1

    def _challenge_exact(self, account: str, window: WindowModel, index: int, wrong_bond: bool,
                         wrong_input: bool) -> None:
        leaf_hash = window.leaves[index].hash()
        latest = window.fraud_cases.get(leaf_hash)
        token = window.tokens[index]
        token_input = token.input[::-1] + b"\x01" if wrong_input else token.input
        bond = FRAUD_BOND + 1 if wrong_bond else FRAUD_BOND
        error = None
        if wrong_bond:
            error = "WrongBond"
        elif window.model_id != self.s.exact_model:
            error = "NotExactModel"
        elif latest is not None and latest.phase != CHALLENGER_LOST:
            error = "LeafAlreadyChallenged"
        elif wrong_input:
            error = "InputHashMismatch"
        else:
            error = self._ledger_open_dispute_error(window)
        tx = self._send(self.s.fraud.challenge, window.commitment.as_tuple(), window.leaves[index].as_tuple(),
                        window.tree.proof(index), token_input, sender=account, value=bond, error=error)
        if tx:
            dispute_id = tx.events["Challenged"]["disputeId"]
            assert dispute_id == len(self.fraud_cases) + 1
            case = FraudCase(dispute_id, window, token, account, self.now + RESPONSE_WINDOW)
            self.fraud_cases.append(case)
            window.fraud_cases[leaf_hash] = case
            window.open_disputes += 1
            self.stakes[case.node].locks += 1

    # -------------------------------------------------------------------------------------- exact disputes

    @step(pick=st_pick, tamper=st_tamper)
    def rule_respond(self, pick, tamper):
        """The node answers with its activations; now and then someone else (tamper 0) or a forged output
        (tamper 1)."""
        case = self._pick(self.fraud_cases, pick, lambda c: c.phase == AWAITING_RESPONSE and self.now < c.deadline)
        if case is not None:
            self._respond(case, tamper)

    def _respond(self, case: FraudCase, tamper: int) -> None:
        sender = self.addresses[OUTSIDER] if tamper == 0 else case.node
        activations = list(case.token.activations)
        if tamper == 1:
            activations[-1] = bytes(b ^ 1 for b in activations[-1])
        error = None
        if case.phase != AWAITING_RESPONSE:
            error = "WrongPhase"
        elif self.now + 1 > case.deadline:
            error = "DeadlinePassed"
        elif sender != case.node:
            error = "NotNode"
        elif tamper == 1:
            error = "OutputHashMismatch"
        if self._send(self.s.fraud.respond, case.id, activations, sender=sender, error=error):
            case.phase = AWAITING_PROOF
            case.deadline = self.now + PROOF_WINDOW

    @step(pick=st_pick, layer=st_layer, row=st_row, tamper=st_tamper)
    def rule_prove(self, pick, layer, row, tamper):
        """The challenger names one row; fraud if the node's activation differs from the recomputed one. Now and
        then someone else (tamper 0) or a forged layer output (tamper 1)."""
        case = self._pick(self.fraud_cases, pick, lambda c: c.phase == AWAITING_PROOF and self.now < c.deadline)
        if case is not None:
            self._prove(case, layer, row, tamper)

    def _prove(self, case: FraudCase, layer: int, row: int, tamper: int) -> None:
        row %= EXPERT[layer].out_dim
        sender = self.addresses[OUTSIDER] if tamper == 0 and case.challenger != self.addresses[OUTSIDER] \
            else case.challenger
        layer_input = case.token.input if layer == 0 else case.token.activations[layer - 1]
        layer_output = case.token.activations[layer]
        if tamper == 1:
            layer_output = bytes(b ^ 2 for b in layer_output)
        weights = WEIGHTS.row(layer, row)
        error = None
        if case.phase != AWAITING_PROOF:
            error = "WrongPhase"
        elif self.now + 1 > case.deadline:
            error = "DeadlinePassed"
        elif sender != case.challenger:
            error = "NotChallenger"
        elif tamper == 1:
            error = "ActivationHashMismatch"
        if self._send(self.s.fraud.prove, case.id, layer, row, layer_input, layer_output, weights.weights,
                      weights.bias, WEIGHTS.proof(layer, row), sender=sender, error=error):
            x = np.frombuffer(layer_input, dtype=np.int8)
            recomputed = layer_forward(EXPERT[layer], x)[row]
            claimed = np.frombuffer(layer_output, dtype=np.int8)[row]
            self._resolve_exact(case, fraud=claimed != recomputed)

    def _resolve_exact(self, case: FraudCase, fraud: bool) -> None:
        """docs/protocol.md section 5: fraud slashes everything, bond + half to the challenger, the rest burned;
        honest gives the bond to the node."""
        ACTIONS[f"fraud proof outcome: {'fraud' if fraud else 'honest'}"] += 1
        node = self.stakes[case.node]
        if fraud:
            slashed = node.slash(node.active + node.unbonding)
            self._credit("fraud", case.challenger, FRAUD_BOND + slashed // 2)
            self.burned += slashed - slashed // 2
            case.phase = NODE_SLASHED
        else:
            self._credit("fraud", case.node, FRAUD_BOND)
            case.phase = CHALLENGER_LOST
        self._close_dispute(case.window, fraud)
        node.locks -= 1

    # -------------------------------------------------------------------------------------- committee disputes

    @step(who=st_actor, pick=st_pick)
    def rule_draw(self, who, pick):
        case = self._pick(self.cases, pick, lambda c: c.phase == AWAITING_DRAW and self.now < c.draw_deadline)
        if case is not None:
            self._draw(self.addresses[who], case)

    def _draw(self, sender: str, case: CommitteeCase) -> None:
        block = web3.eth.block_number + 1  # the block this transaction goes into
        error, reanchor, members = None, False, []
        if case.phase != AWAITING_DRAW:
            error = "WrongPhase"
        elif self.now + 1 > case.draw_deadline:
            error = "DeadlinePassed"
        elif block <= case.anchor + 1:
            error = "SeedNotReady"
        elif block - (case.anchor + 1) > 256:
            reanchor = True
        else:
            seed = draw_seed(web3.eth.get_block(case.anchor + 1).hash, case.id)
            stakes = {v: self.stakes[v].active for v in self.validators}
            members = sample_committee(seed, self.validators, stakes, {case.node, case.challenger},
                                       MIN_VALIDATOR_STAKE, COMMITTEE_SIZE)
            error = None if members else "NoEligibleValidators"
        tx = self._send(self.s.committee.drawCommittee, case.id, sender=sender, error=error)
        if tx and reanchor:
            assert "CommitteeDrawn" not in tx.events
            ACTIONS["drawCommittee: re-anchored"] += 1
            case.anchor = tx.block_number
        elif tx:
            assert list(tx.events["CommitteeDrawn"]["members"]) == members
            case.phase, case.members = VOTING, members
            case.commit_deadline = self.now + COMMIT_WINDOW
            case.reveal_deadline = case.commit_deadline + REVEAL_WINDOW
            for member in members:
                case.ballots[member] = BallotModel(self.stakes[member].active)
                self.stakes[member].locks += 1

    @step(who=st_actor, pick=st_pick, fraud=st_bool)
    def rule_commit_vote(self, who, pick, fraud):
        """A committee member commits a vote: mostly a member who has not yet, sometimes any account."""
        case = self._pick(self.cases, pick, lambda c: c.phase == VOTING and self.now < c.commit_deadline)
        if case is not None:
            voter = self._voter(case, who, lambda b: b.fraud is None)
            self._commit_vote(case, voter, case.ballots.get(voter), fraud)

    @step(who=st_actor, pick=st_pick, fraud=st_bool, honest=st_bool)
    def rule_reveal_vote(self, who, pick, fraud, honest):
        """A committee member reveals its vote (if not `honest`, a random one, which may not match)."""
        case = self._pick(self.cases, pick, lambda c: c.phase in (VOTING, REVEALING)
                          and c.commit_deadline <= self.now < c.reveal_deadline)
        if case is not None:
            voter = self._voter(case, who, lambda b: b.fraud is not None and not b.revealed)
            ballot = case.ballots.get(voter)
            committed = ballot.fraud if ballot is not None else None
            self._reveal_vote(case, voter, ballot, committed if honest and committed is not None else fraud)

    def _voter(self, case: CommitteeCase, who: int, can_act) -> str:
        """Mostly a member whose ballot satisfies `can_act`; for who >= 8 that account, member or not."""
        if who >= 8:
            return self.addresses[who]
        members = case.members or self.validators
        return self._pick(members, who, lambda m: m in case.ballots and can_act(case.ballots[m]))

    def _commit_vote(self, case: CommitteeCase, voter: str, ballot: BallotModel | None, fraud: bool) -> None:
        error = None
        if case.phase != VOTING:
            error = "WrongPhase"
        elif self.now + 1 > case.commit_deadline:
            error = "DeadlinePassed"
        elif ballot is None:
            error = "NotCommitteeMember"
        elif ballot.fraud is not None:
            error = "AlreadyCommitted"
        hidden = self.s.committee.voteCommitment(case.id, salt_of(case.id, voter), voter, fraud)
        if self._send(self.s.committee.commitVote, case.id, hidden, sender=voter, error=error):
            ballot.fraud = fraud

    def _reveal_vote(self, case: CommitteeCase, voter: str, ballot: BallotModel | None, fraud: bool) -> None:
        error = None
        if case.phase not in (VOTING, REVEALING):
            error = "WrongPhase"
        elif self.now + 1 <= case.commit_deadline:
            error = "DeadlineNotReached"
        elif self.now + 1 > case.reveal_deadline:
            error = "DeadlinePassed"
        elif ballot is None:
            error = "NotCommitteeMember"
        elif ballot.fraud is None:
            error = "NotCommitted"
        elif ballot.revealed:
            error = "AlreadyRevealed"
        elif ballot.fraud != fraud:
            error = "RevealMismatch"
        if self._send(self.s.committee.revealVote, case.id, fraud, salt_of(case.id, voter), sender=voter,
                      error=error):
            ballot.revealed = True
            if fraud:
                case.fraud_stake += ballot.weight
            else:
                case.honest_stake += ballot.weight
            case.phase = REVEALING

    def _resolve_committee(self, case: CommitteeCase) -> None:
        """docs/protocol.md section 6: integer division, every remainder burned."""
        bond = COMMITTEE_BOND
        if case.fraud_stake > case.honest_stake:
            case.outcome, majority, majority_stake = FRAUD, True, case.fraud_stake
            node = self.stakes[case.node]
            slashed = node.slash(node.active + node.unbonding)
            pool = slashed // 4
            self._credit("committee", case.challenger, bond + slashed // 2)
            burned = slashed - slashed // 2
        elif case.honest_stake > case.fraud_stake:
            case.outcome, majority, majority_stake = HONEST, False, case.honest_stake
            pool = bond - bond // 2
            self._credit("committee", case.node, bond // 2)
            burned = pool
        else:
            case.outcome, majority = UNDECIDED, None
            self._credit("committee", case.challenger, bond)
            burned = 0
        ACTIONS[f"committee outcome: {['', 'fraud', 'honest', 'undecided'][case.outcome]}"] += 1
        for member in case.members:
            ballot = case.ballots[member]
            if majority is not None and ballot.revealed and ballot.fraud == majority:
                share = pool * ballot.weight // majority_stake
                self._credit("committee", member, share)
                burned -= share
        for member in case.members:
            if not case.ballots[member].revealed:
                burned += self.stakes[member].slash(NON_REVEAL_PENALTY)
        self.burned += burned
        self._close_dispute(case.window, case.outcome == FRAUD)
        self.stakes[case.node].locks -= 1
        for member in case.members:
            self.stakes[member].locks -= 1
        case.phase = RESOLVED

    # -------------------------------------------------------------------------------------- directed steps

    @step(who=st_actor, pick=st_pick, fraud=st_bool, layer=st_layer, row=st_row, tamper=st_tamper)
    def rule_advance_dispute(self, who, pick, fraud, layer, row, tamper):
        """Takes the next step of an open dispute of either module (the one its phase and the time call for),
        with the same random arguments as the rules above. Hypothesis enables a random subset of rules in each
        example (swarm testing), so without this step disputes seldom got to their verdicts in ~20 steps."""
        cases = [c for c in self.fraud_cases if c.phase in (AWAITING_RESPONSE, AWAITING_PROOF)]
        cases += [c for c in self.cases if c.phase != RESOLVED]
        case = self._pick(cases, pick)
        if case is None:
            return
        sender = self.addresses[who]
        if isinstance(case, FraudCase):
            if self.now >= case.deadline:
                self._timeout(sender, case)
            elif case.phase == AWAITING_RESPONSE:
                self._respond(case, tamper)
            else:
                self._prove(case, layer, row, tamper)
        elif case.phase == AWAITING_DRAW:
            if self.now < case.draw_deadline:
                self._draw(sender, case)
            else:
                self._finalize_committee(sender, case)
        elif self.now < case.commit_deadline:
            voter = self._voter(case, who, lambda b: b.fraud is None)
            self._commit_vote(case, voter, case.ballots.get(voter), fraud)
        elif self.now < case.reveal_deadline:
            voter = self._voter(case, who, lambda b: b.fraud is not None and not b.revealed)
            ballot = case.ballots.get(voter)
            honest = tamper != 0 and ballot is not None and ballot.fraud is not None
            self._reveal_vote(case, voter, ballot, ballot.fraud if honest else fraud)
        else:
            self._finalize_committee(sender, case)

    # -------------------------------------------------------------------------------------- finalisation

    @step(who=st_actor, pick=st_pick)
    def rule_finalize_commitment(self, who, pick):
        sender = self.addresses[who]
        window = self._pick(self.windows, pick, lambda w: w.status == POSTED and not w.open_disputes
                            and self.now + 1 >= w.commitment.posted_at + CHALLENGE_WINDOW)
        if window is None:
            return
        ends_at = window.commitment.posted_at + CHALLENGE_WINDOW
        error = None
        if window.status != POSTED:
            error = "WrongStatus"
        elif self.now + 1 < ends_at:
            error = "ChallengeWindowOpen"
        elif window.open_disputes:
            error = "DisputesOpen"
        if self._send(self.s.ledger.finalize, window.commitment.as_tuple(), sender=sender, error=error):
            window.status = FINALIZED
            self._task(window).reserved -= window.payment
            self._credit("ledger", window.commitment.node, window.payment)

    @step(who=st_actor, pick=st_pick)
    def rule_finalize_committee(self, who, pick):
        case = self._pick(self.cases, pick, lambda c: c.phase != RESOLVED
                          and self.now >= (c.draw_deadline if c.phase == AWAITING_DRAW else c.reveal_deadline))
        if case is not None:
            self._finalize_committee(self.addresses[who], case)

    def _finalize_committee(self, sender: str, case: CommitteeCase) -> None:
        if case.phase == AWAITING_DRAW:
            error = "DeadlineNotReached" if self.now + 1 <= case.draw_deadline else None
        elif case.phase in (VOTING, REVEALING):
            error = "DeadlineNotReached" if self.now + 1 <= case.reveal_deadline else None
        else:
            error = "WrongPhase"
        if self._send(self.s.committee.finalize, case.id, sender=sender, error=error):
            self._resolve_committee(case)

    @step(who=st_actor, pick=st_pick)
    def rule_timeout_exact(self, who, pick):
        """Anyone ends a fraud proof whose deadline passed: a silent node or a silent challenger loses."""
        case = self._pick(self.fraud_cases, pick, lambda c: c.phase in (AWAITING_RESPONSE, AWAITING_PROOF)
                          and self.now >= c.deadline)
        if case is not None:
            self._timeout(self.addresses[who], case)

    def _timeout(self, sender: str, case: FraudCase) -> None:
        error = None
        if case.phase not in (AWAITING_RESPONSE, AWAITING_PROOF):
            error = "WrongPhase"
        elif self.now + 1 <= case.deadline:
            error = "DeadlineNotReached"
        if self._send(self.s.fraud.timeout, case.id, sender=sender, error=error):
            # a silent node loses; a silent challenger loses
            self._resolve_exact(case, fraud=case.phase == AWAITING_RESPONSE)

    # -------------------------------------------------------------------------------------- claims and time

    @step(who=st_pick, kind=st_kind)
    def rule_claim(self, who, kind):
        """Someone claims from one contract: mostly an account that is owed something there."""
        name = ("ledger", "fraud", "committee")[kind]
        account = self._pick(self.addresses, who, lambda a: self.claimable[(name, a)] > 0)
        owed = self.claimable[(name, account)]
        received = self.received[account]
        if self._send(self.contracts[name].claim, sender=account, error=None if owed else "NothingToClaim"):
            assert self.received[account] - received == owed
            self.claimable[(name, account)] = 0

    @rule(choice=st_sleep)
    def rule_sleep(self, choice):
        self._travel(SLEEPS[choice])

    def _travel(self, jump: int | str) -> None:
        if jump == "blocks":
            web3.provider.make_request("anvil_mine", [hex(257), hex(1)])
            self.now = max(self.now, web3.eth.get_block("latest").timestamp)
        elif isinstance(jump, int):
            self.now += jump
        else:
            # Each deadline as the last second at which the earlier action is still allowed.
            deadlines = [w.commitment.posted_at + CHALLENGE_WINDOW - 1 for w in self.windows]
            deadlines += [s.ready_at - 1 for s in self.stakes.values() if s.unbonding]
            deadlines += [c.deadline for c in self.fraud_cases]
            for case in self.cases:
                deadlines += [case.draw_deadline, case.commit_deadline, case.reveal_deadline]
            upcoming = [d for d in deadlines if d > self.now + 1]
            if upcoming:
                # the next transaction runs at now + 1: exactly at the deadline, or just past it
                self.now = min(upcoming) - (1 if jump == "at" else 0)

    # -------------------------------------------------------------------------------------- invariants

    @invariant()
    def views_agree_with_model_and_money_is_conserved(self):
        """Reads every view once (one batched RPC request) and checks the three invariants against it."""
        views = self._read_views()
        self._check_money(views)
        self._check_model(views)
        self._check_lifetime_receipts()

    def _read_views(self) -> dict:
        s = self.s
        calls = {}
        for a in self.addresses:
            calls[("stake", a)] = (s.staking.stakeOf, a)
            calls[("unbonding", a)] = (s.staking.unbondingOf, a)
            calls[("locks", a)] = (s.staking.locksOf, a)
            for name in ("ledger", "fraud", "committee"):
                calls[(name, a)] = (self.contracts[name].claimable, a)
        for task in self.tasks:
            calls[("task", task.id)] = (s.ledger.task, task.id)
        for i, window in enumerate(self.windows):
            calls[("window", i)] = (s.ledger.commitmentState, window.commitment.id())
        for case in self.cases:
            calls[("case", case.id)] = (s.committee.dispute, case.id)
        for case in self.fraud_cases:
            calls[("fraud case", case.id)] = (s.fraud.dispute, case.id)
        views = dict(zip(calls, call_views(list(calls.values()))))
        views.update(zip([("balance", a) for a in self.watched], get_balances(self.watched)))
        return views

    def _check_money(self, v: dict) -> None:
        """docs/protocol.md section 1: ETH held == stakes + unbonding + escrow + bonds of open disputes + claimable."""
        stakes = sum(v[("stake", a)] + v[("unbonding", a)][0] for a in self.addresses)
        escrow = sum(v[("task", t.id)][4] + v[("task", t.id)][5] for t in self.tasks)
        bonds = sum(v[("case", c.id)][4] for c in self.cases if v[("case", c.id)][9] != RESOLVED)
        bonds += sum(v[("fraud case", c.id)][8] for c in self.fraud_cases
                     if v[("fraud case", c.id)][6] in (AWAITING_RESPONSE, AWAITING_PROOF))
        claimable = sum(v[(name, a)] for a in self.addresses for name in ("ledger", "fraud", "committee"))
        held = sum(v[("balance", c.address)] for c in self.contracts.values())
        assert held == stakes + escrow + bonds + claimable

    def _check_model(self, v: dict) -> None:
        """Every view the model predicts, to the wei."""
        for a, stake in self.stakes.items():
            assert (v[("stake", a)], *v[("unbonding", a)], v[("locks", a)]) == (
                stake.active, stake.unbonding, stake.ready_at, stake.locks), a
            for name in ("ledger", "fraud", "committee"):
                assert v[(name, a)] == self.claimable[(name, a)], (name, a)
        for t in self.tasks:
            assert v[("task", t.id)][1] == t.closed and v[("task", t.id)][4:6] == (t.available, t.reserved)
        for i, w in enumerate(self.windows):
            assert v[("window", i)] == (w.status, w.open_disputes)
        for c in self.cases:
            d = v[("case", c.id)]
            assert (d[5], d[9], d[10], d[11], d[12]) == (c.anchor, c.phase, c.outcome, c.fraud_stake, c.honest_stake)
        for c in self.fraud_cases:
            d = v[("fraud case", c.id)]
            assert (d[6], d[7]) == (c.phase, c.deadline)
        assert v[("balance", BURN)] - self.burn_start == self.burned

    def _check_lifetime_receipts(self) -> None:
        """No account ever received more than it paid in plus what the protocol credited to it."""
        for a in self.addresses:
            assert self.received[a] <= self.deposited[a] + self.credited[a], a


def test_suite_invariants(suite):
    # brownie.test.state_machine would do this, but the mypyc-compiled brownie.test.stateful of eth-brownie 1.22.2
    # cannot run any machine (its @final _BrownieStateMachine rejects the subclass it builds): this is the same thing
    # with hypothesis's own runner. Snapshot once; Machine.__init__ reverts to it before every example.
    chain.snapshot()
    machine = type("SuiteMachine", (Machine,), {"suite": suite})
    ACTIONS.clear()
    run_state_machine_as_test(machine, settings=settings(max_examples=30, stateful_step_count=20, deadline=None))
    print("\n" + "\n".join(f"{n:5d}  {name}" for name, n in sorted(ACTIONS.items())))
