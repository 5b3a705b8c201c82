"""`brownie run gas_report` (`make gas`): measures the gas of every on-chain step of B-MoE and writes docs/gas.md.

It deploys the suite on the development chain and drives real flows through it: window commitments of growing
size, a receipt posted by a third party, finalisation, exact fraud proofs for growing row lengths (an honest and
a fraudulent node), and a committee dispute. Every figure is the `gasUsed` of one transaction (21000 base and
calldata included), so it is what the sender pays.

`python scripts/gas_report.py` does the same on a chain of its own, launched on $BMOE_ANVIL_PORT (default 8555,
as for the tests: 8545 is left to the long-lived chain of `make deploy`).
"""
from __future__ import annotations

import os
import platform
import warnings
import subprocess
from dataclasses import dataclass, field
from datetime import date
from importlib import metadata
from pathlib import Path

import numpy as np
from brownie import accounts, chain, web3
from eth_utils import keccak

from bmoe_py.chain.deploy import DAY, ETHER, DeployParams, deploy_suite
from bmoe_py.crypto import Commitment, Receipt, TokenLeaf, request_id, sign_receipt, token_tree, weights_tree
from bmoe_py.model.int8_ref import IntLayer, layer_forward

ROOT = Path(__file__).resolve().parent.parent
# brownie 1.22 warns about its own internal calls on every chain.sleep/mine; nothing to act on here.
warnings.filterwarnings("ignore", message=r"rpc\.\w+ should not be called directly")
WINDOW_SIZES = (1, 16, 256, 4096, 65536)
ROW_LENGTHS = (64, 256, 1024, 4096)
VALIDATORS = 16
TARGET_GAS_PER_TOKEN = 20
EXACT, FLOAT = 0, 1
CHALLENGE_WINDOW = DAY
PRICE_PER_TOKEN = 10**9
CID = "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG"  # a CIDv0 as the embedded IPFS node returns them
BURN_ADDRESS = "0x000000000000000000000000000000000000dEaD"
ROWS = 8  # output rows of the measured exact layer; the fraud proof checks one of them


@dataclass
class Report:
    windows: list[tuple[int, int]] = field(default_factory=list)  # (tokens, gas)
    ledger: list[tuple[str, int]] = field(default_factory=list)  # (operation, gas)
    fraud: list[dict[str, int]] = field(default_factory=list)  # per row length: challenge/respond/prove gas
    committee: list[tuple[str, int]] = field(default_factory=list)
    training: list[tuple[str, int]] = field(default_factory=list)  # trainers and screening (protocol 11.x)
    pending: list[str] = field(default_factory=list)  # sections that could not be measured, and why


def main() -> None:
    from brownie.network import rpc

    if not rpc.is_child():
        # brownie attaches to whatever already listens on the development port (e.g. the anvil of `make deploy`):
        # the report would litter that chain, and its base fee rejects the development network's zero gas price.
        raise SystemExit(
            "gas_report: the development network is a chain brownie did not start (its port is taken, perhaps by "
            "`make deploy`'s anvil); run `BMOE_ANVIL_PORT=<free port> python scripts/gas_report.py` instead"
        )
    report = measure()
    path = ROOT / "docs" / "gas.md"
    path.write_text(render(report))
    print(f"\nwrote {path}")


def measure(
    window_sizes: tuple[int, ...] = WINDOW_SIZES,
    row_lengths: tuple[int, ...] = ROW_LENGTHS,
    validators: int = VALIDATORS,
) -> Report:
    report = Report()
    suite = deploy_suite(accounts[0], DeployParams(), log=lambda _: None)
    bench = Bench(suite)
    window_task = _measure_windows(bench, window_sizes, report)
    _measure_receipt_and_finalize(bench, window_task, report)
    if _implements(suite["FraudProof"], "prove"):
        for length in row_lengths:
            report.fraud.append(_measure_fraud_proof(bench, length))
    else:
        report.pending.append("FraudProof (the contract in this build does not implement the fraud proof yet)")
    if _implements(suite["CommitteeDispute"], "drawCommittee"):
        _measure_committee(bench, validators, report)
    else:
        report.pending.append("CommitteeDispute (the contract in this build does not implement the dispute yet)")
    _measure_training(bench, report)
    return report


