"""The words the sweep uses for what happens to a trial, in one place.

Each is a string enum: its members compare equal to their values (``TrialStatus.PRUNED ==
"pruned"``), so JSON, MLflow tags and Ray's result dicts carry plain strings, and reading one
back is ``TrialStatus.parse(text)``.
"""

from __future__ import annotations

from enum import Enum

__all__ = ["TrialStatus", "RegimeLabel", "DecisionKind", "Stage"]


class _Words(str, Enum):
    """A string enum whose ``str()`` is its value (as written in files and tags)."""

    def __str__(self) -> str:
        return str(self.value)


class TrialStatus(_Words):
    """Where a trial stands, or how it ended.

    ``pending`` and ``running`` are live states; the rest are endings: ``completed`` (every
    epoch), ``diverged`` (a non-finite loss), ``pruned`` (stopped by the evidence policy),
    ``early_stopped`` (stopped by the scheduler, e.g. ASHA), ``stopped`` (ended from outside,
    by the time budget) and ``error`` (the trial raised, retries used up).
    """

    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    DIVERGED = "diverged"
    PRUNED = "pruned"
    EARLY_STOPPED = "early_stopped"
    STOPPED = "stopped"
    ERROR = "error"

    @property
    def ended(self) -> bool:
        """Whether this is an ending rather than a live state."""
        return self not in (TrialStatus.PENDING, TrialStatus.RUNNING)

    @classmethod
    def parse(cls, raw: object) -> TrialStatus:
        """The status written as ``raw``; Ray Tune's own words are understood, and anything
        unknown is an ``error`` (a report on odd results still renders)."""
        text = str(raw)
        text = {"terminated": "completed", "failed": "error"}.get(text, text)
        try:
            return cls(text)
        except ValueError:
            return cls.ERROR


class RegimeLabel(_Words):
    """How well the pre-trained weights fit the target (the paper's table 7 columns)."""

    FITS_WELL = "fits_well"
    FITS_POORLY = "fits_poorly"
    UNCLEAR = "unclear"

    @classmethod
    def parse(cls, raw: object) -> RegimeLabel:
        """The label written as ``raw``; anything else is ``unclear``."""
        try:
            return cls(str(raw))
        except ValueError:
            return cls.UNCLEAR


class DecisionKind(_Words):
    """What the sweep decided about a suggestion or a running trial."""

    PRUNED_SAMPLE = "pruned_sample"
    """A suggestion the policy ruled out: never started."""
    PRUNED_TRIAL = "pruned_trial"
    """A running trial the policy stopped."""
    EARLY_STOPPED = "early_stopped"
    """A running trial the scheduler stopped."""
    WARM_START = "warm_start"
    """Settings evaluated first because a past sweep with near evidence won with them."""

    @property
    def trial_status(self) -> TrialStatus | None:
        """The status a trial stopped by this decision ends with (None: no trial ran)."""
        return {
            DecisionKind.PRUNED_TRIAL: TrialStatus.PRUNED,
            DecisionKind.EARLY_STOPPED: TrialStatus.EARLY_STOPPED,
        }.get(self)


class Stage(_Words):
    """The sweep's stages that run trials."""

    SEARCH = "search"
    FINAL = "final"
