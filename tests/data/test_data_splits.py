"""Stratified hold-outs and per-class caps shared by every reader."""

from __future__ import annotations

from collections import Counter

import pytest

from nonbinary_ft.data.splits import cap_per_class, holdout_count, stratified_holdout


def _samples(counts: dict[int, int]) -> list[tuple[str, int]]:
    return [(f"{label}_{i}", label) for label, n in counts.items() for i in range(n)]


def test_holdout_counts_round_half_up() -> None:
    assert holdout_count(10, 0.25) == 3
    assert holdout_count(10, 0.2) == 2
    assert holdout_count(2, 0.2) == 0


def test_each_class_keeps_a_training_sample() -> None:
    rest, val, test = stratified_holdout(_samples({0: 2, 1: 3}), [0.45, 0.45], seed=0)
    assert Counter(y for _, y in rest) == {0: 1, 1: 1}
    assert len(val) + len(test) == 3


def test_one_class_does_not_shift_another() -> None:
    one = stratified_holdout(_samples({0: 20, 1: 20}), [0.25], seed=3)[1]
    two = stratified_holdout(_samples({0: 20, 1: 20, 2: 7}), [0.25], seed=3)[1]
    assert [s for s in one if s[1] == 0] == [s for s in two if s[1] == 0]


def test_parts_keep_input_order() -> None:
    samples = _samples({0: 30})
    rest, held = stratified_holdout(samples, [0.3], seed=1)
    assert rest == sorted(rest, key=samples.index) and held == sorted(held, key=samples.index)


def test_bad_fractions_are_rejected() -> None:
    with pytest.raises(ValueError, match="sum to less than 1"):
        stratified_holdout(_samples({0: 4}), [0.5, 0.5], seed=0)


def test_cap_keeps_first_n_per_class_in_order() -> None:
    samples = [("a", 0), ("b", 1), ("c", 0), ("d", 0), ("e", 1)]
    assert cap_per_class(samples, 2) == [("a", 0), ("b", 1), ("c", 0), ("e", 1)]
    assert cap_per_class(samples, None) == samples
