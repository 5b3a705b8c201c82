"""Stateful property test of the whole contract suite: random sequences of stake, unbond, withdraw, fund, commit,
challenge, vote, finalize, claim and time travel, valid and invalid.

The state machine keeps its own model of the protocol (docs/protocol.md) and, after every step, checks:
- the money invariant of section 1: the ETH held by the contracts equals stakes + unbonding + escrow (available +
  reserved) + bonds of open disputes + claimable balances, summed from the contracts' views;
- that every view the model predicts (stakes, locks, escrow, commitment states, dispute phases, claimable balances,
  burned ETH) matches the chain to the wei;
- that no account has ever received more than it deposited plus what the model credited to it.
Every action is predicted valid or invalid (with the custom error the contract checks first); an invalid action
must revert and leave every balance unchanged. Only the caller's balance may move in a transaction (pull payments),
besides burned ETH.

Block timestamps are set explicitly before every transaction (anvil's evm_setNextBlockTimestamp), so that the model
knows the exact time each one runs at and can test deadlines to the second, boundaries included.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import pytest
import requests
from brownie import chain, web3
from brownie.exceptions import VirtualMachineError
from brownie.test import strategy
from hypothesis import settings
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test
from eth_utils import keccak

from bmoe_py.crypto import Commitment, MerkleTree, TokenLeaf, request_id, token_tree
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
# ICommitteeDispute.Phase / Outcome, IResultLedger.Status
AWAITING_DRAW, VOTING, REVEALING, RESOLVED = 1, 2, 3, 4
FRAUD, HONEST, UNDECIDED = 1, 2, 3
POSTED, FINALIZED, INVALIDATED = 1, 2, 3

# Roles, by index into brownie's accounts. Everyone may try everything; these are only the starting positions.
DEPLOYER = 0
PUBLISHERS = [1, 2]
NODES = [3, 4]
VALIDATORS = [5, 6, 7, 8]
OUTSIDER = 9
INITIAL_STAKES = {3: 3 * ETHER, 4: 3 * ETHER, 5: ETHER, 6: 3 * ETHER // 2, 7: 2 * ETHER, 8: 5 * ETHER // 2}
# Time travel: fixed jumps; "next" jumps to the next deadline the model knows of, "at" lands exactly on it.
SLEEPS = [1, HOUR, DAY, UNBONDING_DELAY, "next", "next", "at"]


# What the runs did, for `pytest -s` (how often each action succeeded or failed, and with which error).
ACTIONS: Counter = Counter()

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
    price: int
    available: int
    reserved: int = 0
    closed: bool = False


@dataclass
class WindowModel:
    """A posted commitment with its leaves."""

    commitment: Commitment
    leaves: list[TokenLeaf]
    tree: MerkleTree
    model_id: int
    status: int = POSTED
    open_disputes: int = 0
    committee_challenged: set = field(default_factory=set)

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
    outcome: int = 0

    @property
    def node(self) -> str:
        return self.window.commitment.node


def rpc_batch(calls: list[tuple[str, list]]) -> list:
    """Sends JSON-RPC calls in one HTTP request: reading ~60 views one by one would make each step ~10x slower."""
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


def salt_of(dispute_id: int, voter: str) -> bytes:
    return keccak(b"salt" + dispute_id.to_bytes(32, "big") + bytes.fromhex(voter[2:]))


# ------------------------------------------------------------------------------------------------ fixture


@dataclass
class Suite:
    staking: object
    registry: object
    ledger: object
    committee: object
    accounts: list
    float_model: int
    exact_model: int


@pytest.fixture(scope="module")
def suite(accounts, Staking, ExpertRegistry, ResultLedger, CommitteeDispute) -> Suite:
    tx = {"from": accounts[DEPLOYER]}
    staking = Staking.deploy(UNBONDING_DELAY, tx)
    registry = ExpertRegistry.deploy(staking, LONGEST_DISPUTE, tx)
    ledger = ResultLedger.deploy(registry, staking, tx)
    committee = CommitteeDispute.deploy(ledger, registry, staking, COMMITTEE_BOND, COMMITTEE_SIZE, DRAW_WINDOW,
                                        COMMIT_WINDOW, REVEAL_WINDOW, NON_REVEAL_PENALTY, tx)
    staking.setSlashers([committee], tx)
    ledger.setDisputeModules([committee], tx)

    owner = accounts[PUBLISHERS[0]]
    model_ids = []
    for mode in (FLOAT, EXACT):
        params = (mode, 1, 1000 if mode == FLOAT else 0, CHALLENGE_WINDOW, MIN_NODE_STAKE, MIN_VALIDATOR_STAKE,
                  "bafy-gate", keccak(b"gate"))
        model_id = registry.registerModel(params, {"from": owner}).events["ModelRegistered"]["modelId"]
        layer = (4, 2, 0, 0, False) if mode == FLOAT else (4, 2, 1, 0, False)
        registry.publishExpert(model_id, 0, "bafy-weights", keccak(b"weights"), [layer], {"from": owner})
        model_ids.append(model_id)
    for i, stake in INITIAL_STAKES.items():
        staking.deposit({"from": accounts[i], "value": stake})
    for i in VALIDATORS:
        staking.joinValidators({"from": accounts[i]})
    for i in NODES:
        for model_id in model_ids:
            registry.registerHost(model_id, 0, "http://node", {"from": accounts[i]})
    return Suite(staking, registry, ledger, committee, list(accounts), *model_ids)


# ------------------------------------------------------------------------------------------------ machine


st_actor = strategy("uint8", max_value=9)
st_quarters = strategy("uint8", max_value=12)
st_pick = strategy("uint16")
st_bool = strategy("bool")
st_tokens = strategy("uint8", min_value=1, max_value=4)
st_sleep = strategy("uint8", max_value=len(SLEEPS) - 1)


class Machine(RuleBasedStateMachine):
    """Rules are the protocol's actions with random actors and arguments; `suite` is set on a subclass."""

    suite: Suite

    def __init__(self) -> None:
        # Every example starts from the deployed suite (the snapshot the test took).
        chain.revert()
        super().__init__()
        s = self.s = self.suite
        self.addresses = [a.address for a in s.accounts]
        self.contracts = [s.staking, s.registry, s.ledger, s.committee]
        self.watched = self.addresses + [c.address for c in self.contracts] + [BURN]
        self.now = web3.eth.get_block("latest").timestamp
        self.stakes = {a: StakeModel() for a in self.addresses}
        for i, stake in INITIAL_STAKES.items():
            self.stakes[self.addresses[i]].active = stake
        self.validators = [self.addresses[i] for i in VALIDATORS]
        self.tasks: list[TaskModel] = []
        self.windows: list[WindowModel] = []
        self.cases: list[CommitteeCase] = []
        self.claimable = {(name, a): 0 for name in ("ledger", "committee") for a in self.addresses}
        # The fixture's stakes count as paid in.
        self.deposited = {a: INITIAL_STAKES.get(i, 0) for i, a in enumerate(self.addresses)}
        self.credited = {a: 0 for a in self.addresses}
        self.received = {a: 0 for a in self.addresses}
        self.burn_start = web3.eth.get_balance(BURN)
        self.burned = 0
        self.salt = 0
        assert list(s.staking.validators()) == self.validators

    @initialize(first_vote=st_bool, second_vote=st_bool, reveal_now=st_bool)
    def start_with_work_in_flight(self, first_vote, second_vote, reveal_now):
        """Every run starts with funded tasks, posted windows and committee disputes at several stages, so that
        short random runs still reach the later steps (reveals, verdicts, slashing, payouts)."""
        self.rule_fund(who=1, pick=1, quarters=4, new=True)  # float task, 1 ether
        self.rule_fund(who=1, pick=0, quarters=4, new=True)  # exact task
        self.rule_commit(who=0, pick=1, tokens=2)  # node 3, float
        self.rule_commit(who=1, pick=1, tokens=3)  # node 4, float
        self.rule_commit(who=0, pick=5, tokens=2)  # node 3, exact
        self.rule_challenge_committee(who=5, pick=1, leaf=0, wrong_bond=False)  # window 0 by a validator
        self.rule_challenge_committee(who=9, pick=5, leaf=1, wrong_bond=False)  # window 1 by an outsider
        self.rule_draw(who=0, pick=1)  # the first case
        case = self.cases[0]
        assert case.phase == VOTING
        self.rule_vote(who=1, pick=1, fraud=first_vote, honest_reveal=True)
        self.rule_vote(who=1, pick=1, fraud=second_vote, honest_reveal=True)
        assert all(ballot.fraud is not None for ballot in case.ballots.values())
        if reveal_now:
            self.now = case.commit_deadline  # the next transaction runs in the reveal window

    # -------------------------------------------------------------------------------------- transactions

    def _send(self, fn, *args, sender: str, value: int = 0, error: str | None = None):
        """Sends one transaction at the model's next second. `error` is the custom error the model expects
        (None: success). Tracks what the sender paid in and received."""
        self.now += 1
        web3.provider.make_request("evm_setNextBlockTimestamp", [self.now])
        ACTIONS[f"{fn.abi['name']}: {error or 'ok'}"] += 1
        before = self._balances()
        try:
            tx = fn(*args, {"from": sender, "value": value})
        except VirtualMachineError as exc:
            assert error is not None, f"{fn.abi['name']}{args} reverted unexpectedly: {exc.revert_msg}"
            assert exc.revert_msg.split(":")[0] == error, f"expected {error}, got {exc.revert_msg}"
            assert self._balances() == before, "a reverted transaction moved ETH"
            return None
        assert error is None, f"{fn.abi['name']}{args} should revert with {error}"
        assert tx.timestamp == self.now
        after = self._balances()
        for address in self.watched:
            delta = after[address] - before[address]
            if address == sender:
                self.deposited[sender] += value
                self.received[sender] += delta + value
            elif address == BURN:
                assert delta >= 0
            elif address not in self.addresses:
                continue  # contracts: covered by the money invariant
            else:
                assert delta == 0, f"{address} received ETH in a transaction it did not send"
        return tx

    def _balances(self) -> dict[str, int]:
        return dict(zip(self.watched, get_balances(self.watched)))

    def _credit(self, contract: str, account: str, amount: int) -> None:
        self.claimable[(contract, account)] += amount
        self.credited[account] += amount

    def _burn(self, amount: int) -> None:
        self.burned += amount

    def _pick(self, items: list, pick: int, prefer=None):
        """items[pick], mostly among those satisfying `prefer` (the ones the action can succeed on); one pick in
        four is among all items, so that actions on the wrong item are attempted too."""
        if prefer is not None and pick % 4:
            items = [item for item in items if prefer(item)] or items
        return items[pick // 4 % len(items)] if items else None

    # -------------------------------------------------------------------------------------- staking

    @rule(who=st_actor, quarters=st_quarters)
    def rule_stake(self, who, quarters):
        account, amount = self.addresses[who], quarters * QUARTER
        error = "ZeroAmount" if amount == 0 else None
        if self._send(self.s.staking.deposit, sender=account, value=amount, error=error):
            self.stakes[account].active += amount

    @rule(who=st_actor, quarters=st_quarters)
    def rule_unbond(self, who, quarters):
        account, amount = self.addresses[who], quarters * QUARTER
        stake = self.stakes[account]
        error = "ZeroAmount" if amount == 0 else "InsufficientStake" if amount > stake.active else None
        if self._send(self.s.staking.requestUnbond, amount, sender=account, error=error):
            stake.active -= amount
            stake.unbonding += amount
            stake.ready_at = self.now + UNBONDING_DELAY

    @rule(who=st_actor)
    def rule_withdraw(self, who):
        account = self.addresses[who]
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

    # -------------------------------------------------------------------------------------- tasks and results

    @rule(who=st_actor, pick=st_pick, quarters=st_quarters, new=st_bool)
    def rule_fund(self, who, pick, quarters, new):
        """Creates a task (on either model) or adds to an existing one; publishers only, other callers fail."""
        account, amount = self.addresses[who], quarters * QUARTER
        task = self._pick(self.tasks, pick)
        if new or task is None:
            model_id = self.s.float_model if pick % 2 else self.s.exact_model
            error = "ZeroAmount" if amount == 0 else None
            tx = self._send(self.s.ledger.createTask, model_id, PRICE, sender=account, value=amount, error=error)
            if tx:
                task_id = tx.events["TaskCreated"]["taskId"]
                assert task_id == len(self.tasks) + 1
                self.tasks.append(TaskModel(task_id, account, model_id, PRICE, amount))
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

    @rule(who=st_actor, pick=st_pick)
    def rule_close_task(self, who, pick):
        task = self._pick(self.tasks, pick)
        if task is None:
            return
        account = self.addresses[who] if who % 3 else task.publisher  # mostly the publisher
        error = "NotPublisher" if account != task.publisher else "TaskAlreadyClosed" if task.closed else None
        if self._send(self.s.ledger.closeTask, task.id, sender=account, error=error):
            self._credit("ledger", account, task.available)
            task.available, task.closed = 0, True

    @rule(who=st_actor, pick=st_pick, tokens=st_tokens)
    def rule_commit(self, who, pick, tokens):
        task = self._pick(self.tasks, pick, lambda t: not t.closed)
        if task is None:
            return
        # Mostly a node; anyone else is not a host.
        account = self.addresses[NODES[who % 2]] if who < 8 else self.addresses[who]
        self.salt += 1
        rid = request_id(task.id, task.publisher, self.salt)
        leaves = [TokenLeaf(account, task.model_id, 0, 1, rid, t, keccak(b"in%d" % t), keccak(b"out%d" % self.salt))
                  for t in range(tokens)]
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
            self.windows.append(WindowModel(commitment, leaves, tree, task.model_id))

    @rule(who=st_actor, pick=st_pick)
    def rule_finalize_commitment(self, who, pick):
        window = self._pick(self.windows, pick, lambda w: w.status == POSTED and not w.open_disputes)
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
        if self._send(self.s.ledger.finalize, window.commitment.as_tuple(), sender=self.addresses[who], error=error):
            window.status = FINALIZED
            self._task(window).reserved -= window.payment
            self._credit("ledger", window.commitment.node, window.payment)

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

    # -------------------------------------------------------------------------------------- committee disputes

    @rule(who=st_actor, pick=st_pick, leaf=st_pick, wrong_bond=st_bool)
    def rule_challenge_committee(self, who, pick, leaf, wrong_bond):
        window = self._pick(self.windows, pick, lambda w: w.status == POSTED and w.model_id == self.s.float_model)
        if window is None:
            return
        account = self.addresses[who]
        index = leaf % len(window.leaves)
        leaf_hash = window.leaves[index].hash()
        # A wrong bond now and then (one in four of the draws that ask for it).
        bond = COMMITTEE_BOND - 1 if wrong_bond and leaf % 4 == 0 else COMMITTEE_BOND
        error = None
        if bond != COMMITTEE_BOND:
            error = "WrongBond"
        elif leaf_hash in window.committee_challenged:
            error = "LeafAlreadyChallenged"
        elif window.status != POSTED:
            error = "WrongStatus"
        elif self.now + 1 >= window.commitment.posted_at + CHALLENGE_WINDOW:
            error = "ChallengeWindowClosed"
        elif window.model_id != self.s.float_model:
            error = "NotFloatModel"
        tx = self._send(self.s.committee.challenge, window.commitment.as_tuple(), window.leaves[index].as_tuple(),
                        window.tree.proof(index), sender=account, value=bond, error=error)
        if tx:
            dispute_id = tx.events["Challenged"]["disputeId"]
            assert dispute_id == len(self.cases) + 1
            self.cases.append(CommitteeCase(dispute_id, window, account, tx.block_number, self.now + DRAW_WINDOW))
            window.committee_challenged.add(leaf_hash)
            window.open_disputes += 1
            self.stakes[window.commitment.node].locks += 1

    @rule(who=st_actor, pick=st_pick)
    def rule_draw(self, who, pick):
        case = self._pick(self.cases, pick, lambda c: c.phase == AWAITING_DRAW)
        if case is None:
            return
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
        tx = self._send(self.s.committee.drawCommittee, case.id, sender=self.addresses[who], error=error)
        if tx and reanchor:
            assert "CommitteeDrawn" not in tx.events
            case.anchor = tx.block_number
        elif tx:
            assert list(tx.events["CommitteeDrawn"]["members"]) == members
            case.phase, case.members = VOTING, members
            case.commit_deadline = self.now + COMMIT_WINDOW
            case.reveal_deadline = case.commit_deadline + REVEAL_WINDOW
            for member in members:
                case.ballots[member] = BallotModel(self.stakes[member].active)
                self.stakes[member].locks += 1

    @rule(who=st_actor, pick=st_pick, fraud=st_bool, honest_reveal=st_bool)
    def rule_vote(self, who, pick, fraud, honest_reveal):
        """A committee member commits a vote, or reveals it once the commit window is over. Mostly a member who can
        act; sometimes another account, or a reveal that does not match the commitment."""
        case = self._pick(self.cases, pick, lambda c: c.phase in (VOTING, REVEALING))
        if case is None:
            return
        committing = self.now + 1 <= case.commit_deadline or case.phase == AWAITING_DRAW
        members = case.members or self.validators
        can_act = [m for m in members if m in case.ballots and (
            case.ballots[m].fraud is None if committing else not case.ballots[m].revealed)]
        voter = self.addresses[who] if who >= 8 else self._pick(members, who, lambda m: m in can_act)
        ballot = case.ballots.get(voter)
        if committing:
            self._commit_vote(case, voter, ballot, fraud)
        else:
            self._reveal_vote(case, voter, ballot, fraud if ballot is None or ballot.fraud is None or not honest_reveal
                              else ballot.fraud)

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

    @rule(who=st_actor, pick=st_pick)
    def rule_finalize_dispute(self, who, pick):
        case = self._pick(self.cases, pick, lambda c: c.phase != RESOLVED)
        if case is None:
            return
        error = None
        if case.phase == AWAITING_DRAW:
            error = "DeadlineNotReached" if self.now + 1 <= case.draw_deadline else None
        elif case.phase in (VOTING, REVEALING):
            error = "DeadlineNotReached" if self.now + 1 <= case.reveal_deadline else None
        else:
            error = "WrongPhase"
        if self._send(self.s.committee.finalize, case.id, sender=self.addresses[who], error=error):
            self._resolve(case)

    def _resolve(self, case: CommitteeCase) -> None:
        """The payouts of docs/protocol.md section 6, integer division, remainders burned."""
        bond = COMMITTEE_BOND
        majority = None
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
            case.outcome = UNDECIDED
            self._credit("committee", case.challenger, bond)
            burned = 0
        if majority is not None:
            for member in case.members:
                ballot = case.ballots[member]
                if ballot.revealed and ballot.fraud == majority:
                    share = pool * ballot.weight // majority_stake
                    self._credit("committee", member, share)
                    burned -= share
        for member in case.members:
            if not case.ballots[member].revealed:
                burned += self.stakes[member].slash(NON_REVEAL_PENALTY)
        ACTIONS[f"committee outcome: {['', 'fraud', 'honest', 'undecided'][case.outcome]}"] += 1
        self._burn(burned)
        self._close_dispute(case.window, case.outcome == FRAUD)
        self.stakes[case.node].locks -= 1
        for member in case.members:
            self.stakes[member].locks -= 1
        case.phase = RESOLVED

    # -------------------------------------------------------------------------------------- claims and time

    @rule(who=st_actor, from_ledger=st_bool)
    def rule_claim(self, who, from_ledger):
        account = self.addresses[who]
        name = "ledger" if from_ledger else "committee"
        contract = self.s.ledger if from_ledger else self.s.committee
        owed = self.claimable[(name, account)]
        received = self.received[account]
        if self._send(contract.claim, sender=account, error=None if owed else "NothingToClaim"):
            assert self.received[account] - received == owed
            self.claimable[(name, account)] = 0

    @rule(choice=st_sleep)
    def rule_sleep(self, choice):
        jump = SLEEPS[choice]
        if isinstance(jump, int):
            self.now += jump
            return
        # Deadlines as "the first second at which the later action is allowed", minus one for "at".
        deadlines = [w.commitment.posted_at + CHALLENGE_WINDOW - 1 for w in self.windows]
        deadlines += [s.ready_at - 1 for s in self.stakes.values() if s.unbonding]
        for case in self.cases:
            deadlines += [case.draw_deadline, case.commit_deadline, case.reveal_deadline]
        upcoming = [d for d in deadlines if d > self.now + 1]
        if upcoming:
            # the next transaction runs at now + 1: land on the deadline itself, or just past it
            self.now = min(upcoming) - (1 if jump == "at" else 0)

    @rule()
    def rule_mine_past_blockhash_window(self):
        """Mines 257 blocks, so that pending draws must re-anchor their seed."""
        web3.provider.make_request("anvil_mine", [hex(257), hex(1)])
        self.now = max(self.now, web3.eth.get_block("latest").timestamp)

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
            calls[("ledger", a)] = (s.ledger.claimable, a)
            calls[("committee", a)] = (s.committee.claimable, a)
        for task in self.tasks:
            calls[("task", task.id)] = (s.ledger.task, task.id)
        for i, window in enumerate(self.windows):
            calls[("window", i)] = (s.ledger.commitmentState, window.commitment.id())
        for case in self.cases:
            calls[("case", case.id)] = (s.committee.dispute, case.id)
        views = dict(zip(calls, call_views(list(calls.values()))))
        views.update(zip([("balance", a) for a in self.watched], get_balances(self.watched)))
        return views

    def _check_money(self, v: dict) -> None:
        """docs/protocol.md section 1: ETH held == stakes + unbonding + escrow + open bonds + claimable."""
        stakes = sum(v[("stake", a)] + v[("unbonding", a)][0] for a in self.addresses)
        escrow = sum(v[("task", t.id)][4] + v[("task", t.id)][5] for t in self.tasks)
        bonds = sum(v[("case", c.id)][4] for c in self.cases if v[("case", c.id)][9] != RESOLVED)
        claimable = sum(v[("ledger", a)] + v[("committee", a)] for a in self.addresses)
        held = sum(v[("balance", c.address)] for c in self.contracts)
        assert held == stakes + escrow + bonds + claimable

    def _check_model(self, v: dict) -> None:
        """Every view the model predicts, to the wei."""
        for a, stake in self.stakes.items():
            assert (v[("stake", a)], *v[("unbonding", a)], v[("locks", a)]) == (
                stake.active, stake.unbonding, stake.ready_at, stake.locks), a
            assert (v[("ledger", a)], v[("committee", a)]) == (
                self.claimable[("ledger", a)], self.claimable[("committee", a)]), a
        for t in self.tasks:
            assert v[("task", t.id)][1] == t.closed and v[("task", t.id)][4:6] == (t.available, t.reserved)
        for i, w in enumerate(self.windows):
            assert v[("window", i)] == (w.status, w.open_disputes)
        for c in self.cases:
            d = v[("case", c.id)]
            assert (d[5], d[9], d[10], d[11], d[12]) == (
                c.anchor, c.phase, c.outcome, c.fraud_stake, c.honest_stake)
        assert v[("balance", BURN)] - self.burn_start == self.burned

    def _check_lifetime_receipts(self) -> None:
        """No account ever received more than it paid in plus what the protocol credited to it."""
        for a in self.addresses:
            assert self.received[a] <= self.deposited[a] + self.credited[a], a


def test_suite_invariants(suite):
    # brownie.test.state_machine would do this, but the mypyc-compiled brownie.test.stateful of eth-brownie 1.22.2
    # cannot run any machine (its final _BrownieStateMachine rejects the subclass it builds); this is the same
    # thing with hypothesis's own runner: snapshot once, revert before every example (in Machine.__init__).
    chain.snapshot()
    machine = type("SuiteMachine", (Machine,), {"suite": suite})
    run_state_machine_as_test(machine, settings=settings(max_examples=25, stateful_step_count=25, deadline=None))
    print("\n".join(f"{n:5d}  {name}" for name, n in sorted(ACTIONS.items())))
