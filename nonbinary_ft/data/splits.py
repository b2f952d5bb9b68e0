"""Stratified, seeded hold-outs and per-class caps shared by every reader."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from nonbinary_ft.data.dataset import Sample

__all__ = ["stratified_holdout", "cap_per_class", "holdout_count"]


def holdout_count(n: int, fraction: float) -> int:
    """Images of a class of ``n`` held out for ``fraction``: rounded half up, not banker's.

    Rounding half up makes 10 images at 0.25 give 3, whatever the parity.
    """
    return int(np.floor(n * fraction + 0.5))


def stratified_holdout(
    samples: Sequence[Sample], fractions: Sequence[float], seed: int
) -> list[list[Sample]]:
    """Split ``samples`` per class into a remainder and one part per fraction.

    Each class is permuted by its own generator, seeded by ``(seed, label)``, so that adding
    or removing one class leaves the others' splits unchanged. Within every part the samples
    keep their input order (readers pass them sorted), so the result is readable and stable.
    Each class keeps at least one sample in the remainder.

    Args:
        samples: ``(item, label)`` pairs in the reader's natural order.
        fractions: share of each class for each held-out part, e.g. ``(test, val)``.
        seed: the hold-out seed (``data.split_seed``).

    Returns:
        ``[remainder, part_1, ..., part_k]``, each a list of samples.

    Raises:
        ValueError: the fractions are not in (0, 1) or sum to 1 or more.
    """
    if any(not 0 < f < 1 for f in fractions) or sum(fractions) >= 1:
        raise ValueError(
            f"hold-out fractions must each be in (0, 1) and sum to less than 1 but got "
            f"{list(fractions)}"
        )
    by_class: dict[int, list[int]] = {}
    for index, (_, label) in enumerate(samples):
        by_class.setdefault(label, []).append(index)
    assignment = np.zeros(len(samples), dtype=np.int64)  # 0 = remainder, i = part i
    for label, indices in by_class.items():
        n = len(indices)
        counts = [holdout_count(n, f) for f in fractions]
        # Never empty a class's training share: trim the last parts first.
        for i in reversed(range(len(counts))):
            excess = sum(counts) - (n - 1)
            if excess <= 0:
                break
            counts[i] -= min(counts[i], excess)
        # SeedSequence needs non-negative entries; the modulo keeps any int seed usable.
        rng = np.random.default_rng([seed % 2**63, label])
        order = rng.permutation(n)
        start = 0
        for part, count in enumerate(counts, start=1):
            for position in order[start : start + count]:
                assignment[indices[position]] = part
            start += count
    parts: list[list[Sample]] = [[] for _ in range(len(fractions) + 1)]
    for sample, part in zip(samples, assignment, strict=True):
        parts[part].append(sample)
    return parts


def cap_per_class(samples: Sequence[Sample], max_per_class: int | None) -> list[Sample]:
    """Keep the first ``max_per_class`` samples of each class, in order (``None``: all)."""
    if max_per_class is None:
        return list(samples)
    kept: list[Sample] = []
    seen: dict[int, int] = {}
    for sample in samples:
        label = sample[1]
        if seen.get(label, 0) < max_per_class:
            kept.append(sample)
            seen[label] = seen.get(label, 0) + 1
    return kept
