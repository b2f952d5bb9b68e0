"""Driver-side live objects of a running sweep, looked up by the sweep's key.

Ray Tune pickles the searcher, the scheduler and the callbacks into the experiment folder and,
on ``--resume``, runs the unpickled copies rather than the ones this process built. A pruning
policy (for instance a handle to the analysis actor), the decision log and the progress
listener are live objects of *this* driver, so the pickled objects hold only the sweep's key
and look the live ones up here. A restored sweep therefore uses the policy and the display of
the process that resumed it, and no pickled copy drags a dead actor handle or a terminal along.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nonbinary_ft.tuning.pruning import PruneDecision, PruningPolicy

__all__ = ["SweepLive", "register", "unregister", "lookup"]

ProgressListener = Callable[[Any], None]


@dataclass
class SweepLive:
    """What a running sweep's pickled components share in the driver process.

    Attributes:
        policy: the pruning policy consulted by the searcher and the scheduler (None: none).
        listener: called with a progress snapshot (see ``ProgressCallback``); None: silent.
        decisions: every pruning and early-stopping decision of this driver, in order.
    """

    policy: PruningPolicy | None = None
    listener: ProgressListener | None = None
    decisions: list[PruneDecision] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, decision: PruneDecision) -> None:
        """Append a decision (thread-safe: Ray calls hooks from its controller thread)."""
        with self.lock:
            self.decisions.append(decision)

    def decisions_since(self, start: int) -> list[PruneDecision]:
        """The decisions recorded after the first ``start`` ones."""
        with self.lock:
            return list(self.decisions[start:])


_LIVE: dict[str, SweepLive] = {}


def register(
    key: str, policy: PruningPolicy | None = None, listener: ProgressListener | None = None
) -> SweepLive:
    """Make the live objects of the sweep ``key`` visible to its pickled components.

    Args:
        key: the sweep's identity (its search experiment's storage URI).
        policy: pruning policy, or None.
        listener: progress listener, or None.
    """
    live = SweepLive(policy=policy, listener=listener)
    _LIVE[key] = live
    return live


def unregister(key: str) -> None:
    """Forget the live objects of a finished (or failed) sweep."""
    _LIVE.pop(key, None)


def lookup(key: str) -> SweepLive:
    """The live objects of ``key``; a fresh empty set (no policy, no listener) when none."""
    live = _LIVE.get(key)
    return live if live is not None else SweepLive()
