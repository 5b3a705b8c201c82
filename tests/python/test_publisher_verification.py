"""The publisher accepts an edge node's answer only if it is that node's signed receipt over exactly these outputs.

Answers are built here the way an honest node builds them (leaves, root, EIP-712 signature), then spoiled one
field at a time: every spoiled answer must be refused with a message naming what is wrong.
"""
from dataclasses import replace

import numpy as np
import pytest
from eth_account import Account

from bmoe_py.crypto import Receipt, TokenLeaf, request_id, sign_receipt, token_tree
from bmoe_py.protocol.bundle import WindowBundle
from bmoe_py.protocol.wire import ForwardRequest, ForwardResponse
from bmoe_py.publisher.remote import InvalidResponse, verify_response
from bmoe_py.publisher.tasks import CallStats, DisputeRecord, TaskReport, dispute_counts

CHAIN_ID = 1337
LEDGER = "0xCafac3dD18aC6c6e92c921884f9E4176737C052c"
NODE = Account.from_key("0x" + "11" * 32)
OTHER = Account.from_key("0x" + "22" * 32)
PUBLISHER = "0x" + "ab" * 20


def make_request(n=5, in_dim=8, seed=0) -> ForwardRequest:
    tokens = np.random.default_rng(seed).integers(-128, 128, (n, in_dim), dtype=np.int8)
    return ForwardRequest(7, 3, 2, 1, request_id(7, PUBLISHER, 42), tokens)


