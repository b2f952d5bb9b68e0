"""The sweep's core without Ray: valid settings from a space, and the evidence policy.

- :mod:`.sampling`: a space capped to the model and sampled (k first, then n and m), every
  point valid by construction; :mod:`.grid`: the grids of search 'grid', enumerated;
- :mod:`.policy`: the pruning policy's interface, its two decision points (a suggestion, a
  running trial's result) and the decision log;
- :mod:`.regime_policy`: the analysis's regime as a policy (table 7's rows, reversible).

Ray Tune's adapters (:mod:`nonbinary_ft.tuning`) and a replay of recorded learning curves
drive these same objects.
"""

from nonbinary_ft.search.grid import grid_points
from nonbinary_ft.search.policy import (
    DecisionLog,
    PruningPolicy,
    TrialJudge,
    in_top_fraction,
    screen_suggestion,
    settings_of,
)
from nonbinary_ft.search.sampling import (
    ConstrainedSpace,
    SpaceSource,
    constrain_space,
    load_sweep_spaces,
    make_valid,
)

__all__ = [
    "ConstrainedSpace",
    "DecisionLog",
    "PruningPolicy",
    "SpaceSource",
    "TrialJudge",
    "constrain_space",
    "grid_points",
    "in_top_fraction",
    "load_sweep_spaces",
    "make_valid",
    "screen_suggestion",
    "settings_of",
]
