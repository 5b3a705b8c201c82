"""bmoe_py.chain.screening: flags and blacklistings written and read through the web3 client, against the suite that
`brownie run deploy` put on the test chain."""
import pytest
from brownie import accounts
from eth_account import Account

from bmoe_py.chain.client import TransactionReverted, connect
from bmoe_py.chain.screening import (
    ScreeningRecord,
    blacklist,
    decode_reason,
    encode_reason,
    flag,
    flags,
    screening_record,
    unblacklist,
)

ETH = 10**18
NODE = "0x" + "ab" * 20


@pytest.fixture(scope="module")
def owner(deployed, deployments, rpc_url):
    """A client whose key owns a float model."""
    account = Account.create()
    accounts[0].transfer(account.address, 10 * ETH)
    chain = connect(rpc_url, account.key, deployments_dir=deployments)
    params = (1, 2, 1000, 24 * 3600, ETH, ETH, "QmGate", b"\x11" * 32)
    receipt = chain.send(chain.registry.functions.registerModel(params))
    chain.model_id = int(chain.events(receipt, "ExpertRegistry", "ModelRegistered")[0]["modelId"])
    return chain


def test_reasons_round_trip_through_bytes32():
    assert encode_reason("cluster") == b"cluster" + bytes(25)
    assert decode_reason(encode_reason("robust-z:grad_norm")) == "robust-z:grad_norm"


def test_a_reason_longer_than_32_characters_is_refused():
    with pytest.raises(ValueError, match="at most 32"):
        encode_reason("x" * 33)


def test_flags_are_read_back_with_their_label_and_score(owner):
    node = Account.create().address
    flag(owner, owner.model_id, node, 2, "robust-z:update_norm", -4.25)
    assert screening_record(owner, owner.model_id, node) == ScreeningRecord(1, 2, False)
    (event,) = [f for f in flags(owner, owner.model_id) if f["node"] == node]
    assert (event["round"], event["reason"], event["score"]) == (2, "robust-z:update_norm", 4.25)


def test_blacklist_and_unblacklist_through_the_client(owner):
    node = Account.create().address
    blacklist(owner, owner.model_id, node, b"\x01")
    assert screening_record(owner, owner.model_id, node).blacklisted
    unblacklist(owner, owner.model_id, node)
    assert not screening_record(owner, owner.model_id, node).blacklisted


def test_flag_by_a_key_that_does_not_own_the_model_raises_the_decoded_error(owner, deployments, rpc_url):
    stranger = Account.create()
    accounts[0].transfer(stranger.address, ETH)
    chain = connect(rpc_url, stranger.key, deployments_dir=deployments)
    with pytest.raises(TransactionReverted) as exc:
        flag(chain, owner.model_id, NODE, 1, "cluster", 1.0)
    assert exc.value.name == "NotModelOwner"
