"""A pruning policy from the analysis's regime: table 7's rows as a (reversible) veto.

:class:`RegimePolicy` reads an analysis document (``analysis.json``) and rules out settings
that go against the regime on several of the paper's table-7 rows (re-initialised layers,
L2-SP, low layers at a low LR), with the evidence in the reason. The sweep's own results
overrule it: a strong trial re-opens its region.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from nonbinary_ft.analysis.recommend import TABLE7_ROWS, row_answers, rows_against
from nonbinary_ft.config.settings import TrialSettings
from nonbinary_ft.search.policy import PruningPolicy, in_top_fraction

__all__ = ["RegimePolicy"]

logger = logging.getLogger(__name__)


class RegimePolicy(PruningPolicy):
    """Rules out settings that go against the regime on table 7's rows, given an analysis document.

    The rows are :data:`~nonbinary_ft.analysis.recommend.TABLE7_ROWS` (more layers
    re-initialised, L2-SP, low layers at a low LR), each answered by the regime's recommended
    settings. A setting is ruled out when it goes against at least ``min_rows`` of them.
    Learning rates stay open: the regime says 'low' or 'high' relative to a base, and the
    search is better placed than a fixed bound to find the value.

    The sweep's own results overrule the regime: once a trial that answers the rows the same
    way ranks in the top ``protect_top_fraction`` of the trials seen (``observe``), settings
    like it are no longer ruled out. The regime describes typical settings; a strong trial in
    the region is direct evidence about this target.

    Args:
        document: an analysis document (:meth:`AnalysisReport.to_dict`), or None (no veto).
        prune_on_provisional: also prune on a provisional (Fisher-only) regime.
        min_rows: rows a setting must go against to be ruled out (1 to 3).
        protect_top_fraction: the share of best trials whose row answers stay open.
        veto: rule settings out at all; False keeps the evidence for the warm start and the
            report only (the replay found the veto cost more than it saved).
        pending: whether evidence is still to come (set by whoever feeds :meth:`update`).
    """

    def __init__(
        self,
        document: Mapping[str, Any] | None,
        prune_on_provisional: bool = False,
        min_rows: int = 2,
        protect_top_fraction: float = 0.0,
        veto: bool = True,
        pending: bool = False,
    ) -> None:
        self.prune_on_provisional = prune_on_provisional
        self.veto = veto
        self.pending = pending
        self.min_rows = min_rows
        self.protect_top_fraction = protect_top_fraction
        self._recommended: TrialSettings | None = None
        self._because = ""
        self._best: dict[str, float] = {}
        self._answers: dict[str, dict[str, bool]] = {}
        self.update(document)

    def update(self, document: Mapping[str, Any] | None) -> None:
        """Adopt a new analysis document (evidence arrived)."""
        self._document = document
        self._recommended = None
        if not document:
            return
        regime = document["regime"]
        if regime["label"] == "unclear":
            return
        if regime["provisional"] and not self.prune_on_provisional:
            return
        self._recommended = TrialSettings.model_validate(document["recommendation"]["settings"])
        # The gap decides once it is known, the Fisher score before (analysis.regime).
        decided = (
            f"gap {regime['gap']:+.3f}"
            if regime["gap"] is not None
            else f"Fisher {regime['fisher']:.3g}"
        )
        self._because = f"{regime['label']} ({decided})"

    def document(self) -> Mapping[str, Any] | None:
        """The analysis document the policy currently acts on."""
        return self._document

    def evidence(self) -> Mapping[str, Any] | None:
        """The analysis document (see :meth:`PruningPolicy.evidence`)."""
        return self._document

    def evidence_pending(self) -> bool:
        """Whether evidence is still to come and none is in yet."""
        return self.pending and self._document is None

    @property
    def active(self) -> bool:
        """Whether the current evidence rules anything out."""
        return self.veto and self._recommended is not None

    def observe(
        self, trial_id: str, settings: Mapping[str, Any], metrics: Mapping[str, Any]
    ) -> None:
        """Keep each trial's best validation accuracy and its answers on table 7's rows."""
        accuracy = metrics.get("val_accuracy")
        if isinstance(accuracy, float | int):
            self._best[trial_id] = max(accuracy, self._best.get(trial_id, accuracy))
            self._answers[trial_id] = row_answers(TrialSettings.model_validate(dict(settings)))

    def _strong_trial_like(self, settings: TrialSettings) -> str | None:
        """A trial in the top fraction so far that answers table 7's rows like ``settings``."""
        answers = row_answers(settings)
        for trial_id, theirs in self._answers.items():
            if theirs == answers and in_top_fraction(
                self._best, trial_id, self.protect_top_fraction
            ):
                return trial_id
        return None

    def rules_out(self, settings: Mapping[str, Any]) -> str | None:
        """The table-7 rows the settings go against, with the evidence, or None."""
        if not self.veto or self._recommended is None:
            return None
        trial = TrialSettings.model_validate(dict(settings))
        against = rows_against(self._recommended, trial)
        if len(against) < self.min_rows:
            return None
        strong = self._strong_trial_like(trial)
        if strong is not None:
            logger.info(
                "not ruling out %s: trial %s, alike on table 7's rows, is in the top %.0f%%",
                dict(settings),
                strong,
                100 * self.protect_top_fraction,
            )
            return None
        return (
            f"against table 7 on {len(against)} of {len(TABLE7_ROWS)} rows: "
            f"{'; '.join(against)}; the weights {self._because}"
        )
