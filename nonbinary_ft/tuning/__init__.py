"""The sweep on Ray Tune: thin adapters over the Ray-free core of :mod:`nonbinary_ft.search`.

- :mod:`.plan`: the sweep resolved and checked before Ray starts (``--dry-run``);
- :mod:`.searcher`, :mod:`.scheduler`: Ray Tune's search algorithm and scheduler, each
  behind the evidence policy's hook; :mod:`.sampler`: Optuna's samplers over the space;
- :mod:`.trainable`: one trial on a Ray worker; :mod:`.actor`: stage 1's analysis actor;
- :mod:`.callbacks`, :mod:`.progress`: MLflow runs and the live display, in the driver;
- :mod:`.stages`, :mod:`.collect`, :mod:`.final`, :mod:`.publish`: running a stage, reading
  its results, stage 3's arithmetic, and the results files, report and MLflow copies;
- :mod:`.orchestrate`: :func:`run_sweep`.

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

import importlib
from typing import TYPE_CHECKING, Any

from nonbinary_ft.tuning.plan import CostEstimate, StorageLocation, SweepPlan, plan_sweep

if TYPE_CHECKING:
    from nonbinary_ft.tuning.orchestrate import SweepRun, run_sweep
    from nonbinary_ft.tuning.trainable import TrainableOptions

__all__ = [
    "CostEstimate",
    "StorageLocation",
    "SweepPlan",
    "SweepRun",
    "TrainableOptions",
    "plan_sweep",
    "run_sweep",
]

_LAZY = {
    "SweepRun": "nonbinary_ft.tuning.orchestrate",
    "run_sweep": "nonbinary_ft.tuning.orchestrate",
    "TrainableOptions": "nonbinary_ft.tuning.trainable",
}


def __getattr__(name: str) -> Any:
    """Import the Ray-dependent names on first use."""
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'nonbinary_ft.tuning' has no attribute {name!r}")
