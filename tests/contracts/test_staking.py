"""Staking: deposits, unbonding, withdrawal, the validator set, and locking/slashing by dispute modules.

Gas price is zero on the test chain, so ETH balances move by exactly the amounts sent."""
import brownie
import pytest
from brownie import Staking, chain
from brownie.test import given
from hypothesis import settings
from hypothesis import strategies as st

from helpers import reverts_with

DELAY = 7 * 24 * 3600
ETH = 10**18


@pytest.fixture(scope="module")
def deployer(accounts):
    return accounts[0]


@pytest.fixture(scope="module")
def alice(accounts):
    return accounts[1]


@pytest.fixture(scope="module")
def bob(accounts):
    return accounts[2]


@pytest.fixture(scope="module")
def carol(accounts):
    return accounts[3]


@pytest.fixture(scope="module")
def slasher(accounts):
    """An ordinary account wired as a dispute module: it receives slashed ETH like the real ones do."""
    return accounts[9]


@pytest.fixture(scope="module")
def staking(deployer, slasher):
    contract = Staking.deploy(DELAY, {"from": deployer})
    contract.setSlashers([slasher], {"from": deployer})
    return contract


@pytest.fixture
def staked_alice(staking, alice):
    staking.deposit({"from": alice, "value": 3 * ETH})
    return alice


def unbond(staking, account, amount):
    """Requests an unbond and returns the readyAt it was given."""
    tx = staking.requestUnbond(amount, {"from": account})
    return tx.events["UnbondRequested"]["readyAt"]


def sleep_until(timestamp):
    """Mines a block at `timestamp` or later; the next transaction lands one second or more after it."""
    chain.sleep(max(0, timestamp - chain.time()))
    chain.mine()


# ---------------------------------------------------------------- construction


def test_constructor_sets_unbonding_delay(staking):
    assert staking.unbondingDelay() == DELAY


def test_constructor_rejects_zero_delay(deployer):
    with reverts_with("InvalidDelay()"):
        Staking.deploy(0, {"from": deployer})


# ---------------------------------------------------------------- deposit


def test_deposit_adds_to_active_stake(staking, alice):
    before = alice.balance()
    tx = staking.deposit({"from": alice, "value": 2 * ETH})
    assert staking.stakeOf(alice) == 2 * ETH
    assert staking.slashableOf(alice) == 2 * ETH
    assert alice.balance() == before - 2 * ETH
    assert staking.balance() == 2 * ETH
    assert tx.events["Deposited"] == {"account": alice, "amount": 2 * ETH, "activeStake": 2 * ETH}


def test_deposits_accumulate(staking, alice):
    staking.deposit({"from": alice, "value": ETH})
    tx = staking.deposit({"from": alice, "value": 2 * ETH})
    assert staking.stakeOf(alice) == 3 * ETH
    assert tx.events["Deposited"]["activeStake"] == 3 * ETH


def test_deposit_of_zero_reverts(staking, alice):
    with reverts_with("ZeroAmount()"):
        staking.deposit({"from": alice, "value": 0})


# ---------------------------------------------------------------- requestUnbond


def test_request_unbond_moves_active_stake_to_unbonding(staking, staked_alice):
    tx = staking.requestUnbond(ETH, {"from": staked_alice})
    ready_at = tx.timestamp + DELAY
    assert staking.stakeOf(staked_alice) == 2 * ETH
    assert tuple(staking.unbondingOf(staked_alice)) == (ETH, ready_at)
    assert staking.slashableOf(staked_alice) == 3 * ETH
    assert tx.events["UnbondRequested"] == {
        "account": staked_alice,
        "amount": ETH,
        "totalUnbonding": ETH,
        "readyAt": ready_at,
    }


def test_second_unbond_request_accumulates_and_restarts_the_clock(staking, staked_alice):
    first_ready = unbond(staking, staked_alice, ETH)
    chain.sleep(3600)
    tx = staking.requestUnbond(ETH, {"from": staked_alice})
    assert tx.timestamp + DELAY > first_ready
    assert tuple(staking.unbondingOf(staked_alice)) == (2 * ETH, tx.timestamp + DELAY)
    assert tx.events["UnbondRequested"]["totalUnbonding"] == 2 * ETH


def test_request_unbond_of_zero_reverts(staking, staked_alice):
    with reverts_with("ZeroAmount()"):
        staking.requestUnbond(0, {"from": staked_alice})


def test_request_unbond_of_more_than_active_stake_reverts(staking, staked_alice):
    with reverts_with("InsufficientStake(uint256,uint256)", 3 * ETH, 3 * ETH + 1):
        staking.requestUnbond(3 * ETH + 1, {"from": staked_alice})


def test_request_unbond_cannot_reuse_unbonding_stake(staking, staked_alice):
    unbond(staking, staked_alice, 3 * ETH)
    with reverts_with("InsufficientStake(uint256,uint256)", 0, 1):
        staking.requestUnbond(1, {"from": staked_alice})


