"""bmoe_py.chain.deploy.DeployParams: the suite's constructor parameters, their defaults (docs/protocol.md section 1)
and their overrides from the environment."""
import pytest

from bmoe_py.chain.deploy import DAY, ETHER, HOUR, DeployParams


def test_defaults_are_the_protocol_defaults():
    params = DeployParams()
    assert params.unbonding_delay == 7 * DAY
    assert (params.response_window, params.proof_window) == (DAY, DAY)
    assert (params.draw_window, params.commit_window, params.reveal_window) == (HOUR, DAY, DAY)
    assert params.fraud_bond == params.committee_bond == ETHER // 10
    assert params.committee_size == 5
    assert params.non_reveal_penalty == ETHER // 100


def test_longest_dispute_is_the_longer_dispute_module():
    assert DeployParams().longest_dispute == 2 * DAY + HOUR
    assert DeployParams(response_window=3 * DAY).longest_dispute == 4 * DAY


def test_no_environment_gives_the_defaults():
    assert DeployParams.from_env({}) == DeployParams()


@pytest.mark.parametrize(
    "raw, seconds", [("90", 90), ("90s", 90), ("30m", 1800), ("2h", 7200), ("10d", 10 * DAY), (" 3 h ", 3 * HOUR)]
)
def test_durations_accept_units(raw, seconds):
    # a long unbonding delay keeps every draw window valid
    assert DeployParams.from_env({"BMOE_DRAW_WINDOW": raw, "BMOE_UNBONDING_DELAY": "365d"}).draw_window == seconds


@pytest.mark.parametrize(
    "raw, wei",
    [("1000", 1000), ("0.1ether", 10**17), ("0.05 ether", 5 * 10**16), ("5gwei", 5 * 10**9), ("2 ETHER", 2 * 10**18)],
)
def test_amounts_accept_units_exactly(raw, wei):
    assert DeployParams.from_env({"BMOE_FRAUD_BOND": raw}).fraud_bond == wei


def test_committee_size_is_a_count():
    assert DeployParams.from_env({"BMOE_COMMITTEE_SIZE": "9"}).committee_size == 9


@pytest.mark.parametrize(
    "name, raw",
    [
        ("BMOE_FRAUD_BOND", "ten"),
        ("BMOE_FRAUD_BOND", "0.0000000000000000001ether"),
        ("BMOE_PROOF_WINDOW", "1w"),
        ("BMOE_COMMITTEE_SIZE", "5.5"),
    ],
)
def test_malformed_values_name_the_variable(name, raw):
    with pytest.raises(ValueError, match=name):
        DeployParams.from_env({name: raw})


def test_zero_is_rejected():
    with pytest.raises(ValueError, match="committee_size must be positive"):
        DeployParams.from_env({"BMOE_COMMITTEE_SIZE": "0"})


def test_unbonding_must_outlast_the_longest_dispute():
    with pytest.raises(ValueError, match=r"unbonding_delay \(176400s\) must exceed the longest dispute"):
        DeployParams.from_env({"BMOE_UNBONDING_DELAY": "176400"})


def test_short_windows_for_a_demo_chain_are_valid():
    params = DeployParams.from_env(
        {
            "BMOE_UNBONDING_DELAY": "2h",
            "BMOE_RESPONSE_WINDOW": "5m",
            "BMOE_PROOF_WINDOW": "5m",
            "BMOE_DRAW_WINDOW": "1m",
            "BMOE_COMMIT_WINDOW": "5m",
            "BMOE_REVEAL_WINDOW": "5m",
        }
    )
    assert params.longest_dispute == 11 * 60


def test_to_dict_records_the_derived_longest_dispute():
    assert DeployParams().to_dict()["longest_dispute"] == DeployParams().longest_dispute
