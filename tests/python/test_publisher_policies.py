"""Verification policies: parsing the `--policy` string and the per-token majority vote of `redundant:r`."""
import numpy as np
import pytest

from bmoe_py.publisher.policies import MAX_REPLICAS, Policy, PolicyError, majority_vote


# ------------------------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    "text, policy",
    [
        ("none", Policy("none")),
        ("redundant:3", Policy("redundant", replicas=3)),
        (" Redundant:2 ", Policy("redundant", replicas=2)),
        ("optimistic:0.1", Policy("optimistic", sample_rate=0.1)),
        ("optimistic:25%", Policy("optimistic", sample_rate=0.25)),
        ("optimistic:1", Policy("optimistic", sample_rate=1.0)),
    ],
)
def test_valid_policies_parse(text, policy):
    assert Policy.parse(text) == policy


@pytest.mark.parametrize("text", ["none", "redundant:3", "optimistic:0.1"])
def test_a_policy_prints_as_it_parses(text):
    assert str(Policy.parse(text)) == text


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "unknown verification policy"),
        ("majority", "unknown verification policy 'majority': expected none, redundant:R"),
        ("redundant", "unknown verification policy"),
        ("redundant:", "unknown verification policy"),
        ("redundant:1", "R in redundant:R must be a whole number from 2"),
        ("redundant:2.5", "R in redundant:R must be a whole number"),
        (f"redundant:{MAX_REPLICAS + 1}", "R in redundant:R must be a whole number"),
        ("optimistic:0", r"P in optimistic:P must be a fraction in \(0, 1\]"),
        ("optimistic:1.5", "P in optimistic:P must be a fraction"),
        ("optimistic:nan", "P in optimistic:P must be a fraction"),
        ("optimistic:lots", "P in optimistic:P must be a fraction"),
    ],
)
def test_bad_policies_are_refused_with_the_syntax(text, message):
    with pytest.raises(PolicyError, match=message):
        Policy.parse(text)


# ------------------------------------------------------------------------------------------- voting


def answers(n=6, dim=4, hosts=3, seed=0):
    honest = np.random.default_rng(seed).integers(-128, 128, (n, dim), dtype=np.int8)
    return [honest.copy() for _ in range(hosts)]


def test_unanimous_answers_are_accepted_and_nobody_is_outvoted():
    outputs = answers()
    vote = majority_vote(outputs)
    assert np.array_equal(vote.accepted, outputs[0]) and vote.decided.all() and vote.unanimous
    assert vote.outvoted == [[], [], []]


def test_a_single_cheater_is_outvoted_on_exactly_the_tokens_it_changed():
    outputs = answers()
    honest = outputs[0].copy()
    outputs[1][[1, 4]] = -outputs[1][[1, 4]] - 1  # sign flip on two tokens (never equal to the original)
    vote = majority_vote(outputs)
    assert np.array_equal(vote.accepted, honest) and vote.decided.all()
    assert vote.outvoted == [[], [1, 4], []]


def test_one_changed_byte_is_a_different_answer():
    outputs = answers()
    outputs[2][3, 3] ^= 1
    assert majority_vote(outputs).outvoted == [[], [], [3]]


def test_the_majority_wins_even_when_the_first_host_is_the_cheater():
    outputs = answers()
    honest = outputs[1].copy()
    outputs[0] = outputs[0] // 2 + 1
    vote = majority_vote(outputs)
    assert np.array_equal(vote.accepted, honest) and vote.outvoted[0] == list(range(6))


def test_two_hosts_that_disagree_decide_nothing_and_outvote_nobody():
    outputs = answers(hosts=2)
    outputs[1][0] += 1
    vote = majority_vote(outputs)
    assert vote.decided.tolist() == [False, True, True, True, True, True]
    assert vote.outvoted == [[], []] and not vote.unanimous


def test_three_different_answers_to_a_token_leave_it_undecided():
    outputs = answers()
    outputs[1][2] += 1
    outputs[2][2] += 2
    vote = majority_vote(outputs)
    assert not vote.decided[2] and vote.decided.sum() == 5


def test_a_majority_of_cheaters_who_agree_wins_the_vote():
    """The vote trusts a majority: redundant:r is safe only while most of the r hosts are honest."""
    outputs = answers()
    forged = outputs[0] + 1
    outputs[1], outputs[2] = forged.copy(), forged.copy()
    vote = majority_vote(outputs)
    assert np.array_equal(vote.accepted, forged) and vote.outvoted[0] == list(range(6))


def test_answers_of_different_shapes_are_refused():
    with pytest.raises(ValueError, match="one shape and dtype"):
        majority_vote([np.zeros((2, 3), np.int8), np.zeros((2, 4), np.int8)])
