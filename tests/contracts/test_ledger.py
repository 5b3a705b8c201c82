"""ResultLedger: tasks and escrow, window commitments, receipts, finalisation, payment and the dispute hooks.

The dispute module is a plain account wired with `setDisputeModules`, so the hooks are exercised by real calls.
Gas price is zero on the test chain, so ETH balances move by exactly the amounts sent.
"""
import brownie
import pytest
from brownie import NoReceiveCaller, ResultLedger, chain, web3
from eth_account import Account

from bmoe_py.crypto import Commitment, Receipt, receipt_digest, sign_receipt
from helpers import reverts_with
from ledger_setup import BUNDLE_CID, CHALLENGE_WINDOW, ETH, FLOAT, deploy_core, register_model, stake_and_host

PRICE = 1_000  # wei per token
ESCROW = 10_000_000  # room for 10,000 tokens
ROOT = b"\xab" * 32
POSTED, FINALIZED, INVALIDATED = 1, 2, 3
ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"


@pytest.fixture(scope="module")
def deployer(accounts):
    return accounts[0]


@pytest.fixture(scope="module")
def publisher(accounts):
    return accounts[1]


@pytest.fixture(scope="module")
def node(accounts):
    return accounts[2]


@pytest.fixture(scope="module")
def stranger(accounts):
    return accounts[3]


@pytest.fixture(scope="module")
def module(accounts):
    """An ordinary account wired as the dispute module."""
    return accounts[8]


@pytest.fixture(scope="module")
def core(deployer, module):
    return deploy_core(deployer, [module])


@pytest.fixture(scope="module")
def ledger(core):
    return core.ledger


@pytest.fixture(scope="module")
def model_id(core, publisher, node):
    model_id = register_model(core.registry, publisher)
    stake_and_host(core.staking, core.registry, node, model_id)
    return model_id


@pytest.fixture(scope="module")
def task_id(ledger, model_id, publisher):
    return ledger.createTask(model_id, PRICE, {"from": publisher, "value": ESCROW}).return_value


@pytest.fixture(scope="module")
def signer(accounts, core, deployer):
    """A staked node whose private key the test holds, to sign receipts."""
    account = accounts.add(Account.create().key)
    deployer.transfer(account, 2 * ETH)
    core.staking.deposit({"from": account, "value": ETH})
    return account


def commit(ledger, node, task_id, tokens=100, version=1, root=ROOT):
    """Commits a window and returns the Commitment rebuilt from the event, and the transaction."""
    tx = ledger.commit(task_id, 0, version, root, tokens, BUNDLE_CID, {"from": node})
    return Commitment.from_event(tx.events["CommitmentPosted"]["commitment"]), tx


def make_receipt(signer, task_id, model_id, tokens=50, version=1, root=ROOT, request=b"\x42" * 32):
    return Receipt(task_id, signer.address, model_id, 0, version, request, root, tokens)


def post_receipt(ledger, signer, receipt, poster):
    signature = sign_receipt(receipt, signer.private_key, chain.id, ledger.address)
    tx = ledger.postReceipt(receipt.as_tuple(), signature, BUNDLE_CID, {"from": poster})
    return Commitment.from_event(tx.events["CommitmentPosted"]["commitment"]), tx


def task_of(ledger, task_id):
    publisher, closed, model_id, price, available, reserved = ledger.task(task_id)
    return dict(publisher=publisher, closed=closed, model_id=model_id, price=price, available=available,
                reserved=reserved)


def state_of(ledger, commitment):
    return tuple(ledger.commitmentState(commitment.id()))


def next_block_at(timestamp):
    """Gives the next block, and so the next transaction (anvil mines one per transaction), this timestamp."""
    web3.provider.make_request("evm_setNextBlockTimestamp", [timestamp])


def after_window(commitment):
    """The next transaction lands exactly when the commitment's challenge window ends."""
    next_block_at(commitment.posted_at + CHALLENGE_WINDOW)


# ---------------------------------------------------------------- construction and wiring