# ---------------------------------------------------------------- withdraw


def test_withdraw_after_delay_sends_the_unbonding_balance(staking, staked_alice):
    ready_at = unbond(staking, staked_alice, 2 * ETH)
    sleep_until(ready_at)
    before = staked_alice.balance()
    tx = staking.withdraw({"from": staked_alice})
    assert staked_alice.balance() == before + 2 * ETH
    assert staking.balance() == ETH
    assert tuple(staking.unbondingOf(staked_alice)) == (0, 0)
    assert staking.stakeOf(staked_alice) == ETH
    assert tx.events["Withdrawn"] == {"account": staked_alice, "amount": 2 * ETH}


def test_withdraw_before_delay_reverts(staking, staked_alice):
    ready_at = unbond(staking, staked_alice, ETH)
    sleep_until(ready_at - 60)
    with reverts_with("UnbondingNotDue(uint256)", ready_at):
        staking.withdraw({"from": staked_alice})


def test_withdraw_without_unbonding_reverts(staking, staked_alice):
    with reverts_with("NothingToWithdraw()"):
        staking.withdraw({"from": staked_alice})


def test_withdraw_twice_reverts(staking, staked_alice):
    sleep_until(unbond(staking, staked_alice, ETH))
    staking.withdraw({"from": staked_alice})
    with reverts_with("NothingToWithdraw()"):
        staking.withdraw({"from": staked_alice})


def test_withdraw_while_locked_reverts(staking, staked_alice, slasher):
    ready_at = unbond(staking, staked_alice, ETH)
    staking.lock(staked_alice, {"from": slasher})
    sleep_until(ready_at)
    with reverts_with("StakeLocked(address,uint256)", staked_alice, 1):
        staking.withdraw({"from": staked_alice})


def test_withdraw_succeeds_once_every_lock_is_released(staking, staked_alice, slasher):
    ready_at = unbond(staking, staked_alice, ETH)
    staking.lock(staked_alice, {"from": slasher})
    staking.lock(staked_alice, {"from": slasher})
    sleep_until(ready_at)
    staking.unlock(staked_alice, {"from": slasher})
    with reverts_with("StakeLocked(address,uint256)", staked_alice, 1):
        staking.withdraw({"from": staked_alice})
    staking.unlock(staked_alice, {"from": slasher})
    before = staked_alice.balance()
    staking.withdraw({"from": staked_alice})
    assert staked_alice.balance() == before + ETH


# ---------------------------------------------------------------- validator set


def test_join_validators_adds_the_caller(staking, staked_alice):
    tx = staking.joinValidators({"from": staked_alice})
    assert staking.isValidator(staked_alice)
    assert staking.validatorCount() == 1
    assert staking.validatorAt(0) == staked_alice
    assert staking.validators() == [staked_alice]
    assert tx.events["ValidatorJoined"] == {"account": staked_alice}


def test_join_validators_without_active_stake_reverts(staking, bob):
    with reverts_with("InsufficientStake(uint256,uint256)", 0, 1):
        staking.joinValidators({"from": bob})


def test_join_validators_twice_reverts(staking, staked_alice):
    staking.joinValidators({"from": staked_alice})
    with reverts_with("AlreadyValidator(address)", staked_alice):
        staking.joinValidators({"from": staked_alice})


def test_leave_validators_removes_the_caller(staking, staked_alice):
    staking.joinValidators({"from": staked_alice})
    tx = staking.leaveValidators({"from": staked_alice})
    assert not staking.isValidator(staked_alice)
    assert staking.validatorCount() == 0
    assert staking.validators() == []
    assert tx.events["ValidatorLeft"] == {"account": staked_alice}


def test_leave_validators_moves_the_last_validator_into_the_gap(staking, alice, bob, carol):
    for account in (alice, bob, carol):
        staking.deposit({"from": account, "value": ETH})
        staking.joinValidators({"from": account})
    staking.leaveValidators({"from": alice})
    assert staking.validators() == [carol, bob]
    # The moved validator can still leave: its index was updated.
    staking.leaveValidators({"from": carol})
    assert staking.validators() == [bob]
    assert staking.validatorAt(0) == bob


def test_validator_can_rejoin_after_leaving(staking, staked_alice):
    staking.joinValidators({"from": staked_alice})
    staking.leaveValidators({"from": staked_alice})
    staking.joinValidators({"from": staked_alice})
    assert staking.validators() == [staked_alice]


def test_leave_validators_when_not_a_validator_reverts(staking, alice):
    with reverts_with("NotAValidator(address)", alice):
        staking.leaveValidators({"from": alice})


def test_validator_at_out_of_range_reverts(staking):
    with brownie.reverts("Index out of range"):
        staking.validatorAt(0)


