"""The sweep on Ray Tune: space sampling under the layer constraints, searcher and scheduler
factories with a pluggable pruning policy, the trainable, MLflow and progress callbacks, and
the orchestration of the search and the seeded final runs.

Typical use::

    from nonbinary_ft.config import load_config
    from nonbinary_ft.tuning import plan_sweep, run_sweep

    config = load_config("sweeps/quickstart.yaml")
    print(plan_sweep(config, "sweeps/quickstart.yaml").to_dict())   # --dry-run: no Ray
    result = run_sweep(config, source="sweeps/quickstart.yaml")

Modules that import Ray are loaded on first use, so ``plan_sweep`` (and ``nbft sweep
--dry-run``) never starts or even imports Ray.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nonbinary_ft.tuning.plan import CostEstimate, StorageLocation, SweepPlan, plan_sweep

if TYPE_CHECKING:
    from nonbinary_ft.tuning.orchestrate import (
        FinalSummary,
        SweepResult,
        TrialSummary,
        run_sweep,
    )
    from nonbinary_ft.tuning.pruning import PruneDecision, PruningPolicy
    from nonbinary_ft.tuning.trainable import TrainableOptions

__all__ = [
    "CostEstimate",
    "FinalSummary",
    "PruneDecision",
    "PruningPolicy",
    "StorageLocation",
    "SweepPlan",
    "SweepResult",
    "TrainableOptions",
    "TrialSummary",
    "plan_sweep",
    "run_sweep",
]

_LAZY = {
    "FinalSummary": "nonbinary_ft.tuning.orchestrate",
    "SweepResult": "nonbinary_ft.tuning.orchestrate",
    "TrialSummary": "nonbinary_ft.tuning.orchestrate",
    "run_sweep": "nonbinary_ft.tuning.orchestrate",
    "PruneDecision": "nonbinary_ft.tuning.pruning",
    "PruningPolicy": "nonbinary_ft.tuning.pruning",
    "TrainableOptions": "nonbinary_ft.tuning.trainable",
}


def __getattr__(name: str) -> Any:
    """Import the Ray-dependent names on first use."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'nonbinary_ft.tuning' has no attribute {name!r}")
