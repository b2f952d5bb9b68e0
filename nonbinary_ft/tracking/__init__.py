"""MLflow tracking of sweeps: a parent run per sweep, a child run per trial (driver only)."""

from nonbinary_ft.tracking.runs import (
    TAG_REASON,
    TAG_ROLE,
    TAG_STAGE,
    TAG_STATUS,
    TAG_TRIAL,
    SweepTracker,
)

__all__ = ["SweepTracker", "TAG_ROLE", "TAG_STAGE", "TAG_TRIAL", "TAG_STATUS", "TAG_REASON"]