def _implements(contract, function: str) -> bool:
    return any(item.get("name") == function for item in contract.abi)


class Bench:
    """The deployed suite plus funded actors; every helper returns the transaction so callers can read gasUsed."""

    def __init__(self, suite):
        self.suite = suite
        self.staking = suite["Staking"]
        self.registry = suite["ExpertRegistry"]
        self.ledger = suite["ResultLedger"]
        self.fraud_proof = suite["FraudProof"]
        self.committee = suite["CommitteeDispute"]
        self.screening = suite["Screening"]
        self.owner = accounts[0]
        self.rng = np.random.default_rng(2024)
        self._accounts = 0
        # Burned ETH goes to 0x...dEaD. On a fresh chain the first burn would also pay 25000 gas to create that
        # account, which no public chain charges any more: create it up front.
        accounts[0].transfer(BURN_ADDRESS, 1, silent=True)

    def account(self, ether: int = 100):
        """A fresh account with a private key (receipts are signed off chain) and `ether` ETH. Keys are derived
        from a counter so that every run uses the same addresses (zero bytes in calldata change the gas)."""
        self._accounts += 1
        account = accounts.add(keccak(text=f"bmoe gas report account {self._accounts}"))
        accounts[0].transfer(account, ether * ETHER, silent=True)
        return account

    def model(self, mode: int, expert_count: int) -> int:
        params = (
            mode,
            expert_count,
            0 if mode == EXACT else 1000,  # tolerance: zero for exact models, millionths for float ones
            CHALLENGE_WINDOW,
            ETHER,  # minNodeStake
            ETHER,  # minValidatorStake
            CID,
            b"\x01" * 32,
        )
        tx = self.registry.registerModel(params, {"from": self.owner, "silent": True})
        return tx.events["ModelRegistered"]["modelId"]

    def host(self, model_id: int, expert_index: int):
        node = self.account()
        self.staking.deposit({"from": node, "value": 10 * ETHER, "silent": True})
        self.registry.registerHost(model_id, expert_index, "http://node.example:8080", {"from": node, "silent": True})
        return node

    def task(self, model_id: int, tokens: int) -> int:
        tx = self.ledger.createTask(
            model_id, PRICE_PER_TOKEN, {"from": self.owner, "value": tokens * PRICE_PER_TOKEN, "silent": True}
        )
        return tx.events["TaskCreated"]["taskId"]

    def commit(self, node, task_id: int, expert_index: int, root: bytes, tokens: int):
        tx = self.ledger.commit(task_id, expert_index, 1, root, tokens, CID, {"from": node, "silent": True})
        commitment = Commitment.from_event(tx.events["CommitmentPosted"]["commitment"])
        return tx, commitment


def _random_leaves(bench: Bench, node: str, model_id: int, task_id: int, count: int) -> list[TokenLeaf]:
    """`count` token leaves with random input/output hashes: the tree, not the vectors, is what commit sees."""
    hashes = bench.rng.bytes(64 * count)
    rid = request_id(task_id, bench.owner.address, 1)
    return [
        TokenLeaf(node, model_id, 0, 1, rid, i, hashes[64 * i : 64 * i + 32], hashes[64 * i + 32 : 64 * i + 64])
        for i in range(count)
    ]


def _measure_windows(bench: Bench, sizes: tuple[int, ...], report: Report) -> tuple:
    """Commits windows of each size to one task of a float model; returns (model id, task id, node)."""
    model_id = bench.model(FLOAT, 1)
    bench.registry.publishExpert(model_id, 0, CID, b"\x02" * 32, [(16, 16, 0, 0, False)], {"from": bench.owner, "silent": True})
    node = bench.host(model_id, 0)
    task_id = bench.task(model_id, sum(sizes) + 16)  # 16: the window finalised by _measure_receipt_and_finalize
    for size in sizes:
        root = token_tree(_random_leaves(bench, node.address, model_id, task_id, size)).root
        tx, _ = bench.commit(node, task_id, 0, root, size)
        report.windows.append((size, tx.gas_used))
        print(f"commit {size:>6} tokens: {tx.gas_used} gas, {tx.gas_used / size:.1f} gas/token")
    return model_id, task_id, node