def test_constructor_records_registry_staking_and_eip712_domain(core):
    assert core.ledger.registry() == core.registry
    assert core.ledger.staking() == core.staking
    _, name, version, chain_id, verifying_contract, _, _ = core.ledger.eip712Domain()
    assert (name, version, chain_id, verifying_contract) == ("B-MoE ResultLedger", "1", chain.id, core.ledger)


def test_set_dispute_modules_marks_each_module(core, deployer, stranger, accounts):
    ledger = ResultLedger.deploy(core.registry, core.staking, {"from": deployer})
    tx = ledger.setDisputeModules([accounts[6], accounts[7]], {"from": deployer})
    assert ledger.isDisputeModule(accounts[6]) and ledger.isDisputeModule(accounts[7])
    assert not ledger.isDisputeModule(stranger)
    assert tx.events["DisputeModulesSet"]["modules"] == [accounts[6], accounts[7]]


def test_set_dispute_modules_by_another_account_reverts(core, deployer, stranger):
    ledger = ResultLedger.deploy(core.registry, core.staking, {"from": deployer})
    with reverts_with("NotDeployer(address)", stranger):
        ledger.setDisputeModules([stranger], {"from": stranger})


def test_set_dispute_modules_twice_reverts(ledger, deployer, stranger):
    with reverts_with("DisputeModulesAlreadySet()"):
        ledger.setDisputeModules([stranger], {"from": deployer})


# ---------------------------------------------------------------- createTask


def test_create_task_escrows_the_value_and_numbers_tasks_from_one(ledger, model_id, publisher):
    tx = ledger.createTask(model_id, PRICE, {"from": publisher, "value": ESCROW})
    assert tx.return_value == 1 and ledger.taskCount() == 1
    assert task_of(ledger, 1) == dict(publisher=publisher, closed=False, model_id=model_id, price=PRICE,
                                      available=ESCROW, reserved=0)
    assert ledger.balance() == ESCROW
    assert tx.events["TaskCreated"] == {"taskId": 1, "publisher": publisher, "modelId": model_id,
                                        "pricePerToken": PRICE, "escrow": ESCROW}


def test_second_task_gets_the_next_id(ledger, task_id, model_id, publisher):
    assert ledger.createTask(model_id, PRICE, {"from": publisher, "value": 1}).return_value == task_id + 1


@pytest.mark.parametrize("unknown", [0, 2])
def test_create_task_for_unknown_model_reverts(ledger, model_id, publisher, unknown):
    with reverts_with("UnknownModel(uint256)", unknown):
        ledger.createTask(unknown, PRICE, {"from": publisher, "value": ESCROW})


def test_create_task_with_zero_price_reverts(ledger, model_id, publisher):
    with reverts_with("ZeroPrice()"):
        ledger.createTask(model_id, 0, {"from": publisher, "value": ESCROW})


def test_create_task_without_escrow_reverts(ledger, model_id, publisher):
    with reverts_with("ZeroAmount()"):
        ledger.createTask(model_id, PRICE, {"from": publisher, "value": 0})


def test_unknown_task_cannot_be_read(ledger, task_id):
    with reverts_with("UnknownTask(uint256)", task_id + 1):
        ledger.task(task_id + 1)


# ---------------------------------------------------------------- fund


def test_fund_adds_to_the_available_escrow(ledger, task_id, publisher):
    tx = ledger.fund(task_id, {"from": publisher, "value": 500})
    assert task_of(ledger, task_id)["available"] == ESCROW + 500
    assert ledger.balance() == ESCROW + 500
    assert tx.events["TaskFunded"] == {"taskId": task_id, "amount": 500, "available": ESCROW + 500}


def test_fund_by_another_account_reverts(ledger, task_id, stranger):
    with reverts_with("NotPublisher(uint256,address)", task_id, stranger):
        ledger.fund(task_id, {"from": stranger, "value": 500})


def test_fund_with_zero_reverts(ledger, task_id, publisher):
    with reverts_with("ZeroAmount()"):
        ledger.fund(task_id, {"from": publisher, "value": 0})


def test_fund_of_a_closed_task_reverts(ledger, task_id, publisher):
    ledger.closeTask(task_id, {"from": publisher})
    with reverts_with("TaskAlreadyClosed(uint256)", task_id):
        ledger.fund(task_id, {"from": publisher, "value": 500})


