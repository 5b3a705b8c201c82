"""A commitment's id is keccak256(abi.encode(Commitment)), the key of its state in the ledger."""
from eth_abi import encode
from eth_utils import keccak

from bmoe_py.crypto import Commitment

COMMITMENT_TYPES = ["uint256", "address", "uint32", "uint32", "uint64", "uint64", "bytes32", "bool"]
NODE = "0x5B38Da6a701c568545dCfcB03FcB875f56beddC4"


def sample(**overrides):
    fields = dict(task_id=1, node=NODE, expert_index=4, expert_version=2, token_count=4096, posted_at=1_700_000_000,
                  root=b"\x5a" * 32, from_receipt=True)
    fields.update(overrides)
    return Commitment(**fields)


def test_id_is_keccak_of_the_abi_encoded_struct():
    commitment = sample()
    assert commitment.id() == keccak(encode(COMMITMENT_TYPES, list(commitment.as_tuple())))


def test_id_depends_on_whether_it_came_from_a_receipt():
    assert sample(from_receipt=True).id() != sample(from_receipt=False).id()


def test_rebuilt_from_event_fields_by_name():
    commitment = sample()
    fields = dict(taskId=1, node=NODE, expertIndex=4, expertVersion=2, tokenCount=4096, postedAt=1_700_000_000,
                  root="0x" + "5a" * 32, fromReceipt=True)
    assert Commitment.from_event(fields) == commitment


def test_rebuilt_from_event_tuple():
    commitment = sample(from_receipt=False)
    assert Commitment.from_event(commitment.as_tuple()) == commitment