def answer(request: ForwardRequest, outputs=None, signer=NODE, node=None, **receipt_overrides) -> ForwardResponse:
    """An answer as an honest node computes it (then, with overrides, as a careless or lying one would)."""
    node = node or NODE.address
    if outputs is None:
        outputs = (request.tokens.astype(np.int16) // 2).astype(np.int8)
    leaves = [
        TokenLeaf.from_vectors(node, request.model_id, request.expert_index, request.expert_version,
                               request.request_id, i, request.tokens[i], outputs[i])
        for i in range(len(outputs))
    ]  # fmt: skip
    receipt = Receipt(request.task_id, node, request.model_id, request.expert_index, request.expert_version,
                      request.request_id, token_tree(leaves).root, len(outputs))  # fmt: skip
    receipt = replace(receipt, **receipt_overrides)
    return ForwardResponse(receipt, sign_receipt(receipt, signer.key, CHAIN_ID, LEDGER), outputs)


def check(request, response, host=NODE.address, out_dim=None):
    verify_response(request, response, host, CHAIN_ID, LEDGER, out_dim)


def test_an_honest_answer_is_accepted():
    request = make_request()
    check(request, answer(request), out_dim=8)


def test_an_answer_survives_the_wire():
    request = make_request()
    check(request, ForwardResponse.decode(answer(request).encode()))


def test_an_honest_answer_bundles_to_its_receipt_root():
    """What `postReceipt` relies on: the one-request bundle of a verified answer has the receipt's root."""
    request = make_request()
    response = answer(request)
    bundle = WindowBundle.of_requests(NODE.address, 7, 3, 2, 1, [(request.request_id, request.tokens, response.outputs)])
    assert bundle.root == response.receipt.root


def test_outputs_changed_after_signing_are_refused():
    request = make_request()
    response = answer(request)
    tampered = response.outputs.copy()
    tampered[3, 0] ^= 1
    with pytest.raises(InvalidResponse, match="is not the root .* of the outputs sent"):
        check(request, replace(response, outputs=tampered))


def test_an_answer_signed_by_another_key_is_refused():
    request = make_request()
    with pytest.raises(InvalidResponse, match=f"signed by {OTHER.address}, not by the host {NODE.address}"):
        check(request, answer(request, signer=OTHER))


def test_an_answer_from_a_node_other_than_the_registered_host_is_refused():
    request = make_request()
    with pytest.raises(InvalidResponse, match=f"names node {OTHER.address}, the registry lists {NODE.address}"):
        check(request, answer(request, signer=OTHER, node=OTHER.address))


@pytest.mark.parametrize(
    "field, value",
    [("task_id", 8), ("model_id", 4), ("expert_index", 3), ("request_id", b"\x01" * 32)],
)
def test_a_receipt_for_another_request_is_refused(field, value):
    request = make_request()
    with pytest.raises(InvalidResponse, match=r"the receipt answers \(task, model, expert, request\)"):
        check(request, answer(request, **{field: value}))


def test_a_receipt_for_another_expert_version_is_refused():
    request = make_request()
    with pytest.raises(InvalidResponse, match="expert version 2, not 1"):
        check(request, answer(request, expert_version=2))


def test_a_receipt_with_a_wrong_token_count_is_refused():
    request = make_request()
    with pytest.raises(InvalidResponse, match="covers 4 tokens, the request had 5"):
        check(request, answer(request, token_count=4))


def test_too_few_outputs_are_refused():
    request = make_request()
    short = answer(replace(request, tokens=request.tokens[:4]))  # a signed answer to the first four tokens only
    with pytest.raises(InvalidResponse, match=r"outputs int8\[4, 8\] do not answer 5 tokens"):
        check(request, short)


def test_outputs_of_the_wrong_width_are_refused():
    request = make_request()
    with pytest.raises(InvalidResponse, match=r"outputs int8\[5, 8\] do not answer"):
        check(request, answer(request), out_dim=16)


def test_a_malformed_signature_is_refused():
    request = make_request()
    with pytest.raises(InvalidResponse, match="signed by|unreadable signature"):
        check(request, replace(answer(request), signature=b"\x00" * 65))


# ------------------------------------------------------------------------------------------- reports


def test_call_stats_count_calls_failures_tokens_and_latency_per_host():
    stats = CallStats()
    for latency in (0.010, 0.020, 0.030):
        stats.success("0xA", 100, latency)
    stats.failure("0xB")
    assert (stats.calls, stats.failures, stats.expert_tokens) == ({"0xA": 3, "0xB": 1}, {"0xB": 1}, 300)
    assert stats.percentile_ms(50) == pytest.approx(20.0)
    assert stats.percentile_ms(99) == pytest.approx(29.8)


def test_latency_percentiles_are_none_without_calls():
    assert CallStats().percentile_ms(50) is None


def test_dispute_counts_tell_won_lost_pending_and_failed_challenges_apart():
    records = [
        DisputeRecord("0xA", 0, 1, "fraud", 10**18),
        DisputeRecord("0xB", 1, 2, "honest"),
        DisputeRecord("0xC", 1, 3, None),
        DisputeRecord("0xD", 2, None, None, detail="not settled before the report"),
        DisputeRecord("0xE", 2, None, "error", detail="postReceipt reverted"),
    ]
    assert dispute_counts(records) == {"opened": 4, "won": 1, "lost": 1, "pending": 2}


def test_a_report_is_json_able_and_summarised_on_three_lines():
    import json

    report = TaskReport(
        task_id=1, model_id=2, policy="redundant:3", samples=4, tokens=8, expert_tokens=24, accuracy=0.75,
        predictions=[0, 1, 2, 1], seconds=0.5, tokens_per_s=16.0, calls_per_host={"0xA": 2}, failures_per_host={},
        latency_p50_ms=1.0, latency_p99_ms=2.0, disputes={"opened": 1, "won": 1, "lost": 0, "pending": 0},
        slashed=10**18, evicted={"0xA": "slashed"}, dispute_records=[DisputeRecord("0xA", 0, 1, "fraud", 10**18)],
    )  # fmt: skip
    data = json.loads(json.dumps(report.to_dict()))
    assert data["dispute_records"][0] == {"host": "0xA", "expert": 0, "dispute_id": 1, "outcome": "fraud",
                                          "slashed": 10**18, "detail": ""}  # fmt: skip
    summary = report.summary()
    assert "accuracy 75.00%" in summary and "1 won" in summary and "evicted 0xA: slashed" in summary