def test_fund_of_an_unknown_task_reverts(ledger, task_id, publisher):
    with reverts_with("UnknownTask(uint256)", 99):
        ledger.fund(99, {"from": publisher, "value": 500})


# ---------------------------------------------------------------- closeTask


def test_close_task_credits_the_unreserved_escrow_to_the_publisher(ledger, task_id, publisher, node):
    commit(ledger, node, task_id, tokens=100)
    tx = ledger.closeTask(task_id, {"from": publisher})
    refund = ESCROW - 100 * PRICE
    assert ledger.claimable(publisher) == refund
    task = task_of(ledger, task_id)
    assert (task["closed"], task["available"], task["reserved"]) == (True, 0, 100 * PRICE)
    assert tx.events["TaskClosed"] == {"taskId": task_id, "refund": refund}


def test_close_task_by_another_account_reverts(ledger, task_id, stranger):
    with reverts_with("NotPublisher(uint256,address)", task_id, stranger):
        ledger.closeTask(task_id, {"from": stranger})


def test_close_task_twice_reverts(ledger, task_id, publisher):
    ledger.closeTask(task_id, {"from": publisher})
    with reverts_with("TaskAlreadyClosed(uint256)", task_id):
        ledger.closeTask(task_id, {"from": publisher})


def test_close_of_an_unknown_task_reverts(ledger, task_id, publisher):
    with reverts_with("UnknownTask(uint256)", 0):
        ledger.closeTask(0, {"from": publisher})


# ---------------------------------------------------------------- commit


def test_commit_reserves_the_window_payment(ledger, task_id, node):
    commit(ledger, node, task_id, tokens=300)
    task = task_of(ledger, task_id)
    assert (task["available"], task["reserved"]) == (ESCROW - 300 * PRICE, 300 * PRICE)


def test_commit_records_a_posted_commitment_under_its_id(ledger, task_id, node):
    tx = ledger.commit(task_id, 0, 1, ROOT, 300, BUNDLE_CID, {"from": node})
    expected = Commitment(task_id, node.address, 0, 1, 300, tx.timestamp, ROOT, False)
    assert tx.return_value == "0x" + expected.id().hex()
    assert state_of(ledger, expected) == (POSTED, 0)
    event = tx.events["CommitmentPosted"]
    assert Commitment.from_event(event["commitment"]) == expected
    assert (event["commitmentId"], event["taskId"], event["node"], event["bundleCid"]) == (
        "0x" + expected.id().hex(), task_id, node, BUNDLE_CID)


def test_commit_of_a_4096_token_window_costs_under_20_gas_per_token(ledger, task_id, node):
    _, tx = commit(ledger, node, task_id, tokens=4096)
    print(f"\ncommit gas used: {tx.gas_used} ({tx.gas_used / 4096:.2f} gas per token at 4,096 tokens)")
    assert tx.gas_used / 4096 < 20


def test_commit_by_a_node_that_does_not_host_the_expert_reverts(ledger, task_id, model_id, stranger):
    with reverts_with("NotActiveHost(uint256,uint32,address)", model_id, 0, stranger):
        ledger.commit(task_id, 0, 1, ROOT, 100, BUNDLE_CID, {"from": stranger})


def test_commit_by_a_host_of_another_expert_reverts(ledger, task_id, model_id, node):
    with reverts_with("NotActiveHost(uint256,uint32,address)", model_id, 1, node):
        ledger.commit(task_id, 1, 1, ROOT, 100, BUNDLE_CID, {"from": node})


def test_commit_by_a_host_whose_stake_fell_below_the_minimum_reverts(core, ledger, task_id, model_id, node):
    core.staking.requestUnbond(ETH + 1, {"from": node})
    with reverts_with("NotActiveHost(uint256,uint32,address)", model_id, 0, node):
        ledger.commit(task_id, 0, 1, ROOT, 100, BUNDLE_CID, {"from": node})


@pytest.mark.parametrize("version", [0, 2])
def test_commit_for_an_unpublished_version_reverts(ledger, task_id, model_id, node, version):
    with reverts_with("UnknownVersion(uint256,uint32,uint32)", model_id, 0, version):
        ledger.commit(task_id, 0, version, ROOT, 100, BUNDLE_CID, {"from": node})


