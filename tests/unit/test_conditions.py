"""Interventions as data (core.conditions) and the logit-change arithmetic
(core.ablation), without a model: position presets, how conditions group,
and what bad input is told."""

from __future__ import annotations

import numpy as np
import pytest

import tealeaves_widgets as tw
from tealeaves_widgets.core.ablation import log_softmax, logit_changes
from tealeaves_widgets.core.conditions import as_conditions, resolve_positions


@pytest.mark.parametrize(
    ("positions", "expected"),
    [
        ("t", [7]),
        ("all", list(range(10))),
        ("before_t", list(range(7))),
        ("t-1", [6]),
        ("t-1..t-2", [5, 6]),
        ("t-3..t-1", [4, 5, 6]),
        ((2, -1), [2, 9]),
    ],
)
def test_positions_resolve_relative_to_the_query(positions, expected):
    assert resolve_positions(positions, 7, 10, "x").tolist() == expected


def test_positions_outside_the_prompt_are_refused():
    with pytest.raises(
        tw.SelectionError, match=r"position\(s\) \[10\] lie outside the prompt of 10"
    ):
        resolve_positions((10,), 7, 10, "x")
    with pytest.raises(tw.SelectionError, match="reaches before the first token"):
        resolve_positions("t-3", 2, 10, "x")
    with pytest.raises(tw.SelectionError, match="reaches before the first token"):
        resolve_positions("before_t", 0, 10, "x")


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: tw.HeadAblation(1, 0, "t+1"), tw.ArgumentError, "positions='t\\+1' is not one of"),
        (lambda: tw.HeadAblation(1, 0, []), tw.ArgumentTypeError, "non-empty list"),
        (lambda: tw.HeadAblation(1, 0, [3, 3]), tw.ArgumentError, "lists a position twice"),
        (lambda: tw.HeadAblation(1, 0, mode="half"), tw.ArgumentError, "mode must be one of"),
        (lambda: tw.HeadAblation("1", 0), tw.ArgumentTypeError, "layer must be an int"),
        (lambda: tw.HeadAblation(1, True), tw.ArgumentTypeError, "head must be an int"),
        (lambda: tw.ValueAblation("every"), tw.ArgumentTypeError, 'layer must be an int or "all"'),
        (lambda: tw.ValueAblation(0, heads=[1, 1]), tw.ArgumentError, "distinct heads"),
        (lambda: tw.RegionKnockout(""), tw.ArgumentTypeError, "region's name"),
        (lambda: tw.RegionKnockout("rules", "delete"), tw.ArgumentError, "values', 'mask'"),
    ],
)
def test_bad_interventions_say_what_was_expected(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_conditions_group_as_written():
    head, values = tw.HeadAblation(2, 1), tw.ValueAblation(0, "t-1")
    assert [c.name for c in as_conditions(head)] == ["head L2H1 @t"]
    two = as_conditions([head, values])
    assert [len(c.interventions) for c in two] == [1, 1]
    one = as_conditions([[head, values]])
    assert len(one) == 1 and one[0].interventions == (head, values)
    assert one[0].name == "head L2H1 @t + values L0 @t-1"
    named = as_conditions({"A": head, "A+B": [head, values]})
    assert [c.name for c in named] == ["A", "A+B"]
    assert as_conditions(tw.Condition("mine", head))[0].interventions == (head,)


def test_contradictory_or_repeated_conditions_are_refused():
    with pytest.raises(tw.ArgumentError, match="both to zero and to its mean"):
        tw.Condition("x", (tw.HeadAblation(1, 0), tw.HeadAblation(1, 0, mode="mean")))
    with pytest.raises(tw.ArgumentError, match="both by values and by mask"):
        tw.Condition("x", (tw.RegionKnockout("r"), tw.RegionKnockout("r", "mask")))
    with pytest.raises(tw.ArgumentError, match="same intervention twice"):
        tw.Condition("x", (tw.HeadAblation(1, 0), tw.HeadAblation(1, 0)))
    with pytest.raises(tw.ArgumentError, match=r"\['head L1H0 @t'\] occur twice"):
        as_conditions([tw.HeadAblation(1, 0), tw.HeadAblation(1, 0)])
    with pytest.raises(tw.ArgumentTypeError, match="must hold tw.HeadAblation"):
        tw.Condition("x", ("head 1",))  # type: ignore[arg-type]
    with pytest.raises(tw.ArgumentTypeError, match="conditions must be an intervention"):
        as_conditions("head 1")
    with pytest.raises(tw.ArgumentError, match="conditions is empty"):
        as_conditions([])


def test_logit_changes_by_hand():
    base = np.array([2.0, 1.0, 0.0, -1.0])
    cond = np.array([[1.0, 1.5, 0.5, -1.0], [3.0, 2.0, 1.0, 0.0]])
    c = logit_changes(base, cond, k=2)
    assert c.base_top == 0
    assert c.predicted.tolist() == [1, 0]
    np.testing.assert_allclose(c.delta_base_top, [-1.0, 1.0])
    # a shift of every logit by +1 changes no probability: centred delta and KL are 0
    np.testing.assert_allclose(c.delta_centered[1], 0.0, atol=1e-12)
    np.testing.assert_allclose(c.kl[1], 0.0, atol=1e-12)
    np.testing.assert_allclose(c.delta_logprob[1], 0.0, atol=1e-12)
    p = np.exp(log_softmax(base))
    q = np.exp(log_softmax(cond[0]))
    assert c.kl[0] == pytest.approx(float((p * np.log(p / q)).sum()))
    assert c.rose[0].tolist() == [1, 2] and c.fell[0].tolist() == [0, 3]
    assert c.token_ids == {0, 1, 2, 3}


def test_the_gate_taxonomy_reads_retention_and_removal_as_the_paper():
    from tealeaves_widgets.core.head_gates import classify

    retention = np.array([[0.99, 0.2, 0.98, 0.3]])
    removal = np.array([[0.9, 0.1, 0.05, 0.7]])
    # open under removal: needed; shut under retention: harmful; open then shut: either
    assert classify(retention, removal).tolist() == [
        ["facilitating", "interfering", "irrelevant", "facilitating"]
    ]
    assert classify(retention, removal, threshold=0.95).tolist() == [
        ["irrelevant", "interfering", "irrelevant", "interfering"]
    ]
