"""scripts/gas_report.py on small sizes: the flows it measures still run to their verdicts on the current contracts,
and the report shows what it measured (a broken gas report would otherwise only be noticed at `make gas`)."""
import pytest

from bmoe_py.chain.scripts import run_script as run


@pytest.fixture(scope="module")
def report(module_isolation):
    return run(
        "scripts/gas_report.py",
        method_name="measure",
        kwargs={"window_sizes": (1, 4096), "row_lengths": (64, 128), "validators": 6},
    )


def test_commit_gas_does_not_grow_with_the_window(report):
    (small, small_gas), (large, large_gas) = report.windows
    assert (small, large) == (1, 4096)
    assert abs(large_gas - small_gas) < 100


def test_receipt_finalize_and_claim_are_measured(report):
    assert [name.split()[0] for name, _ in report.ledger] == ["postReceipt", "finalize", "claim"]
    assert all(gas > 21_000 for _, gas in report.ledger)


def test_every_committee_step_is_measured(report):
    steps = [name.split()[0] for name, _ in report.committee]
    assert steps == ["challenge", "drawCommittee", "commitVote", "revealVote", "finalize"]


def test_fraud_proof_is_measured_for_each_row_length(report):
    assert [g["length"] for g in report.fraud] == [64, 128]
    assert not report.pending


def test_trainer_and_screening_operations_are_measured(report):
    names = [name.split()[0] for name, _ in report.training]
    assert names == ["ExpertRegistry.setTrainer", "ExpertRegistry.publishExpert", "Screening.flag", "Screening.flag",
                     "Screening.blacklist"]  # fmt: skip
    assert all(gas > 21_000 for _, gas in report.training)


def test_report_renders_every_section(report):
    text = run("scripts/gas_report.py", method_name="render", args=(report,))
    for heading in ("## Window commitments", "## Receipts", "## Exact fraud proof", "## Committee dispute", "## Training on chain",
                    "## Reproduce"):
        assert heading in text
    assert "| 4,096 |" in text
