"""The sequential seeding rule: boundaries against their definition, verdicts on sequences worked by hand.

Design of the hand cases: 3 → 20 seeds, looks at 3, 5, 8, 13, 20, margin 0.01, α = 0.05, Pocock-type
spending. Its boundaries for the studentised mean (pinned below) are, at α/2 (sign) and α (equivalence):

    look       1      2      3      4      5
    b(α/2)   9.258  4.930  3.470  2.834  2.569
    b(α)     6.489  3.951  2.919  2.415  2.182

Each sequence is chosen so that every bound clears its threshold (0, ±margin) by far more than the
boundaries' Monte Carlo error, so the verdicts follow from the table by hand.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from lossbench import sequential as sq
from lossbench.errors import UserError

DESIGN = sq.Design(start=3, max_seeds=20, margin=0.01, alpha=0.05)
PLAN = (3, 5, 8, 13, 20)


def looks_upto(n: int) -> tuple[int, ...]:
    return tuple(k for k in PLAN if k <= n)


def verdicts_at_each_look(d: list[float], design: sq.Design = DESIGN) -> list[tuple[str, int, int]]:
    """(verdict, deciding n, seeds to add) after each planned look the sequence reaches."""
    out = []
    for n in PLAN:
        if n > len(d):
            break
        dec = sq.decide(d[:n], looks_upto(n), design)
        out.append((dec.verdict, dec.n, dec.add))
    return out


# -- the design -------------------------------------------------------------------------------------


def test_plan_grows_by_the_factor_and_ends_at_the_maximum():
    assert DESIGN.plan() == PLAN
    assert sq.Design(5, 20, 0.01).plan() == (5, 8, 13, 20)
    assert sq.Design(2, 20, 0.01).plan() == (2, 4, 7, 12, 20)
    assert sq.Design(3, 3, 0.01).plan() == (3,)
    assert sq.Design(3, 20, 0.01, growth=1.01).plan() == tuple(range(3, 21))  # at least one seed per round
    assert DESIGN.next_look(3) == 5 and DESIGN.next_look(9) == 13 and DESIGN.next_look(20) == 20


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"start": 5, "max_seeds": 4, "margin": 0.01}, "--max-seeds 4 is below the 5 starting seeds"),
        ({"start": 3, "max_seeds": 20, "margin": 0.0}, "margin must be a positive number"),
        ({"start": 3, "max_seeds": 20, "margin": -0.01}, "margin must be a positive number"),
        ({"start": 3, "max_seeds": 20, "margin": float("nan")}, "margin must be a positive number"),
        ({"start": 1, "max_seeds": 20, "margin": 0.01}, "at least 2 starting seeds"),
        ({"start": 3, "max_seeds": 20, "margin": 0.01, "alpha": 1.0}, "--alpha must lie strictly between 0 and 1"),
        ({"start": 3, "max_seeds": 20, "margin": 0.01, "cells": 0}, "at least one cell"),
        ({"start": 3, "max_seeds": 20, "margin": 0.01, "spending": "linear"}, "Unknown spending function"),
        ({"start": 3, "max_seeds": 20, "margin": 0.01, "question": "superiority"}, "Unknown question"),
        ({"start": 3, "max_seeds": 20, "margin": 0.01, "growth": 1.0}, "growth must exceed 1"),
    ],
)
def test_bad_designs_are_refused_with_the_fix(kwargs, message):
    with pytest.raises(UserError, match=message) as info:
        sq.Design(**kwargs)
    assert info.value.exit_code == 2


def test_max_seeds_error_says_what_to_give():
    with pytest.raises(UserError) as info:
        sq.Design(start=5, max_seeds=4, margin=0.01)
    assert "--max-seeds 5 or more" in info.value.hint


# -- the boundaries ---------------------------------------------------------------------------------


def test_spending_functions_by_hand():
    assert sq.spent(0.15, 0.05, "pocock") == pytest.approx(0.05 * math.log(1 + (math.e - 1) * 0.15))
    assert sq.spent(1.0, 0.05, "pocock") == pytest.approx(0.05)
    assert sq.spent(1.0, 0.05, "obrien-fleming") == pytest.approx(0.05)
    assert sq.spent(0.25, 0.05, "obrien-fleming") == pytest.approx(2 * stats.norm.sf(stats.norm.isf(0.025) / 0.5))
    assert sq.spent(0.0, 0.05, "obrien-fleming") == 0.0


def test_one_look_is_the_fixed_t_test():
    b = sq.boundaries((10,), 10, (0.025, 0.05), "pocock")
    np.testing.assert_allclose(b[:, 0], [stats.t.isf(0.025, 9), stats.t.isf(0.05, 9)], rtol=1e-12)


def test_first_look_is_the_exact_student_t_quantile_of_what_it_spends():
    b = sq.boundaries(PLAN, 20, (0.025, 0.05), "pocock")
    first = [stats.t.isf(sq.spent(3 / 20, g, "pocock"), 2) for g in (0.025, 0.05)]
    np.testing.assert_allclose(b[:, 0], first, rtol=1e-12)


def test_boundaries_pinned():
    b = sq.boundaries(PLAN, 20, (0.025, 0.05), "pocock")
    np.testing.assert_allclose(b, [[9.258, 4.930, 3.470, 2.834, 2.569], [6.489, 3.951, 2.919, 2.415, 2.182]], atol=2e-3)


@pytest.mark.parametrize("spending", sq.SPENDING)
def test_boundaries_spend_what_the_spending_function_says_on_fresh_paths(spending):
    """On normal paths independent of the calibration, each look's first crossings match f's increments."""
    level, reps = 0.025, 200_000
    b = sq.boundaries(PLAN, 20, (level,), spending)[0]
    x = np.random.default_rng(7).standard_normal((reps, 20))
    alive = np.ones(reps, dtype=bool)
    before = 0.0
    for k, n in enumerate(PLAN):
        t = stats.ttest_1samp(x[:, :n], 0.0, axis=1).statistic
        crossed = alive & (t > b[k])
        now = sq.spent(n / 20, level, spending)
        share = now - before
        before = now
        assert crossed.mean() == pytest.approx(share, abs=4 * math.sqrt(share / reps) + 1e-6)
        alive &= ~crossed
    assert 1 - alive.mean() == pytest.approx(level, abs=4 * math.sqrt(level / reps))


def test_false_verdicts_stay_at_alpha_under_repeated_looks():
    """Δ = 0, normal seeds: better or worse at some look at most α of the time (checked to ±4 sd)."""
    reps = 100_000
    d = np.random.default_rng(11).normal(0.0, 0.05, (reps, 20))
    verdict, _ = sq.decide_many(d, PLAN, DESIGN)
    rate = float(np.isin(verdict, [sq.BETTER, sq.WORSE]).mean())
    assert rate == pytest.approx(0.05, abs=4 * math.sqrt(0.05 * 0.95 / reps))


# -- verdicts on hand-made sequences ---------------------------------------------------------------


def test_clear_difference_is_better_at_the_first_look():
    # mean 0.06, s = 0.01: L(α/2) = 0.06 − 9.258·0.01/√3 = 0.0065 > 0
    assert verdicts_at_each_look([0.05, 0.06, 0.07]) == [("better", 3, 0)]
    dec = sq.decide([0.05, 0.06, 0.07], (3,), DESIGN)
    assert dec.look == 1 and dec.estimate == pytest.approx(0.06)
    half = 9.25839698 * 0.01 / math.sqrt(3)
    assert (dec.low, dec.high) == pytest.approx((0.06 - half, 0.06 + half), abs=1e-5)


def test_equivalent_at_the_second_look():
    # look 1: s = 0.004, U(α) = 6.489·0.004/√3 = 0.0150 ≥ 0.01 → open, 2 seeds to add
    # look 2: s = √(4e-5/4) = 0.00316, U(α) = 3.951·0.00316/√5 = 0.0056 < 0.01 → equivalent
    d = [0.004, -0.004, 0.0, 0.002, -0.002]
    assert verdicts_at_each_look(d) == [("open", 3, 2), ("equivalent", 5, 0)]


def test_worse_at_the_third_look():
    # look 1: mean −0.02, s = 0.01:    U(α/2) = −0.02 + 9.258·0.00577 = 0.0334 → open
    # look 2: mean −0.02, s = 0.01275: U(α/2) = −0.02 + 4.930·0.0057  = 0.0081 → open
    # look 3: mean −0.02, s = 0.01:    U(α/2) = −0.02 + 3.470·0.00354 = −0.0077 < 0 → worse
    # (never equivalent: L(α) < −0.01 throughout)
    d = [-0.01, -0.03, -0.02, -0.035, -0.005, -0.02, -0.025, -0.015]
    assert verdicts_at_each_look(d) == [("open", 3, 2), ("open", 5, 3), ("worse", 8, 0)]


def test_noise_above_the_margin_is_inconclusive_at_the_budget():
    # alternating 0.03, −0.02: mean ≈ 0.005, s ≈ 0.026; at 20 seeds L(α/2) < 0 < U(α/2) and U(α) > 0.01
    d = [0.03 if i % 2 == 0 else -0.02 for i in range(20)]
    assert verdicts_at_each_look(d) == [
        ("open", 3, 2),
        ("open", 5, 3),
        ("open", 8, 5),
        ("open", 13, 7),
        ("inconclusive", 20, 0),
    ]


def test_within_the_margin_is_equivalent_even_when_shown_above_zero():
    # mean 0.005, s = 1e-4: L(α/2) = 0.0045 > 0 (better) and U(α) = 0.0054 < 0.01 (equivalent) → equivalent
    assert verdicts_at_each_look([0.005, 0.0051, 0.0049]) == [("equivalent", 3, 0)]


def test_no_spread_decides_on_the_point():
    assert sq.decide([0.02, 0.02, 0.02], (3,), DESIGN).verdict == sq.BETTER
    assert sq.decide([-0.02, -0.02, -0.02], (3,), DESIGN).verdict == sq.WORSE
    assert sq.decide([0.0, 0.0, 0.0], (3,), DESIGN).verdict == sq.EQUIVALENT


def test_no_spread_does_not_decide_where_nothing_is_spent():
    # O'Brien–Fleming at 2 of 1000 seeds spends nothing (the boundary is infinite): no verdict, even on a point
    design = sq.Design(2, 1000, 0.01, spending="obrien-fleming")
    assert sq.boundaries((2,), 1000, (0.025, 0.05), "obrien-fleming")[0, 0] == np.inf
    assert sq.decide([0.02, 0.02], (2,), design).verdict == sq.OPEN


def test_a_decided_cell_keeps_its_verdict_whatever_follows():
    d = [0.05, 0.06, 0.07, -0.5, -0.5, -0.5, -0.5, -0.5]
    dec = sq.decide(d, (3, 5, 8), DESIGN)
    assert (dec.verdict, dec.n, dec.look, dec.add) == ("better", 3, 1, 0)


def test_unplanned_looks_are_allowed_and_add_seeds_up_to_the_next_planned_look():
    # a round that lost a trial: looks at 3 and 4 seeds. At 4: mean 0.003, s = 0.00683, sem = 0.00342,
    # far from any bound (b(α) ≈ 4, so U(α) ≈ 0.017 > 0.01 and L(α/2) < 0); the next planned look is 5
    dec = sq.decide([0.004, -0.004, 0.0, 0.012], (3, 4), DESIGN)
    assert (dec.verdict, dec.n, dec.add) == ("open", 4, 1)


def test_family_splits_alpha_over_cells():
    # decided alone; with 20 cells each gets α/20 and the first look's bound is far wider
    assert sq.decide([0.05, 0.06, 0.07], (3,), DESIGN).verdict == sq.BETTER
    family = sq.Design(3, 20, 0.01, alpha=0.05, cells=20)
    assert family.cell_alpha == pytest.approx(0.0025)
    assert sq.decide([0.05, 0.06, 0.07], (3,), family).verdict == sq.OPEN


def test_non_inferiority_question():
    gate = sq.Design(3, 20, 0.01, question="non-inferiority")
    # L(α) = 0.01 − 6.489·0.002/√3 = 0.0025 > −0.01
    assert sq.decide([0.01, 0.012, 0.008], (3,), gate).verdict == sq.PASS
    # U(α) = −0.05 + 6.489·0.01/√3 = −0.0125 < −0.01
    assert sq.decide([-0.05, -0.06, -0.04], (3,), gate).verdict == sq.REGRESSION
    assert sq.decide([0.0, -0.02, 0.01], (3,), gate).verdict == sq.OPEN


def test_decide_many_matches_decide_row_by_row():
    d = np.random.default_rng(3).normal(0.01, 0.02, (40, 13))
    looks = (3, 5, 8, 13)
    verdict, stop = sq.decide_many(d, looks, DESIGN)
    for row, v, k in zip(d, verdict, stop, strict=True):
        dec = sq.decide(row, looks, DESIGN)
        assert (dec.verdict, dec.look) == (v, k + 1)


@pytest.mark.parametrize(
    ("d", "looks"),
    [
        ([0.1, 0.2, 0.3], (2,)),  # the last look is not the number of differences
        ([0.1, 0.2, 0.3], (3, 3)),  # not increasing
        ([0.1, 0.2, 0.3], (1, 3)),  # a look at one seed
        ([0.1, float("nan"), 0.3], (3,)),
        ([0.1] * 21, (3, 21)),  # beyond max_seeds
    ],
)
def test_inconsistent_histories_are_refused(d, looks):
    with pytest.raises(ValueError):
        sq.decide(d, looks, DESIGN)
