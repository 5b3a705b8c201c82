"""`bmoe model publish --float` and `bmoe train` as a user runs them: real processes against a local network."""
from __future__ import annotations

import json
import subprocess

import pytest

from bmoe_py.experiments.localnet import PUBLISHER_KEY, PY, ROOT

EXPERTS = 4
MODEL_OPTIONS = [
    "--float", "--dataset", "mnist1d", "--samples", "2000", "--epochs", "1", "--experts", str(EXPERTS),
    "--patch-size", "8", "--patch-stride", "4", "--challenge-window", "600",
]  # fmt: skip


def _bmoe(net, *args: object, key: str = PUBLISHER_KEY) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PY, "-m", "bmoe_py", *map(str, args)], cwd=ROOT, env={**net.env, "BMOE_PRIVATE_KEY": key},
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip


@pytest.fixture(scope="module")
def published(training_network):
    return training_network.publish_model(MODEL_OPTIONS)


@pytest.fixture(scope="module")
def trained(training_network, published):
    net = training_network
    model_id = published["model_id"]
    nodes = [net.start_edge(f"cli-trainer-{i}", model_id, list(range(EXPERTS))) for i in range(2)]
    done = _bmoe(net, "train", "--model", model_id, "--dataset", "mnist1d", "--rounds", 2, "--steps", 3,
                 "--eval-samples", 500, "--json")  # fmt: skip
    return net, model_id, nodes, done


def test_publish_float_registers_a_float_model_with_its_tolerance(published):
    assert (published["mode"], published["tolerance"]) == ("Float", 1000)
    assert [e["version"] for e in published["experts"]] == [1] * EXPERTS


def test_train_runs_every_round_and_registers_a_new_version_of_every_expert(trained):
    net, model_id, _, done = trained
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout[done.stdout.index("{\n"):])
    assert [r["versions"] for r in report["rounds"]] == [{str(e): 1 + r for e in range(EXPERTS)} for r in (1, 2)]
    chain = net.connect()
    assert [chain.call(chain.registry.functions.latestVersion(model_id, e)) for e in range(EXPERTS)] == [3] * EXPERTS


def test_train_spreads_the_experts_over_the_hosts(trained):
    _, _, nodes, done = trained
    report = json.loads(done.stdout[done.stdout.index("{\n"):])
    assert sorted(set(report["trainers"].values())) == sorted(n.address for n in nodes)
    assert "round 2: loss" in done.stdout


def test_train_refuses_a_key_that_does_not_own_the_model(trained):
    net, model_id, _, _ = trained
    done = _bmoe(net, "train", "--model", model_id, "--dataset", "mnist1d", key=net.new_key())
    assert done.returncode == 1
    assert f"model {model_id} belongs to" in done.stderr and "Traceback" not in done.stderr


def test_train_names_the_experts_no_eligible_host_serves(trained):
    net, model_id, _, _ = trained
    stranger = "0x000000000000000000000000000000000000bEEF"
    done = _bmoe(net, "train", "--model", model_id, "--dataset", "mnist1d", "--trainer", stranger)
    assert done.returncode == 1
    assert f"model {model_id}: no eligible active host for experts [0, 1, 2, 3]" in done.stderr
    assert "Traceback" not in done.stderr


def test_train_refuses_an_unknown_model(training_network):
    done = _bmoe(training_network, "train", "--model", 999, "--dataset", "mnist1d")
    assert done.returncode == 1 and "has no model 999" in done.stderr
