"""The words of estimator="auto": why a rule chose what it did, as a sentence a user can read.

:func:`cchmi.mi` and :func:`cchmi.cch` choose their estimator by a rule table (``MI_AUTO_RULES``,
``AUTO_RULES``: condition, choice, measured reason) and record why in ``choice_reason``:
:func:`explain_choice` writes it as "<the data>: <what ran>. Why: <the measured reason> [rule
'<condition>' of <the table>]", so the table stays the reference and the sentence says it in words.
"""

from __future__ import annotations

MI_WORDS = {
    "ksg": ("the plain kNN estimate (KSG-1)", "the plain kNN estimate (Ross's estimator of I(X; labels))"),
    "ksg-extrapolated": ("the KSG-1 estimate extrapolated to n -> inf (its dimension bias removed)",
                         "Ross's estimate of I(X; labels) extrapolated to n -> inf (its dimension bias removed)"),
    "neural": ("a neural bound (SMILE, a critic trained on half the rows)",
               "a probe's held-out bound (softmax regression trained on half the rows)"),
}
"""What each choice of :func:`cchmi.mi` is, in words: (for I(X; Y), for I(X; labels))."""

CCH_WORDS = {
    "ksg": "the plain kNN terms (KSG-1 of I(T; S), Ross's estimator of I(S; Y))",
    "ksg-extrapolated": "the kNN terms extrapolated to n -> inf (KSG-1 and Ross, their dimension bias removed)",
    "neural": "neural bounds (SMILE for I(T; S), a probe for I(S; Y))",
    "latent": "the kNN terms on learned embeddings",
}
"""What each choice of :func:`cchmi.cch` is, in words."""


def explain_choice(rule: tuple[str, str, str], table: str, n: int, dims: tuple[int, int], *, cch: bool = False,
                   labels: bool = False) -> str:
    """``choice_reason`` for `rule` (condition, choice, why) of the rule table named `table`, on n
    rows of `dims`: (teacher, student) for cch, (x, y) for mi (y 0 with labels)."""
    condition, choice, why = rule
    if cch:
        data, words = f"{dims[0]}+{dims[1]} dimensions (teacher + student)", CCH_WORDS.get(choice, choice)
    elif labels:
        data, words = f"{dims[0]} dimensions and labels", MI_WORDS.get(choice, (choice, choice))[1]
    else:
        data, words = f"{dims[0]}+{dims[1]} dimensions (x + y)", MI_WORDS.get(choice, (choice, choice))[0]
    return f"{n:,} rows of {data}: {words}. Why: {why} [rule '{condition}' of {table}]"
