"""bmoe_py.chain.errors: revert data back to the error's name and arguments, using the contracts' ABIs."""
from eth_abi import encode
from eth_utils import function_signature_to_4byte_selector as selector

from bmoe_py.chain.errors import DecodedError, ErrorDecoder


def error(name, *inputs):
    return {"type": "error", "name": name, "inputs": [{"name": n, "type": t} for n, t in inputs]}


STAKING = [error("InsufficientStake", ("available", "uint256"), ("requested", "uint256")), error("ZeroAmount")]
FRAUD = [error("WrongBond", ("sent", "uint256"), ("required", "uint256"))]
COMMITTEE = [error("WrongBond", ("sent", "uint256"), ("required", "uint256")), error("NotCommitteeMember", ("caller", "address"))]
DECODER = ErrorDecoder({"Staking": STAKING, "FraudProof": FRAUD, "CommitteeDispute": COMMITTEE})


def test_custom_error_is_decoded_with_named_arguments():
    data = selector("InsufficientStake(uint256,uint256)") + encode(["uint256", "uint256"], [1, 5])
    assert DECODER.decode(data) == DecodedError("InsufficientStake", {"available": 1, "requested": 5}, "Staking")


def test_hex_string_data_is_accepted():
    data = "0x" + selector("ZeroAmount()").hex()
    assert DECODER.decode(data) == DecodedError("ZeroAmount", {}, "Staking")


def test_error_declared_by_several_contracts_is_attributed_to_the_called_one():
    data = selector("WrongBond(uint256,uint256)") + encode(["uint256", "uint256"], [0, 10])
    assert DECODER.decode(data, prefer="CommitteeDispute").contract == "CommitteeDispute"
    assert DECODER.decode(data, prefer="FraudProof").contract == "FraudProof"


def test_str_reads_like_solidity():
    data = selector("NotCommitteeMember(address)") + encode(["address"], ["0x" + "ab" * 20])
    assert str(DECODER.decode(data)) == "CommitteeDispute.NotCommitteeMember(caller='0x" + "ab" * 20 + "')"


def test_require_string_is_decoded():
    data = selector("Error(string)") + encode(["string"], ["nope"])
    assert DECODER.decode(data) == DecodedError("Error", {"reason": "nope"})


def test_panic_is_decoded_with_its_meaning():
    data = selector("Panic(uint256)") + encode(["uint256"], [0x11])
    assert DECODER.decode(data).args == {"code": 0x11, "reason": "arithmetic overflow or underflow"}


def test_unknown_selector_keeps_the_raw_data():
    decoded = DECODER.decode(b"\x01\x02\x03\x04\xff")
    assert decoded.name == "UnknownError"
    assert decoded.args == {"selector": b"\x01\x02\x03\x04", "data": b"\xff"}


def test_truncated_arguments_are_reported_not_raised():
    data = selector("InsufficientStake(uint256,uint256)") + b"\x00" * 10
    assert DECODER.decode(data).name == "UndecodableRevert"


def test_no_data_decodes_to_none():
    assert DECODER.decode(None) is None
    assert DECODER.decode("0x") is None