def test_commit_beyond_the_available_escrow_reverts(ledger, task_id, node):
    commit(ledger, node, task_id, tokens=9_000)
    with reverts_with("InsufficientEscrow(uint256,uint256)", 1_000 * PRICE, 1_001 * PRICE):
        ledger.commit(task_id, 0, 1, ROOT, 1_001, BUNDLE_CID, {"from": node})


def test_commit_of_zero_tokens_reverts(ledger, task_id, node):
    with reverts_with("ZeroTokens()"):
        ledger.commit(task_id, 0, 1, ROOT, 0, BUNDLE_CID, {"from": node})


def test_commit_of_a_zero_root_reverts(ledger, task_id, node):
    with reverts_with("ZeroRoot()"):
        ledger.commit(task_id, 0, 1, bytes(32), 100, BUNDLE_CID, {"from": node})


def test_commit_without_bundle_cid_reverts(ledger, task_id, node):
    with reverts_with("EmptyCid()"):
        ledger.commit(task_id, 0, 1, ROOT, 100, "", {"from": node})


def test_commit_to_a_closed_task_reverts(ledger, task_id, publisher, node):
    ledger.closeTask(task_id, {"from": publisher})
    with reverts_with("TaskAlreadyClosed(uint256)", task_id):
        ledger.commit(task_id, 0, 1, ROOT, 100, BUNDLE_CID, {"from": node})


def test_commit_to_an_unknown_task_reverts(ledger, task_id, node):
    with reverts_with("UnknownTask(uint256)", task_id + 1):
        ledger.commit(task_id + 1, 0, 1, ROOT, 100, BUNDLE_CID, {"from": node})


def test_identical_commitment_in_the_same_second_reverts(ledger, task_id, node):
    first, _ = commit(ledger, node, task_id)
    next_block_at(first.posted_at)
    with reverts_with("CommitmentExists(bytes32)", first.id()):
        ledger.commit(task_id, 0, 1, ROOT, 100, BUNDLE_CID, {"from": node})


# ---------------------------------------------------------------- postReceipt


def test_post_receipt_records_a_commitment_that_reserves_nothing(ledger, task_id, model_id, signer, stranger):
    receipt = make_receipt(signer, task_id, model_id)
    signature = sign_receipt(receipt, signer.private_key, chain.id, ledger.address)
    tx = ledger.postReceipt(receipt.as_tuple(), signature, BUNDLE_CID, {"from": stranger})
    expected = Commitment(task_id, signer.address, 0, 1, 50, tx.timestamp, ROOT, True)
    assert tx.return_value == "0x" + expected.id().hex()
    assert Commitment.from_event(tx.events["CommitmentPosted"]["commitment"]) == expected
    assert state_of(ledger, expected) == (POSTED, 0)
    digest = receipt_digest(receipt, chain.id, ledger.address)
    assert ledger.receiptPosted(digest)
    assert tx.events["ReceiptPosted"] == {"commitmentId": "0x" + expected.id().hex(), "digest": "0x" + digest.hex(),
                                          "poster": stranger}
    task = task_of(ledger, task_id)
    assert (task["available"], task["reserved"]) == (ESCROW, 0)


def test_post_receipt_to_a_closed_task_is_accepted(ledger, task_id, model_id, signer, publisher, stranger):
    ledger.closeTask(task_id, {"from": publisher})
    commitment, _ = post_receipt(ledger, signer, make_receipt(signer, task_id, model_id), stranger)
    assert state_of(ledger, commitment) == (POSTED, 0)


def test_replayed_receipt_reverts(ledger, task_id, model_id, signer, stranger):
    receipt = make_receipt(signer, task_id, model_id)
    post_receipt(ledger, signer, receipt, stranger)
    digest = receipt_digest(receipt, chain.id, ledger.address)
    with reverts_with("ReceiptAlreadyPosted(bytes32)", digest):
        post_receipt(ledger, signer, receipt, stranger)


