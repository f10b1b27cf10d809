"""choice_reason of estimator="auto" is a sentence a user reads (issue 27): the data, what ran in
words, why (the rule table's measured reason), and the rule it came from, for reference."""

from __future__ import annotations

import sys

import numpy as np

import cchmi
from cchmi.estimators import select
from cchmi.estimators.choice import CCH_WORDS, MI_WORDS, explain_choice

cch_module = sys.modules["cchmi.cch"]  # the name cchmi.cch is the function


def test_cch_reason_says_the_data_what_ran_and_why_in_words():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 3000)
    s = y[:, None] + rng.standard_normal((3000, 8))
    t = s + rng.standard_normal((3000, 8))
    r = cchmi.cch(t, s, y, estimator="auto", confidence=None)
    rule = next(rule for rule in cch_module.AUTO_RULES if rule[1] == "ksg-extrapolated")
    assert r.choice_reason.startswith("3,000 rows of 8+8 dimensions (teacher + student): the kNN terms "
                                      "extrapolated to n -> inf")
    assert f"Why: {rule[2]}" in r.choice_reason
    assert r.choice_reason.endswith(f"[rule '{rule[0]}' of cchmi.cch.AUTO_RULES]")
    assert "(n=" not in r.choice_reason  # the old rule-text form: "<condition> (n=3000, dims 8+8): <why>"


def test_mi_reason_names_the_estimator_for_pairs_and_labels():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((300, 2))
    r = cchmi.mi(x, x[:, :1] + rng.standard_normal((300, 1)))
    assert r.choice_reason.startswith("300 rows of 2+1 dimensions (x + y): the plain kNN estimate (KSG-1). Why: ")
    assert "of cchmi.estimators.select.MI_AUTO_RULES]" in r.choice_reason
    labels = rng.integers(0, 2, 300)
    r = cchmi.mi(x, labels, labels=True)
    rule = next(rule for rule in select.MI_AUTO_RULES if f"[rule '{rule[0]}'" in r.choice_reason)
    assert r.choice_reason.startswith(f"300 rows of 2 dimensions and labels: {MI_WORDS[rule[1]][1]}. Why: {rule[2]}")


def test_every_rule_choice_has_words():
    for _, choice, _ in cch_module.AUTO_RULES:
        assert choice in CCH_WORDS
    for _, choice, _ in select.MI_AUTO_RULES:
        assert choice in MI_WORDS


def test_explain_choice_keeps_the_table_for_reference():
    text = explain_choice(("n < 10", "ksg", "few rows"), "T", 1234, (3, 0), labels=True)
    assert text == ("1,234 rows of 3 dimensions and labels: the plain kNN estimate (Ross's estimator of "
                    "I(X; labels)). Why: few rows [rule 'n < 10' of T]")
