"""Rung stops against the incumbent's own curve (after Syne Tune's RUSH), without Ray.

ASHA compares a trial with the other trials at the same rung, so a slow starter with a low
learning rate (often the winner when the weights fit well) falls below the fast starters and
is stopped; and the sampler then learns from the stopped trials' low scores. The replay
measured both (TPE + ASHA was worse than TPE alone on four tasks of six). This rule stops a
trial at one rung only, and only when it is far below what the best completed trial had
reached at the same epoch: the incumbent has shown that the target is reachable from there.

A trial is judged once, at :attr:`RushRule.rung` (a share of the epochs), and stopped when
its validation accuracy is more than :attr:`RushRule.margin` below the incumbent's at that
epoch. Before any trial completes, nothing is stopped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["RUSH_RUNG", "RUSH_MARGIN", "RushRule"]

RUSH_RUNG = 1 / 3
"""Where trials are judged, as a share of the epochs (the replay's best of 0.2, 1/3, 0.5)."""
RUSH_MARGIN = 0.15
"""How far below the incumbent a trial may be (accuracy); 0.05 stopped the digits winner."""


@dataclass
class RushRule:
    """The incumbent's curve and the stop rule.

    Args:
        epochs: epochs per trial.
        rung: the share of ``epochs`` where trials are judged.
        margin: the accuracy a trial may lag the incumbent by at the rung.
    """

    epochs: int
    rung: float = RUSH_RUNG
    margin: float = RUSH_MARGIN
    curves: dict[str, dict[int, float]] = field(default_factory=dict)
    incumbent: str | None = None

    @property
    def rung_epoch(self) -> int:
        """The epoch where trials are judged (at least 1, before the last)."""
        return max(1, min(self.epochs - 1, round(self.rung * self.epochs)))

    def observe(self, trial_id: str, epoch: int, value: float) -> str | None:
        """Record a result; the reason to stop the trial, or None to let it go on."""
        self.curves.setdefault(trial_id, {})[epoch] = value
        if epoch != self.rung_epoch or self.incumbent is None:
            return None
        reference = self.curves[self.incumbent].get(epoch)
        if reference is None or value >= reference - self.margin:
            return None
        return (
            f"val_accuracy {value:.3f} at epoch {epoch} is more than {self.margin:g} below the "
            f"best completed trial's {reference:.3f} at the same epoch"
        )

    def complete(self, trial_id: str, epoch: int, value: float, completed: bool) -> None:
        """Record a trial's end; a completed trial that beats the incumbent replaces it."""
        curve = self.curves.setdefault(trial_id, {})
        curve[epoch] = value
        if not completed:
            return
        if self.incumbent is None or value > self._final(self.incumbent):
            self.incumbent = trial_id

    def _final(self, trial_id: str) -> float:
        curve = self.curves[trial_id]
        return curve[max(curve)]