def test_receipt_signed_by_another_key_reverts(ledger, task_id, model_id, signer, stranger):
    receipt = make_receipt(signer, task_id, model_id)
    impostor = Account.create()
    signature = sign_receipt(receipt, impostor.key, chain.id, ledger.address)
    with reverts_with("InvalidSignature(address,address)", signer, impostor.address):
        ledger.postReceipt(receipt.as_tuple(), signature, BUNDLE_CID, {"from": stranger})


def test_receipt_with_a_malformed_signature_reverts(ledger, task_id, model_id, signer, stranger):
    receipt = make_receipt(signer, task_id, model_id)
    signature = sign_receipt(receipt, signer.private_key, chain.id, ledger.address)
    with reverts_with("InvalidSignature(address,address)", signer, ZERO_ADDRESS):
        ledger.postReceipt(receipt.as_tuple(), signature[:64], BUNDLE_CID, {"from": stranger})


def test_receipt_signed_for_another_ledger_reverts(ledger, task_id, model_id, signer, stranger):
    receipt = make_receipt(signer, task_id, model_id)
    signature = sign_receipt(receipt, signer.private_key, chain.id, stranger.address)
    with brownie.reverts():
        ledger.postReceipt(receipt.as_tuple(), signature, BUNDLE_CID, {"from": stranger})


def test_receipt_signed_by_an_unstaked_key_reverts(accounts, ledger, task_id, model_id, stranger):
    unstaked = accounts.add(Account.create().key)
    receipt = make_receipt(unstaked, task_id, model_id)
    with reverts_with("NotStaked(address)", unstaked):
        post_receipt(ledger, unstaked, receipt, stranger)


def test_receipt_of_a_node_staked_below_the_minimum_reverts(core, ledger, task_id, model_id, signer, stranger):
    core.staking.requestUnbond(1, {"from": signer})
    with reverts_with("NotStaked(address)", signer):
        post_receipt(ledger, signer, make_receipt(signer, task_id, model_id), stranger)


def test_receipt_naming_another_model_than_the_task_reverts(ledger, core, task_id, signer, publisher, stranger):
    other_model = register_model(core.registry, publisher, mode=FLOAT)
    with reverts_with("ReceiptTaskMismatch(uint256,uint256)", task_id, other_model):
        post_receipt(ledger, signer, make_receipt(signer, task_id, other_model), stranger)


def test_receipt_for_an_unpublished_version_reverts(ledger, task_id, model_id, signer, stranger):
    with reverts_with("UnknownVersion(uint256,uint32,uint32)", model_id, 0, 2):
        post_receipt(ledger, signer, make_receipt(signer, task_id, model_id, version=2), stranger)


def test_receipt_for_an_unknown_task_reverts(ledger, task_id, model_id, signer, stranger):
    with reverts_with("UnknownTask(uint256)", task_id + 1):
        post_receipt(ledger, signer, make_receipt(signer, task_id + 1, model_id), stranger)


def test_receipt_without_bundle_cid_reverts(ledger, task_id, model_id, signer, stranger):
    receipt = make_receipt(signer, task_id, model_id)
    signature = sign_receipt(receipt, signer.private_key, chain.id, ledger.address)
    with reverts_with("EmptyCid()"):
        ledger.postReceipt(receipt.as_tuple(), signature, "", {"from": stranger})


# ---------------------------------------------------------------- finalize


def test_challenge_deadline_is_posted_at_plus_the_model_window(ledger, task_id, node):
    commitment, _ = commit(ledger, node, task_id)
    assert ledger.challengeDeadline(commitment.as_tuple()) == commitment.posted_at + CHALLENGE_WINDOW


def test_finalize_after_the_window_credits_the_node_exactly(ledger, task_id, node, stranger):
    commitment, _ = commit(ledger, node, task_id, tokens=777)
    after_window(commitment)
    tx = ledger.finalize(commitment.as_tuple(), {"from": stranger})
    assert ledger.claimable(node) == 777 * PRICE
    assert state_of(ledger, commitment) == (FINALIZED, 0)
    task = task_of(ledger, task_id)
    assert (task["available"], task["reserved"]) == (ESCROW - 777 * PRICE, 0)
    assert tx.events["CommitmentFinalized"] == {"commitmentId": "0x" + commitment.id().hex(), "node": node,
                                                "payment": 777 * PRICE}