def _measure_receipt_and_finalize(bench: Bench, window_task: tuple, report: Report) -> None:
    model_id, task_id, node = window_task
    leaves = _random_leaves(bench, node.address, model_id, task_id, 16)
    receipt = Receipt(task_id, node.address, model_id, 0, 1, leaves[0].request_id, token_tree(leaves).root, 16)
    signature = sign_receipt(receipt, node.private_key, chain.id, bench.ledger.address)
    poster = bench.account()
    tx = bench.ledger.postReceipt(receipt.as_tuple(), signature, CID, {"from": poster, "silent": True})
    report.ledger.append(("postReceipt (anyone posts a node's signed 16-token receipt)", tx.gas_used))

    _, commitment = bench.commit(node, task_id, 0, token_tree(leaves).root, 16)
    chain.sleep(CHALLENGE_WINDOW + 1)
    tx = bench.ledger.finalize(commitment.as_tuple(), {"from": poster, "silent": True})
    report.ledger.append(("finalize (after the challenge window: pays the node)", tx.gas_used))
    tx = bench.ledger.claim({"from": node, "silent": True})
    report.ledger.append(("claim (node withdraws its payments)", tx.gas_used))
    for name, gas in report.ledger:
        print(f"{name}: {gas} gas")


def _measure_training(bench: Bench, report: Report) -> None:
    """The on-chain side of a training round (protocol 11.x): the owner names a trainer, the trainer publishes the
    next version of its expert, and screening flags and blacklists a node."""
    model_id = bench.model(FLOAT, 1)
    layers = [(16, 64, 0, 0, False), (64, 16, 0, 0, False)]
    bench.registry.publishExpert(model_id, 0, CID, b"\x02" * 32, layers, {"from": bench.owner, "silent": True})
    trainer = bench.account()
    owner = {"from": bench.owner, "silent": True}
    tx = bench.registry.setTrainer(model_id, 0, trainer, owner)
    report.training.append(("ExpertRegistry.setTrainer (owner names the expert's trainer)", tx.gas_used))
    tx = bench.registry.publishExpert(model_id, 0, CID, b"\x03" * 32, layers, {"from": trainer, "silent": True})
    report.training.append(("ExpertRegistry.publishExpert by the trainer (2 layers, shapes checked)", tx.gas_used))
    tx = bench.screening.flag(model_id, trainer, 1, b"robust-z:grad_norm".ljust(32, b"\0"), 4_000_000, owner)
    report.training.append(("Screening.flag (first flag of a node)", tx.gas_used))
    tx = bench.screening.flag(model_id, trainer, 2, b"cluster".ljust(32, b"\0"), 1_000_000, owner)
    report.training.append(("Screening.flag (a later flag)", tx.gas_used))
    tx = bench.screening.blacklist(model_id, trainer, b"\x0e" * 32, owner)
    report.training.append(("Screening.blacklist", tx.gas_used))
    for name, gas in report.training:
        print(f"{name}: {gas} gas")


