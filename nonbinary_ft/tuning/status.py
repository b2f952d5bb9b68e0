"""A Ray Tune trial's state in the sweep's words (:class:`~nonbinary_ft.vocabulary.TrialStatus`).

Ray knows whether a trial is pending, running, terminated or errored; the trial itself reports
how it ended (``completed``, ``diverged``), and the sweep's scheduler stamps the trials it
stopped (``pruned``, ``early_stopped``). This is the one place that combines the two.
"""

from __future__ import annotations

from typing import Any

from nonbinary_ft.vocabulary import TrialStatus

__all__ = ["sweep_status"]

# Ray's trial states (ray.tune.experiment.Trial's constants), spelled out so that this module
# needs no Ray import.
_PENDING, _PAUSED, _RUNNING, _ERROR = "PENDING", "PAUSED", "RUNNING", "ERROR"


def sweep_status(ray_state: str, reported: Any, *, ended: bool = False) -> TrialStatus:
    """The sweep's status of a trial.

    Args:
        ray_state: Ray's state of the trial (``Trial.status``), or "ERROR" for a result
            that carries an error.
        reported: the ``status`` of its last result (None when it reported nothing).
        ended: the trial has just ended although Ray still calls it running.

    Returns:
        ``error`` for an errored trial, ``pending`` before it runs, ``running`` while it
        runs unless the scheduler has just stopped it, and once it ended the status it
        reported, or ``stopped`` when it ended mid-training (the time budget).
    """
    if ray_state == _ERROR:
        return TrialStatus.ERROR
    if ray_state in (_PENDING, _PAUSED) and not ended:
        return TrialStatus.PENDING
    status = None if reported is None else TrialStatus.parse(reported)
    if ray_state == _RUNNING and not ended:
        stopped = (TrialStatus.PRUNED, TrialStatus.EARLY_STOPPED)
        return status if status in stopped else TrialStatus.RUNNING
    return status if status is not None and status.ended else TrialStatus.STOPPED