# ---------------------------------------------------------------- setSlashers


def test_set_slashers_wires_each_slasher(deployer, bob, carol):
    fresh = Staking.deploy(DELAY, {"from": deployer})
    tx = fresh.setSlashers([bob, carol], {"from": deployer})
    assert fresh.isSlasher(bob) and fresh.isSlasher(carol)
    assert not fresh.isSlasher(deployer)
    assert [e["slasher"] for e in tx.events["SlasherSet"]] == [bob, carol]


def test_set_slashers_by_another_account_reverts(deployer, alice):
    fresh = Staking.deploy(DELAY, {"from": deployer})
    with reverts_with("NotDeployer(address)", alice):
        fresh.setSlashers([alice], {"from": alice})


def test_set_slashers_twice_reverts(staking, deployer, bob):
    with reverts_with("SlashersAlreadySet()"):
        staking.setSlashers([bob], {"from": deployer})


# ---------------------------------------------------------------- lock / unlock


def test_lock_counts_open_disputes(staking, alice, slasher):
    tx1 = staking.lock(alice, {"from": slasher})
    tx2 = staking.lock(alice, {"from": slasher})
    assert staking.locksOf(alice) == 2
    assert tx1.events["Locked"] == {"account": alice, "by": slasher, "locks": 1}
    assert tx2.events["Locked"]["locks"] == 2


def test_unlock_releases_one_lock(staking, alice, slasher):
    staking.lock(alice, {"from": slasher})
    staking.lock(alice, {"from": slasher})
    tx = staking.unlock(alice, {"from": slasher})
    assert staking.locksOf(alice) == 1
    assert tx.events["Unlocked"] == {"account": alice, "by": slasher, "locks": 1}


def test_lock_by_non_slasher_reverts(staking, alice, bob):
    with reverts_with("NotSlasher(address)", bob):
        staking.lock(alice, {"from": bob})


def test_unlock_by_non_slasher_reverts(staking, alice, bob, slasher):
    staking.lock(alice, {"from": slasher})
    with reverts_with("NotSlasher(address)", bob):
        staking.unlock(alice, {"from": bob})


def test_unlock_of_unlocked_account_reverts(staking, alice, slasher):
    with reverts_with("NotLocked(address)", alice):
        staking.unlock(alice, {"from": slasher})


# ---------------------------------------------------------------- slash


def test_slash_takes_active_stake_and_pays_the_slasher(staking, staked_alice, slasher):
    before = slasher.balance()
    tx = staking.slash(staked_alice, ETH, {"from": slasher})
    assert tx.return_value == ETH
    assert staking.stakeOf(staked_alice) == 2 * ETH
    assert slasher.balance() == before + ETH
    assert staking.balance() == 2 * ETH
    assert tx.events["Slashed"] == {"account": staked_alice, "slasher": slasher, "amount": ETH}


