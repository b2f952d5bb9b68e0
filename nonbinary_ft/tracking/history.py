"""The history on a tracking server: past sweeps found by their parent runs' tags.

Every finished sweep tags its MLflow parent run with its history record
(:mod:`nonbinary_ft.history.record`), so that ``MlflowClient.search_runs(filter_string=
"tags.`nbft.history.format` = '1'")`` finds them in any experiment of a tracking store:
:func:`read_history` does that.
"""

from __future__ import annotations

import logging

from nonbinary_ft.history.record import HISTORY_FORMAT, TAG_FORMAT, past_sweep_from_tags
from nonbinary_ft.results import ResultsError
from nonbinary_ft.search.warm_start import PastSweep, checked_sweep
from nonbinary_ft.tracking.artifacts import tracking_client

__all__ = ["read_history"]

logger = logging.getLogger(__name__)


def read_history(tracking_uri: str, exclude_run: str | None = None) -> list[PastSweep]:
    """Every past sweep in the tracking store's experiments, newest first.

    A run whose tags are malformed is skipped with a warning, not fatal: the history is a
    hint, and one bad run must not stop a sweep.
    """
    client = tracking_client(tracking_uri)
    experiments = [experiment.experiment_id for experiment in client.search_experiments()]
    if not experiments:
        return []
    runs = client.search_runs(
        experiments,
        filter_string=f"tags.`{TAG_FORMAT}` = '{HISTORY_FORMAT}'",
        max_results=1000,
        order_by=["attributes.start_time DESC"],
    )
    history = []
    for run in runs:
        if run.info.run_id == exclude_run:
            continue
        try:
            name = run.info.run_name or run.info.run_id
            past = checked_sweep(past_sweep_from_tags(name, run.data.tags, run.info.run_id))
        except ResultsError as error:
            logger.warning("history: skipping %s", error)
            continue
        if past is not None:
            history.append(past)
    return history
