"""Forget-set selection: a pure function of (labels, seed, option), with clear errors for options that cannot work."""

from __future__ import annotations

import numpy as np
import pytest

from lossbench.errors import SpecError, UserError
from lossbench.unlearning.forget import ForgetOption, forget_key, parse_forget, select_forget

LABELS = np.repeat(np.arange(4), 25)  # 100 rows, classes 0..3


def test_fraction_draws_rounded_count_of_distinct_sorted_rows() -> None:
    rows = select_forget(LABELS, seed=3, option="fraction=0.1")
    assert len(rows) == 10
    assert np.array_equal(rows, np.unique(rows))
    assert rows.min() >= 0 and rows.max() < len(LABELS)
    assert len(select_forget(LABELS, 3, {"fraction": 0.5})) == 50


def test_fraction_is_a_function_of_the_seed() -> None:
    a = select_forget(LABELS, 0, "fraction=0.1")
    assert np.array_equal(a, select_forget(LABELS, 0, ForgetOption(fraction=0.1)))
    assert not np.array_equal(a, select_forget(LABELS, 1, "fraction=0.1"))
    assert forget_key(LABELS, 0, "fraction=0.1") == forget_key(LABELS, 0, "fraction=0.1")
    assert forget_key(LABELS, 0, "fraction=0.1") != forget_key(LABELS, 1, "fraction=0.1")


def test_class_takes_exactly_its_rows() -> None:
    rows = select_forget(LABELS, 0, "class=2")
    assert np.array_equal(rows, np.arange(50, 75))
    assert np.array_equal(rows, select_forget(LABELS, 9, {"class": 2}))  # the seed does not matter


@pytest.mark.parametrize("fraction", [0, 0.0, 1, 1.0, -0.1, 1.5])
def test_fraction_outside_zero_one_is_refused(fraction: float) -> None:
    with pytest.raises(SpecError, match="strictly between 0 and 1") as err:
        select_forget(LABELS, 0, {"fraction": fraction})
    assert err.value.hint


def test_fraction_that_selects_no_row_is_refused() -> None:
    with pytest.raises(UserError, match="selects 0 rows"):
        select_forget(np.arange(10), 0, "fraction=0.01")
    with pytest.raises(UserError, match="selects 10 rows"):
        select_forget(np.arange(10), 0, "fraction=0.99")


def test_missing_class_names_the_classes_present() -> None:
    with pytest.raises(UserError, match="Class 7 has no row") as err:
        select_forget(LABELS, 0, "class=7")
    assert "0, 1, 2, 3" in (err.value.hint or "")


def test_forgetting_the_only_class_is_refused() -> None:
    with pytest.raises(UserError, match="single class"):
        select_forget(np.zeros(5, dtype=int), 0, "class=0")


@pytest.mark.parametrize("bad", ["fraction", "fraction=abc", "size=3", {"fraction": 0.1, "class": 1}, {}, 3,
                                 "class=-1", "class=1.5"])
def test_unreadable_options_are_spec_errors(bad: object) -> None:
    with pytest.raises(SpecError):
        select_forget(LABELS, 0, bad)  # type: ignore[arg-type]


def test_option_needs_exactly_one_kind() -> None:
    with pytest.raises(SpecError, match="either a fraction"):
        ForgetOption()
    with pytest.raises(SpecError, match="either a fraction"):
        ForgetOption(fraction=0.1, cls=1)
    with pytest.raises(SpecError):
        ForgetOption(fraction=True)  # type: ignore[arg-type]


def test_parse_and_label_round_trip() -> None:
    assert parse_forget("fraction=0.1") == ForgetOption(fraction=0.1)
    assert parse_forget(" class = 3") == ForgetOption(cls=3)
    assert parse_forget("fraction=0.5").label == "fraction=0.5"
    assert parse_forget({"class": 3}).label == "class=3"