def test_finalize_one_second_before_the_window_ends_reverts(ledger, task_id, node):
    commitment, _ = commit(ledger, node, task_id)
    ends_at = commitment.posted_at + CHALLENGE_WINDOW
    next_block_at(ends_at - 1)
    with reverts_with("ChallengeWindowOpen(uint256)", ends_at):
        ledger.finalize(commitment.as_tuple(), {"from": node})


def test_finalize_with_a_dispute_open_reverts(ledger, task_id, node, module):
    commitment, _ = commit(ledger, node, task_id)
    ledger.openDispute(commitment.as_tuple(), {"from": module})
    after_window(commitment)
    with reverts_with("DisputesOpen(bytes32,uint32)", commitment.id(), 1):
        ledger.finalize(commitment.as_tuple(), {"from": node})


def test_finalize_twice_reverts(ledger, task_id, node):
    commitment, _ = commit(ledger, node, task_id)
    after_window(commitment)
    ledger.finalize(commitment.as_tuple(), {"from": node})
    with reverts_with("WrongStatus(bytes32,uint8)", commitment.id(), FINALIZED):
        ledger.finalize(commitment.as_tuple(), {"from": node})


def test_finalize_of_altered_commitment_fields_reverts(ledger, task_id, node):
    commitment, _ = commit(ledger, node, task_id, tokens=100)
    inflated = Commitment(**{**commitment.__dict__, "token_count": 10_000})
    after_window(commitment)
    with reverts_with("UnknownCommitment(bytes32)", inflated.id()):
        ledger.finalize(inflated.as_tuple(), {"from": node})


def test_finalize_of_a_receipt_commitment_pays_nothing(ledger, task_id, model_id, signer, stranger):
    commitment, _ = post_receipt(ledger, signer, make_receipt(signer, task_id, model_id), stranger)
    after_window(commitment)
    tx = ledger.finalize(commitment.as_tuple(), {"from": stranger})
    assert tx.events["CommitmentFinalized"]["payment"] == 0
    assert ledger.claimable(signer) == 0
    assert state_of(ledger, commitment) == (FINALIZED, 0)


def test_finalize_after_the_task_closed_still_pays_the_node(ledger, task_id, publisher, node):
    commitment, _ = commit(ledger, node, task_id, tokens=100)
    ledger.closeTask(task_id, {"from": publisher})
    after_window(commitment)
    ledger.finalize(commitment.as_tuple(), {"from": node})
    assert ledger.claimable(node) == 100 * PRICE
    assert ledger.claimable(publisher) == ESCROW - 100 * PRICE


# ---------------------------------------------------------------- claim


def test_claim_sends_everything_credited(ledger, task_id, node):
    commitment, _ = commit(ledger, node, task_id, tokens=250)
    after_window(commitment)
    ledger.finalize(commitment.as_tuple(), {"from": node})
    before = node.balance()
    tx = ledger.claim({"from": node})
    assert node.balance() == before + 250 * PRICE
    assert ledger.claimable(node) == 0
    assert ledger.balance() == ESCROW - 250 * PRICE
    assert tx.events["Claimed"] == {"account": node, "amount": 250 * PRICE}


def test_publisher_claims_the_refund_of_a_closed_task(ledger, task_id, publisher):
    ledger.closeTask(task_id, {"from": publisher})
    before = publisher.balance()
    ledger.claim({"from": publisher})
    assert publisher.balance() == before + ESCROW
    assert ledger.balance() == 0


def test_claim_with_nothing_credited_reverts(ledger, stranger):
    with reverts_with("NothingToClaim()"):
        ledger.claim({"from": stranger})


def test_claim_by_a_contract_that_refuses_ether_reverts(ledger, model_id, deployer):
    caller = NoReceiveCaller.deploy({"from": deployer})
    task_id = ledger.taskCount() + 1
    caller.forward(ledger, ledger.createTask.encode_input(model_id, PRICE), {"from": deployer, "value": ESCROW})
    caller.forward(ledger, ledger.closeTask.encode_input(task_id), {"from": deployer})
    with reverts_with("TransferFailed()"):
        caller.forward(ledger, ledger.claim.encode_input(), {"from": deployer})


