"""Evidence-blind ways to learn from past sweeps, after Syne Tune's transfer baselines.

- :func:`zero_shot_points` (Syne Tune's ``ZeroShotTransfer``): the settings that did well
  across the past sweeps, chosen greedily as a portfolio: each next one adds the most to the
  best normalised accuracy reached so far on every past sweep, averaged. It ignores the new
  target's evidence: whether the evidence picks better starting points than the history alone
  is what comparing it with 'nbft' measures. Given a model, it learns from past sweeps of
  that model, or, when there are none, of its family (:func:`model_family`).
- :func:`bounding_box` (Syne Tune's ``BoundingBox``): the search space shrunk to the box
  around the past sweeps' winners.

Both read only the past sweeps' rankings (:class:`~nonbinary_ft.search.warm_start.PastSweep`),
already checked and still to be fitted to the new space and model.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from nonbinary_ft.config.settings import settings_key
from nonbinary_ft.config.space import Choice, Fixed, FloatRange, Grid, IntRange, SearchSpace
from nonbinary_ft.search.warm_start import PastSweep, WarmPoint

__all__ = ["model_family", "sweeps_of_model", "zero_shot_points", "bounding_box"]


def _normalised(past: PastSweep) -> dict[str, float]:
    """Each of the sweep's settings -> its accuracy scaled to [0, 1] within the sweep."""
    values = [value for _, value in past.ranked]
    low, high = min(values), max(values)
    span = high - low if high > low else 1.0
    scores: dict[str, float] = {}
    for settings, value in past.ranked:
        scores.setdefault(settings_key(settings), (value - low) / span)
    return scores


def _merit(
    key: str, scores: Sequence[dict[str, float]], reached: Sequence[float]
) -> tuple[float, int, float]:
    """What adding ``key`` gives: the summed gain over the best reached on each sweep, then
    in how many sweeps it was seen, then its mean normalised accuracy."""
    known = [score[key] for score in scores if key in score]
    gain = sum(
        max(best, score[key]) - best for best, score in zip(reached, scores, strict=True)
        if key in score
    )  # fmt: skip
    return gain, len(known), sum(known) / len(known)


@functools.lru_cache(maxsize=256)
def model_family(name: str) -> str:
    """The family of timm model ``name``: the timm module that builds it ('efficientnet' for
    tf_efficientnet_lite0 to lite4 and efficientnet_b0 to b7, 'resnet' for the ResNets), or
    the name itself for a model timm does not know."""
    from timm.models import is_model, model_entrypoint, split_model_name_tag

    architecture = split_model_name_tag(name)[0]
    if not is_model(architecture):
        return name
    return model_entrypoint(architecture).__module__.rsplit(".", 1)[-1]


def sweeps_of_model(history: Sequence[PastSweep], model: str) -> list[PastSweep]:
    """The past sweeps of ``model``; when there are none, those of models of its family.

    Why the family, checked on the replay's design tables (16-trial past sweeps, 10 seeds,
    mean normalised test regret at 5 % / 10 % of the grid's compute, W = 1): the first table
    of EfficientNet-Lite1, with only Lite0 and ResNet tables as history, went from 0.326 /
    0.098 (TPE + RUSH, no past sweep of its model) to 0.037 / 0.040 with the Lite0 sweeps;
    with every table of the task's own source left out, 0.236 / 0.143 became 0.152 / 0.130,
    and no task was worse than TPE + RUSH beyond its seeds' spread. Past sweeps of every
    model instead (search 'zero_shot') made that case worse than TPE + RUSH: 0.282 / 0.163.
    """
    same = [past for past in history if past.model == model]
    if same:
        return same
    family = model_family(model)
    return [past for past in history if past.model and model_family(past.model) == family]


def zero_shot_points(
    history: Sequence[PastSweep], count: int, model: str | None = None
) -> list[WarmPoint]:
    """Up to ``count`` settings, a greedy portfolio over the past sweeps (of ``model`` only,
    when given, or of its family: :func:`sweeps_of_model`): each adds the most to the mean
    over sweeps of the best normalised accuracy reached; ties go to the settings seen in more
    sweeps, then the higher mean."""
    pasts = [past for past in history if past.ranked]
    if model is not None:
        pasts = sweeps_of_model(pasts, model)
    scores = [_normalised(past) for past in pasts]
    # Each candidate is credited to the past sweep where it ranked best (the log's reason).
    candidates: dict[str, WarmPoint] = {}
    for past in pasts:
        other_model = past.model if model is not None and past.model != model else ""
        for rank, (settings, value) in enumerate(past.ranked, start=1):
            key = settings_key(settings)
            if key not in candidates or rank < candidates[key].rank:
                candidates[key] = WarmPoint(
                    dict(settings), past.name, rank, value, None, other_model
                )
    reached = [0.0] * len(pasts)
    chosen: list[WarmPoint] = []
    while candidates and len(chosen) < count:
        best_key = max(sorted(candidates), key=lambda key: _merit(key, scores, reached))
        chosen.append(candidates.pop(best_key))
        reached = [
            max(best, score.get(best_key, 0.0)) for best, score in zip(reached, scores, strict=True)
        ]
    return chosen


def _narrowed(distribution: Any, values: list[Any]) -> Any:
    """One parameter's range shrunk to the past winners' ``values`` (unchanged when none of
    them fits it)."""
    numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    if isinstance(distribution, FloatRange) and numbers:
        low = min(max(min(numbers), distribution.low), distribution.high)
        high = max(min(max(numbers), distribution.high), distribution.low)
        if low == high:
            return Fixed(value=low)
        return distribution.model_copy(update={"low": low, "high": high})
    if isinstance(distribution, IntRange) and numbers:
        low = min(max(int(min(numbers)), distribution.low), distribution.high)
        high = max(min(int(max(numbers)), distribution.high), distribution.low)
        if low == high:
            return Fixed(value=low)
        high = low + (high - low) // distribution.step * distribution.step
        return distribution.model_copy(update={"low": low, "high": high})
    if isinstance(distribution, Choice | Grid):
        kept = [option for option in distribution.values if option in values]
        if len(kept) == 1:
            return Fixed(value=kept[0])
        if kept:
            return distribution.model_copy(update={"values": kept})
    return distribution


def bounding_box(space: SearchSpace, history: Sequence[PastSweep]) -> SearchSpace:
    """``space`` shrunk, parameter by parameter, to the box around the past sweeps' winners
    (a parameter none of them sets, or whose values all fall outside it, is kept whole)."""
    winners = [past.winner for past in history if past.winner is not None]
    if not winners:
        return space
    parameters = {
        name: _narrowed(distribution, [w[name] for w in winners if w.get(name) is not None])
        for name, distribution in space.parameters.items()
    }
    return space.model_copy(update={"name": f"{space.name}-box", "parameters": parameters})
