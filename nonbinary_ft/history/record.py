"""A finished sweep as the history records it: the tag scheme, and reading it back.

Every finished sweep whose stage 1 produced evidence leaves a record (format
:data:`HISTORY_FORMAT`), as tags on its MLflow parent run and as a file of the user's store
(:mod:`.store`):

============================  ==================================================================
tag                           value
============================  ==================================================================
``nbft.history.format``       ``1``
``nbft.history.evidence``     JSON ``{"fixed_feature_accuracy": a, "fisher": f, "gap": g}``
``nbft.history.regime``       the regime stage 1 decided (``fits_well``, ...)
``nbft.history.model``        the model's name
``nbft.history.ranked``       JSON ``[[settings, val_accuracy], ...]``: the completed search
                              trials' settings, best first (as many as fit in a tag)
============================  ==================================================================

A record is read back as a :class:`~nonbinary_ft.search.warm_start.PastSweep`; what it holds
is checked before use (:func:`~nonbinary_ft.search.warm_start.checked_sweep`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from nonbinary_ft.results import ResultsError
from nonbinary_ft.results.schema import Missing, SweepResults
from nonbinary_ft.search.warm_start import EvidenceVector, PastSweep
from nonbinary_ft.vocabulary import TrialStatus

__all__ = [
    "HISTORY_FORMAT",
    "TAG_FORMAT",
    "history_tags",
    "past_sweep_from_tags",
]

HISTORY_FORMAT = "1"
TAG_FORMAT = "nbft.history.format"
TAG_EVIDENCE = "nbft.history.evidence"
TAG_REGIME = "nbft.history.regime"
TAG_MODEL = "nbft.history.model"
TAG_RANKED = "nbft.history.ranked"
MAX_TAG_CHARS = 5000
"""MLflow keeps tag values up to 8000 characters (5000 on older stores): stay under both."""


def _ranked_json(ranked: Sequence[tuple[dict[str, Any], float]]) -> str:
    """The longest best-first prefix whose JSON fits in a tag."""
    rows: list[list[Any]] = []
    text = "[]"
    for settings, value in ranked:
        candidate = json.dumps([*rows, [settings, round(value, 6)]], sort_keys=True)
        if len(candidate) > MAX_TAG_CHARS:
            break
        rows.append([settings, round(value, 6)])
        text = candidate
    return text


def history_tags(results: SweepResults, model: str) -> dict[str, str]:
    """The history tags of a finished sweep; empty when it has no evidence or no completed
    search trial (nothing a later sweep could start from)."""
    if isinstance(results.analysis, Missing) or isinstance(results.trials, Missing):
        return {}
    document = results.analysis.to_document()
    evidence = EvidenceVector.from_document(document)
    completed = [
        (trial.settings, value)
        for trial in results.trials
        if trial.status == TrialStatus.COMPLETED and (value := trial.final_val_accuracy) is not None
    ]
    if evidence is None or not completed:
        return {}
    completed.sort(key=lambda item: -item[1])
    regime = str((document.get("regime") or {}).get("label", "unknown"))
    gap = (document.get("table1") or {}).get("gap")
    return {
        TAG_FORMAT: HISTORY_FORMAT,
        TAG_EVIDENCE: json.dumps({**evidence.to_dict(), "gap": gap}),
        TAG_REGIME: regime,
        TAG_MODEL: model,
        TAG_RANKED: _ranked_json(completed),
    }


def past_sweep_from_tags(
    name: str, tags: Mapping[str, str], source: str, origin: str = "tracking server"
) -> PastSweep:
    """Read one past sweep from its record (its parent run's tags).

    Raises:
        ResultsError: the tags are not in the format above.
    """
    try:
        table1 = json.loads(tags[TAG_EVIDENCE])
        evidence = EvidenceVector.from_document({"table1": table1})
        ranked = tuple((row[0], row[1]) for row in json.loads(tags[TAG_RANKED]))
        gap = table1.get("gap")
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as error:
        raise ResultsError(f"run {source}: malformed history tags ({error})") from None
    if evidence is None:
        raise ResultsError(f"run {source}: tag {TAG_EVIDENCE} holds no usable evidence")
    regime = str(tags.get(TAG_REGIME, "unknown"))
    gap = float(gap) if isinstance(gap, int | float) else None
    model = str(tags.get(TAG_MODEL, ""))
    return PastSweep(name, evidence, ranked, source, regime, gap, origin, model)