# ---------------------------------------------------------------- dispute hooks


def test_open_dispute_counts_the_dispute_and_returns_the_model(ledger, task_id, model_id, node, module):
    commitment, _ = commit(ledger, node, task_id)
    tx = ledger.openDispute(commitment.as_tuple(), {"from": module})
    assert tx.return_value == model_id
    assert state_of(ledger, commitment) == (POSTED, 1)
    assert tx.events["DisputeOpened"] == {"commitmentId": "0x" + commitment.id().hex(), "module": module,
                                          "openDisputes": 1}


def test_open_dispute_by_a_non_module_reverts(ledger, task_id, node, stranger):
    commitment, _ = commit(ledger, node, task_id)
    with reverts_with("NotDisputeModule(address)", stranger):
        ledger.openDispute(commitment.as_tuple(), {"from": stranger})


def test_open_dispute_in_the_last_second_of_the_window_succeeds(ledger, task_id, node, module):
    commitment, _ = commit(ledger, node, task_id)
    next_block_at(commitment.posted_at + CHALLENGE_WINDOW - 1)
    ledger.openDispute(commitment.as_tuple(), {"from": module})
    assert state_of(ledger, commitment) == (POSTED, 1)


def test_open_dispute_once_the_window_ended_reverts(ledger, task_id, node, module):
    commitment, _ = commit(ledger, node, task_id)
    after_window(commitment)
    with reverts_with("ChallengeWindowClosed(uint256)", commitment.posted_at + CHALLENGE_WINDOW):
        ledger.openDispute(commitment.as_tuple(), {"from": module})


def test_open_dispute_on_a_finalized_commitment_reverts(ledger, task_id, node, module):
    commitment, _ = commit(ledger, node, task_id)
    after_window(commitment)
    ledger.finalize(commitment.as_tuple(), {"from": node})
    with reverts_with("WrongStatus(bytes32,uint8)", commitment.id(), FINALIZED):
        ledger.openDispute(commitment.as_tuple(), {"from": module})


def test_open_dispute_on_an_unknown_commitment_reverts(ledger, task_id, node, module):
    commitment = Commitment(task_id, node.address, 0, 1, 100, chain.time(), ROOT, False)
    with reverts_with("UnknownCommitment(bytes32)", commitment.id()):
        ledger.openDispute(commitment.as_tuple(), {"from": module})


def test_close_dispute_by_a_non_module_reverts(ledger, task_id, node, module, stranger):
    commitment, _ = commit(ledger, node, task_id)
    ledger.openDispute(commitment.as_tuple(), {"from": module})
    with reverts_with("NotDisputeModule(address)", stranger):
        ledger.closeDispute(commitment.id(), True, {"from": stranger})


def test_close_dispute_without_an_open_dispute_reverts(ledger, task_id, node, module):
    commitment, _ = commit(ledger, node, task_id)
    with reverts_with("NoDisputeOpen(bytes32)", commitment.id()):
        ledger.closeDispute(commitment.id(), False, {"from": module})


def test_honest_verdict_lets_the_commitment_finalize_and_be_paid(ledger, task_id, node, module):
    commitment, _ = commit(ledger, node, task_id, tokens=100)
    ledger.openDispute(commitment.as_tuple(), {"from": module})
    tx = ledger.closeDispute(commitment.id(), False, {"from": module})
    assert state_of(ledger, commitment) == (POSTED, 0)
    assert tx.events["DisputeClosed"] == {"commitmentId": "0x" + commitment.id().hex(), "module": module,
                                          "fraud": False, "openDisputes": 0}
    after_window(commitment)
    ledger.finalize(commitment.as_tuple(), {"from": node})
    assert ledger.claimable(node) == 100 * PRICE


