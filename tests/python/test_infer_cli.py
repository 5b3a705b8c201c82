"""`bmoe infer` explains itself and refuses bad options before it touches the chain, the network or torch."""
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def bmoe(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bmoe_py.cli.main", *args],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "BMOE_RPC_URL": "http://127.0.0.1:9"},
    )  # fmt: skip


def test_help_names_every_option_and_policy():
    result = bmoe("infer", "--help")
    assert result.returncode == 0
    for text in ("--model", "--dataset", "--samples", "--batch-tokens", "--policy", "--price", "--escrow", "--task",
                 "--timeout", "--json", "--rpc", "--ipfs", "redundant:R", "optimistic:P"):  # fmt: skip
        assert text in result.stdout


def test_infer_is_listed_among_the_commands():
    assert "infer" in bmoe("--help").stdout


@pytest.mark.parametrize(
    "policy, message",
    [
        ("majority", "unknown verification policy 'majority': expected none, redundant:R"),
        ("redundant:1", "R in redundant:R must be a whole number from 2 to 15"),
        ("optimistic:2", r"P in optimistic:P must be a fraction in (0, 1]"),
    ],
)
def test_a_bad_policy_is_a_usage_error_that_says_what_is_allowed(policy, message):
    result = bmoe("infer", "--model", "1", "--dataset", "digits", "--policy", policy)
    assert result.returncode == 2
    assert f"bmoe infer: error: argument --policy: " in result.stderr and message in result.stderr


def test_a_missing_key_is_reported_before_anything_else():
    result = bmoe("infer", "--model", "1", "--dataset", "digits")
    assert result.returncode == 1
    assert result.stderr.strip() == "bmoe infer: error: no private key: set BMOE_PRIVATE_KEY to a private key (0x + 64 hex digits) or pass --keystore FILE"


def test_an_unreachable_chain_is_reported_in_one_line():
    result = subprocess.run(
        [sys.executable, "-m", "bmoe_py.cli.main", "infer", "--model", "1", "--dataset", "digits"],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "BMOE_RPC_URL": "http://127.0.0.1:9",
             "BMOE_PRIVATE_KEY": "0x" + "11" * 32},
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.startswith("bmoe infer: error: no Ethereum node answers at http://127.0.0.1:9")
    assert "Traceback" not in result.stderr
