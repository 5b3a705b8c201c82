"""tests/helpers.reverts_with must fail on every near miss, or the revert tests built on it prove nothing."""
import pytest
from brownie import Staking

from helpers import encode_error, error_selector, reverts_with


@pytest.fixture(scope="module")
def staking(accounts):
    return Staking.deploy(60, {"from": accounts[0]})


def test_selector_is_the_keccak_prefix_of_the_signature():
    # Known value: bytes4(keccak256("Error(string)")), the selector of require's string reverts.
    assert error_selector("Error(string)").hex() == "08c379a0"


def test_encode_error_appends_abi_encoded_arguments():
    data = encode_error("InsufficientStake(uint256,uint256)", 1, 2)
    assert data[4:] == (1).to_bytes(32, "big") + (2).to_bytes(32, "big")


def test_encode_error_rejects_a_wrong_argument_count():
    with pytest.raises(TypeError):
        encode_error("InsufficientStake(uint256,uint256)", 1)


def test_matching_error_and_arguments_pass(staking, accounts):
    with reverts_with("InsufficientStake(uint256,uint256)", 0, 5):
        staking.requestUnbond(5, {"from": accounts[1]})


def test_wrong_arguments_fail(staking, accounts):
    with pytest.raises(AssertionError):
        with reverts_with("InsufficientStake(uint256,uint256)", 0, 6):
            staking.requestUnbond(5, {"from": accounts[1]})


def test_same_name_with_other_parameters_fails(staking, accounts):
    with pytest.raises(AssertionError):
        with reverts_with("InsufficientStake(address,uint256,uint256)", accounts[1], 0, 5):
            staking.requestUnbond(5, {"from": accounts[1]})


def test_other_error_fails(staking, accounts):
    with pytest.raises(AssertionError):
        with reverts_with("ZeroAmount()"):
            staking.requestUnbond(5, {"from": accounts[1]})


def test_no_revert_fails(staking, accounts):
    with pytest.raises(AssertionError):
        with reverts_with("ZeroAmount()"):
            staking.deposit({"from": accounts[1], "value": 1})


def test_reverting_view_call_is_checked_too(staking):
    with pytest.raises(AssertionError):
        with reverts_with("ZeroAmount()"):
            staking.validatorAt(0)