def _exact_layer(bench: Bench, length: int) -> IntLayer:
    weight = bench.rng.integers(-128, 128, size=(ROWS, length), dtype=np.int8)
    bias = bench.rng.integers(-1000, 1000, size=ROWS, dtype=np.int32)
    # A random row's accumulator is about 128 * 74 * sqrt(length): this shift keeps most outputs off the clamp.
    return IntLayer(weight, bias, multiplier=1, shift=int(np.log2(length)) // 2 + 13, relu=False)


def _measure_fraud_proof(bench: Bench, length: int) -> dict[str, int]:
    """One honest and one fraudulent token of a one-layer exact expert with rows of `length` weights."""
    model_id = bench.model(EXACT, 1)
    layer = _exact_layer(bench, length)
    tree = weights_tree([layer])
    bench.registry.publishExpert(
        model_id, 0, CID, tree.root, [(length, ROWS, layer.multiplier, layer.shift, False)], {"from": bench.owner, "silent": True}
    )
    node = bench.host(model_id, 0)
    challenger = bench.account(10)
    task_id = bench.task(model_id, 16)
    rid = request_id(task_id, bench.owner.address, 7)

    inputs = [bench.rng.integers(-128, 128, size=length, dtype=np.int8) for _ in range(2)]
    outputs = [layer_forward(layer, x) for x in inputs]
    lie = outputs[1].copy()
    lie[3] = np.int8(int(lie[3]) + 1 if lie[3] < 127 else 0)  # the node misreports row 3 of token 1
    claimed = [outputs[0], lie]
    leaves = [TokenLeaf.from_vectors(node.address, model_id, 0, 1, rid, i, inputs[i], claimed[i]) for i in range(2)]
    tokens = token_tree(leaves)
    _, commitment = bench.commit(node, task_id, 0, tokens.root, 2)
    bond = bench.fraud_proof.bond()
    gas: dict[str, int] = {"length": length}

    for token, outcome in ((0, "honest"), (1, "fraud")):
        tx = bench.fraud_proof.challenge(
            commitment.as_tuple(), leaves[token].as_tuple(), tokens.proof(token), inputs[token].tobytes(),
            {"from": challenger, "value": bond, "silent": True},
        )
        dispute_id = tx.events["Challenged"]["disputeId"]
        gas[f"challenge_{outcome}"] = tx.gas_used
        tx = bench.fraud_proof.respond(dispute_id, [claimed[token].tobytes()], {"from": node, "silent": True})
        gas[f"respond_{outcome}"] = tx.gas_used
        row = tree.row(0, 3)
        tx = bench.fraud_proof.prove(
            dispute_id, 0, 3, inputs[token].tobytes(), claimed[token].tobytes(), row.weights, row.bias,
            tree.proof(0, 3), {"from": challenger, "silent": True},
        )
        assert tx.events["Resolved"]["fraud"] == (outcome == "fraud"), f"expected a {outcome} verdict"
        gas[f"prove_{outcome}"] = tx.gas_used
        gas[f"prove_{outcome}_calldata"] = _calldata_gas(tx)
        gas[f"prove_{outcome}_floor"] = _calldata_floor(tx)
    print(
        f"fraud proof, row length {length}: challenge {gas['challenge_fraud']}, respond {gas['respond_fraud']}, "
        f"prove {gas['prove_fraud']} (fraud) / {gas['prove_honest']} (honest), "
        f"{gas['prove_fraud'] / length:.1f} gas/MAC"
    )
    return gas


def _calldata_gas(tx) -> int:
    """What the transaction's input costs as calldata (EIP-2028: 4 gas per zero byte, 16 per other byte)."""
    data = bytes.fromhex(tx.input[2:])
    return sum(16 if byte else 4 for byte in data)


def _calldata_floor(tx) -> int:
    """EIP-7623 (Prague and later): a transaction pays at least 21000 + 10 gas per calldata token (a zero byte is
    one token, any other byte four), whatever its execution costs."""
    data = bytes.fromhex(tx.input[2:])
    return 21000 + 10 * sum(4 if byte else 1 for byte in data)


def _measure_committee(bench: Bench, validators: int, report: Report) -> None:
    """A float model's commitment challenged on three tokens: the draw's cost depends on the seed (which
    validators are sampled), so three draws give its range; the first dispute then runs to a fraud verdict."""
    model_id = bench.model(FLOAT, 1)
    bench.registry.publishExpert(model_id, 0, CID, b"\x03" * 32, [(16, 16, 0, 0, False)], {"from": bench.owner, "silent": True})
    node = bench.host(model_id, 0)
    for i in range(validators):
        validator = bench.account(10)
        bench.staking.deposit({"from": validator, "value": (1 + i % 4) * ETHER, "silent": True})
        bench.staking.joinValidators({"from": validator, "silent": True})
    challenger = bench.account(10)
    task_id = bench.task(model_id, 16)
    rid = request_id(task_id, bench.owner.address, 9)
    vectors = [bench.rng.standard_normal(16).astype(np.float32) for _ in range(2)]
    leaves = [TokenLeaf.from_vectors(node.address, model_id, 0, 1, rid, i, vectors[0], vectors[1]) for i in range(16)]
    tokens = token_tree(leaves)
    _, commitment = bench.commit(node, task_id, 0, tokens.root, 16)

    disputes, challenges = [], []
    for token in (5, 6, 7):
        tx = bench.committee.challenge(
            commitment.as_tuple(), leaves[token].as_tuple(), tokens.proof(token),
            {"from": challenger, "value": bench.committee.bond(), "silent": True},
        )
        disputes.append(tx.events["Challenged"]["disputeId"])
        challenges.append(tx.gas_used)
    report.committee.append(("challenge", challenges[0]))
    chain.mine(2)  # the seed is the hash of the block after the challenge's
    draws = [bench.committee.drawCommittee(d, {"from": challenger, "silent": True}) for d in disputes]
    gas = [tx.gas_used for tx in draws]
    report.committee.append((
        f"drawCommittee ({validators} validators, committee of {bench.committee.committeeSize()}; "
        f"mean of {len(gas)} seeds, range {min(gas):,} to {max(gas):,})",
        round(sum(gas) / len(gas)),
    ))

    dispute_id = disputes[0]
    members = [accounts.at(member) for member in draws[0].events["CommitteeDrawn"]["members"]]
    votes = {member: i < (len(members) + 1) // 2 for i, member in enumerate(members)}  # a majority says fraud
    salt = b"\x42" * 32
    commits = [
        bench.committee.commitVote(
            dispute_id, bench.committee.voteCommitment(dispute_id, salt, member, fraud), {"from": member, "silent": True}
        ).gas_used
        for member, fraud in votes.items()
    ]
    report.committee.append(("commitVote (mean per member)", round(sum(commits) / len(commits))))
    chain.sleep(bench.committee.commitWindow() + 1)
    reveals = [
        bench.committee.revealVote(dispute_id, fraud, salt, {"from": member, "silent": True}).gas_used
        for member, fraud in votes.items()
    ]
    report.committee.append(("revealVote (mean per member)", round(sum(reveals) / len(reveals))))
    chain.sleep(bench.committee.revealWindow() + 1)
    tx = bench.committee.finalize(dispute_id, {"from": challenger, "silent": True})
    report.committee.append((f"finalize (fraud by majority: node slashed, {len(members)} members paid)", tx.gas_used))
    for name, gas_used in report.committee:
        print(f"committee {name}: {gas_used} gas")


# ------------------------------------------------------------------------------------------------------- report


def _toolchain() -> str:
    from brownie import project

    compiler = project.get_loaded_projects()[0]["Staking"]._build["compiler"]
    optimizer = compiler["optimizer"]
    opt = f"optimizer on, {optimizer['runs']} runs" if optimizer.get("enabled") else "optimizer off"
    try:
        banner = subprocess.run(["anvil", "--version"], capture_output=True, text=True).stdout
        anvil = "anvil " + banner.split("\n")[0].split()[-1]  # "anvil Version: 1.7.1"
    except (OSError, IndexError):
        anvil = "anvil"
    try:
        hardfork = web3.provider.make_request("anvil_nodeInfo", [])["result"]["hardFork"]
    except (KeyError, TypeError, ValueError):
        hardfork = "unknown"
    return (
        f"solc {compiler['version']} ({opt}, EVM {compiler.get('evm_version', 'default')}), {anvil} "
        f"(hardfork {hardfork}), eth-brownie {metadata.version('eth-brownie')}, Python {platform.python_version()}"
    )


def render(report: Report) -> str:
    lines = [
        "# Gas costs",
        "",
        f"Measured on {date.today().isoformat()} by `make gas` (`python scripts/gas_report.py`).",
        f"Toolchain: {_toolchain()}.",
        "",
        "Every figure is one transaction's `gasUsed`: what its sender pays, including the 21000 base cost and calldata.",
        "The flows are real: trees are built with `bmoe_py.crypto`, exact outputs with `bmoe_py.model.int8_ref`,",
        "receipts are EIP-712 signatures, and every dispute runs to its verdict.",
        "",
    ]
    if report.windows:
        at_4096 = dict(report.windows).get(4096)
        lines += [
            "## Window commitments (`ResultLedger.commit`)",
            "",
            "One Merkle root per window of results; the window's size only changes the `tokenCount` argument.",
            "",
            "| tokens in window | gas | gas per token |",
            "|---:|---:|---:|",
        ]
        lines += [f"| {n:,} | {gas:,} | {gas / n:,.1f} |" for n, gas in report.windows]
        if at_4096:
            met = "met" if at_4096 / 4096 < TARGET_GAS_PER_TOKEN else "NOT met"
            lines += [
                "",
                f"Target (< {TARGET_GAS_PER_TOKEN} gas per token at 4,096 tokens, flat total): {met} "
                f"({at_4096 / 4096:.1f} gas/token; totals range {min(g for _, g in report.windows):,} to "
                f"{max(g for _, g in report.windows):,}).",
            ]
        lines.append("")
    if report.ledger:
        lines += ["## Receipts, finalisation, payment (`ResultLedger`)", "", "| operation | gas |", "|---|---:|"]
        lines += [f"| {name} | {gas:,} |" for name, gas in report.ledger]
        lines.append("")
    if report.fraud:
        lines += [
            "## Exact fraud proof (`FraudProof`)",
            "",
            f"A one-layer exact expert with {ROWS} output rows of L int8 weights; the challenger checks one row.",
            "`prove` recomputes that row (L multiply-accumulates) and checks its Merkle proof against the weights root.",
            "",
            "| row length L | challenge | respond | prove, fraud (node slashed) | prove, honest (bond to node) | prove gas per MAC |",
            "|---:|---:|---:|---:|---:|---:|",
        ]
        for g in report.fraud:
            lines.append(
                f"| {g['length']:,} | {g['challenge_fraud']:,} | {g['respond_fraud']:,} | {g['prove_fraud']:,} | "
                f"{g['prove_honest']:,} | {g['prove_fraud'] / g['length']:.1f} |"
            )
        # Rows where `prove` pays the EIP-7623 floor measure calldata, not computation: the slope uses the others.
        regular = [g for g in report.fraud if g["prove_honest"] > g["prove_honest_floor"]]
        floored = [g for g in report.fraud if g["prove_honest"] <= g["prove_honest_floor"]]
        if len(regular) > 1:
            first, last = regular[0], regular[-1]
            span = last["length"] - first["length"]
            slope = (last["prove_honest"] - first["prove_honest"]) / span
            calldata = (last["prove_honest_calldata"] - first["prove_honest_calldata"]) / span
            lines += [
                "",
                f"Marginal cost of one more weight in the row (honest `prove`, L = {first['length']:,} to "
                f"{last['length']:,}): {slope:.1f} gas per multiply-accumulate, of which {calldata:.1f} is calldata "
                "(the weight and the input byte, 16 gas each when non-zero); the rest hashes the row and the input "
                "and computes the integer dot product. The fixed part (Merkle proofs, bookkeeping, and for fraud the "
                "slash and payouts) dominates below about 1,000 weights.",
            ]
        for g in floored:
            lines += [
                "",
                f"At L = {g['length']:,}, `prove` pays the EIP-7623 calldata floor ({g['prove_honest_floor']:,} gas: "
                "21,000 + 10 per calldata token, 4 tokens per non-zero byte) rather than its execution cost: on "
                "chains since Prague, a row of L weights costs at least about 80 gas per multiply-accumulate "
                "(two non-zero bytes), however cheap the arithmetic.",
            ]
        lines.append("")
    if report.committee:
        lines += ["## Committee dispute (`CommitteeDispute`)", "", "| step | gas |", "|---|---:|"]
        lines += [f"| {name} | {gas:,} |" for name, gas in report.committee]
        lines.append("")
    if report.training:
        lines += ["## Training on chain (`ExpertRegistry` trainers, `Screening`)", "", "| operation | gas |", "|---|---:|"]
        lines += [f"| {name} | {gas:,} |" for name, gas in report.training]
        lines.append("")
    if report.pending:
        lines += ["## Not measured in this build", ""] + [f"- {item}" for item in report.pending] + [""]
    lines += [
        "## Reproduce",
        "",
        "```",
        "make gas                        # = python scripts/gas_report.py, on an anvil of its own (port $BMOE_ANVIL_PORT, default 8555)",
        "brownie run gas_report          # the same on brownie's development network",
        "```",
        "",
        "The script rewrites this file. Weights, inputs and account keys are seeded, so every figure repeats to the",
        "gas except the committee's `drawCommittee` and `finalize`: they depend on which validators are drawn, and",
        "the seed is a block hash (hence the range). Figures change with the contracts, the compiler settings in",
        "`brownie-config.yaml` and the hardfork anvil runs.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    # Standalone: launch brownie's development chain on $BMOE_ANVIL_PORT, as tests/conftest.py does for tests.
    from bmoe_py.chain.scripts import connect

    connect("development", ROOT)
    main()