def test_fraud_invalidates_and_returns_the_reservation_to_the_task(ledger, task_id, node, module):
    commitment, _ = commit(ledger, node, task_id, tokens=400)
    ledger.openDispute(commitment.as_tuple(), {"from": module})
    tx = ledger.closeDispute(commitment.id(), True, {"from": module})
    assert state_of(ledger, commitment) == (INVALIDATED, 0)
    task = task_of(ledger, task_id)
    assert (task["available"], task["reserved"]) == (ESCROW, 0)
    assert tx.events["CommitmentInvalidated"] == {"commitmentId": "0x" + commitment.id().hex(),
                                                  "releasedEscrow": 400 * PRICE}
    assert tx.events["DisputeClosed"]["fraud"] is True


def test_fraud_after_the_task_closed_credits_the_publisher(ledger, task_id, publisher, node, module):
    commitment, _ = commit(ledger, node, task_id, tokens=400)
    ledger.openDispute(commitment.as_tuple(), {"from": module})
    ledger.closeTask(task_id, {"from": publisher})
    ledger.closeDispute(commitment.id(), True, {"from": module})
    assert ledger.claimable(publisher) == ESCROW
    assert task_of(ledger, task_id)["reserved"] == 0
    assert ledger.claimable(node) == 0


def test_fraud_on_a_receipt_commitment_releases_nothing(ledger, task_id, model_id, signer, module, stranger):
    commitment, _ = post_receipt(ledger, signer, make_receipt(signer, task_id, model_id), stranger)
    ledger.openDispute(commitment.as_tuple(), {"from": module})
    tx = ledger.closeDispute(commitment.id(), True, {"from": module})
    assert tx.events["CommitmentInvalidated"]["releasedEscrow"] == 0
    assert state_of(ledger, commitment) == (INVALIDATED, 0)
    assert task_of(ledger, task_id)["available"] == ESCROW


def test_second_fraud_verdict_releases_nothing_more(ledger, task_id, node, module):
    commitment, _ = commit(ledger, node, task_id, tokens=400)
    ledger.openDispute(commitment.as_tuple(), {"from": module})
    ledger.openDispute(commitment.as_tuple(), {"from": module})
    ledger.closeDispute(commitment.id(), True, {"from": module})
    tx = ledger.closeDispute(commitment.id(), True, {"from": module})
    assert "CommitmentInvalidated" not in tx.events
    assert state_of(ledger, commitment) == (INVALIDATED, 0)
    assert task_of(ledger, task_id)["available"] == ESCROW


def test_invalidated_commitment_cannot_be_finalized_or_disputed_again(ledger, task_id, node, module):
    commitment, _ = commit(ledger, node, task_id)
    ledger.openDispute(commitment.as_tuple(), {"from": module})
    ledger.closeDispute(commitment.id(), True, {"from": module})
    with reverts_with("WrongStatus(bytes32,uint8)", commitment.id(), INVALIDATED):
        ledger.openDispute(commitment.as_tuple(), {"from": module})
    after_window(commitment)
    with reverts_with("WrongStatus(bytes32,uint8)", commitment.id(), INVALIDATED):
        ledger.finalize(commitment.as_tuple(), {"from": node})


# ---------------------------------------------------------------- accounting


def test_ledger_balance_equals_escrow_plus_claimable_through_a_task_lifecycle(
    ledger, task_id, publisher, node, module
):
    paid, _ = commit(ledger, node, task_id, tokens=1_000, root=b"\x01" * 32)
    fraudulent, _ = commit(ledger, node, task_id, tokens=2_000, root=b"\x02" * 32)
    pending, _ = commit(ledger, node, task_id, tokens=3_000, root=b"\x03" * 32)
    ledger.openDispute(fraudulent.as_tuple(), {"from": module})
    ledger.closeDispute(fraudulent.id(), True, {"from": module})
    after_window(paid)
    ledger.finalize(paid.as_tuple(), {"from": node})
    ledger.closeTask(task_id, {"from": publisher})

    task = task_of(ledger, task_id)
    assert (task["available"], task["reserved"]) == (0, 3_000 * PRICE)
    assert ledger.claimable(node) == 1_000 * PRICE
    assert ledger.claimable(publisher) == ESCROW - 4_000 * PRICE
    assert ledger.balance() == task["reserved"] + ledger.claimable(node) + ledger.claimable(publisher)
    assert state_of(ledger, pending) == (POSTED, 0)