def test_slash_takes_active_stake_before_unbonding(staking, staked_alice, slasher):
    ready_at = unbond(staking, staked_alice, ETH)
    tx = staking.slash(staked_alice, 2 * ETH + ETH // 2, {"from": slasher})
    assert tx.return_value == 2 * ETH + ETH // 2
    assert staking.stakeOf(staked_alice) == 0
    assert tuple(staking.unbondingOf(staked_alice)) == (ETH // 2, ready_at)


def test_slash_is_capped_at_the_slashable_stake(staking, staked_alice, slasher):
    unbond(staking, staked_alice, ETH)
    before = slasher.balance()
    tx = staking.slash(staked_alice, 10 * ETH, {"from": slasher})
    assert tx.return_value == 3 * ETH
    assert staking.slashableOf(staked_alice) == 0
    assert slasher.balance() == before + 3 * ETH
    assert staking.balance() == 0


def test_slash_of_an_empty_account_returns_zero(staking, bob, slasher):
    before = slasher.balance()
    tx = staking.slash(bob, ETH, {"from": slasher})
    assert tx.return_value == 0
    assert slasher.balance() == before
    assert "Slashed" not in tx.events


def test_slash_by_non_slasher_reverts(staking, staked_alice, bob):
    with reverts_with("NotSlasher(address)", bob):
        staking.slash(staked_alice, ETH, {"from": bob})


def test_slashed_unbonding_stake_leaves_less_to_withdraw(staking, staked_alice, slasher):
    ready_at = unbond(staking, staked_alice, 3 * ETH)
    staking.slash(staked_alice, ETH, {"from": slasher})
    sleep_until(ready_at)
    before = staked_alice.balance()
    staking.withdraw({"from": staked_alice})
    assert staked_alice.balance() == before + 2 * ETH


# ---------------------------------------------------------------- contract counterparties


ACCEPT, REFUSE, REENTER = 0, 1, 2  # StakerContract.OnReceive


@pytest.fixture
def contract_staker(staking, deployer, StakerContract):
    """A contract that has staked 1 ETH, asked to unbond all of it, and waited out the delay."""
    staker = StakerContract.deploy(staking, {"from": deployer})
    staker.deposit({"from": deployer, "value": ETH})
    staker.requestUnbond(ETH, {"from": deployer})
    sleep_until(staking.unbondingOf(staker)[1])
    return staker


def test_withdraw_to_a_contract_sends_it_the_eth(staking, contract_staker, deployer):
    contract_staker.withdraw({"from": deployer})
    assert contract_staker.balance() == ETH
    assert staking.balance() == 0


def test_withdraw_to_an_account_that_refuses_eth_reverts(staking, contract_staker, deployer):
    contract_staker.setOnReceive(REFUSE, {"from": deployer})
    with reverts_with("TransferFailed()"):
        contract_staker.withdraw({"from": deployer})
    assert staking.unbondingOf(contract_staker)[0] == ETH


def test_withdraw_cannot_be_reentered(staking, contract_staker, deployer, alice):
    # Other stakers' ETH sits in the contract: a second withdrawal from inside the first must not reach it.
    staking.deposit({"from": alice, "value": 5 * ETH})
    contract_staker.setOnReceive(REENTER, {"from": deployer})
    with reverts_with("TransferFailed()"):
        contract_staker.withdraw({"from": deployer})
    assert staking.balance() == 6 * ETH


def test_slash_by_a_slasher_that_refuses_eth_reverts(deployer, alice, StakerContract):
    fresh = Staking.deploy(DELAY, {"from": deployer})
    refusing_slasher = StakerContract.deploy(fresh, {"from": deployer})
    refusing_slasher.setOnReceive(REFUSE, {"from": deployer})
    fresh.setSlashers([refusing_slasher], {"from": deployer})
    fresh.deposit({"from": alice, "value": ETH})
    with reverts_with("TransferFailed()"):
        refusing_slasher.slash(alice, ETH, {"from": deployer})
    assert fresh.stakeOf(alice) == ETH


# ---------------------------------------------------------------- invariant


OPERATIONS = st.lists(
    st.tuples(
        st.sampled_from(["deposit", "unbond", "wait", "withdraw", "slash"]),
        st.sampled_from([0, 1]),
        st.integers(min_value=1, max_value=3 * ETH),
    ),
    min_size=5,
    max_size=20,
)


@given(operations=OPERATIONS)
@settings(max_examples=12)
def test_contract_always_holds_exactly_the_recorded_stakes(staking, alice, bob, slasher, operations):
    """Random deposits, unbonds, waits, withdrawals and slashes by two stakers: every stake follows the rules
    above and the contract's ETH balance equals the sum of all active and unbonding stake."""
    stakers = [alice, bob]
    for s in stakers:
        staking.deposit({"from": s, "value": 3 * ETH})
    active = {s: 3 * ETH for s in stakers}
    unbonding = {s: 0 for s in stakers}
    for op, index, amount in operations:
        who = stakers[index]
        if op == "deposit":
            staking.deposit({"from": who, "value": amount})
            active[who] += amount
        elif op == "unbond" and active[who] == 0:
            with reverts_with("InsufficientStake(uint256,uint256)", 0, amount):
                staking.requestUnbond(amount, {"from": who})
        elif op == "unbond":
            # Drawn amounts rarely fit under the active stake; scale them into it so unbonding really happens.
            amount = 1 + amount % active[who]
            staking.requestUnbond(amount, {"from": who})
            active[who] -= amount
            unbonding[who] += amount
        elif op == "wait":
            chain.sleep(DELAY // 2 + 60)
            chain.mine()
        elif op == "withdraw":
            _, ready_at = staking.unbondingOf(who)
            if unbonding[who] == 0:
                with reverts_with("NothingToWithdraw()"):
                    staking.withdraw({"from": who})
            elif chain.time() + 10 < ready_at:
                with reverts_with("UnbondingNotDue(uint256)", ready_at):
                    staking.withdraw({"from": who})
            elif chain.time() >= ready_at + 10:
                # (Within seconds of readyAt the next block's timestamp is not known well enough to predict.)
                before = who.balance()
                staking.withdraw({"from": who})
                assert who.balance() == before + unbonding[who]
                unbonding[who] = 0
        elif op == "slash":
            from_active = min(amount, active[who])
            from_unbonding = min(amount - from_active, unbonding[who])
            assert staking.slash(who, amount, {"from": slasher}).return_value == from_active + from_unbonding
            active[who] -= from_active
            unbonding[who] -= from_unbonding

        for s in stakers:
            assert staking.stakeOf(s) == active[s]
            assert staking.unbondingOf(s)[0] == unbonding[s]
        assert staking.balance() == sum(active.values()) + sum(unbonding.values())
