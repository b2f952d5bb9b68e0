"""The live objects of the driver process that a sweep's pickled Ray components consult.

Ray Tune pickles the searcher, the scheduler and the callbacks into the experiment folder and,
on ``--resume``, runs unpickled copies rather than the ones this process built. The pruning
policy (a handle to the analysis actor) and the progress display are live objects of *this*
driver, so the pickled components hold only the sweep's key and look them up here: a
restored sweep uses the policy and the display of the process that resumed it. Decisions do
not pass through here: they go to the sweep's :class:`~nonbinary_ft.search.policy.DecisionLog`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nonbinary_ft.search.policy import PruningPolicy

__all__ = ["DriverSession", "open_session", "close_session", "session_of"]

ProgressListener = Callable[[Any], None]


@dataclass
class DriverSession:
    """What a running sweep's components use from the driver.

    Attributes:
        policy: the pruning policy consulted by the searcher and the scheduler (None: none).
        listener: called with a progress snapshot; None: silent.
        restored: on --resume, the identity of what every trial in the restored experiment
            state trains (None: not resuming, or unknown). Ray restores the searcher's state
            from files uploaded apart from the experiment state, which may be newer; the
            searcher reconciles with this (see ``PruningSearcher``).
    """

    policy: PruningPolicy | None = None
    listener: ProgressListener | None = None
    restored: frozenset[str] | None = None


_SESSIONS: dict[str, DriverSession] = {}


def open_session(
    key: str, policy: PruningPolicy | None = None, listener: ProgressListener | None = None
) -> DriverSession:
    """Make the driver's live objects visible to the components of the sweep ``key``.

    Args:
        key: the sweep's identity (its search experiment's storage URI).
        policy: pruning policy, or None.
        listener: progress listener, or None.
    """
    session = DriverSession(policy=policy, listener=listener)
    _SESSIONS[key] = session
    return session


def close_session(key: str) -> None:
    """Forget the live objects of a finished (or failed) sweep."""
    _SESSIONS.pop(key, None)


def session_of(key: str) -> DriverSession:
    """The live objects of ``key``; an empty session (no policy, no listener) when none."""
    session = _SESSIONS.get(key)
    return session if session is not None else DriverSession()
