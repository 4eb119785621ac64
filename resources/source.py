"""Where loan applications and outcomes arrive: a landing folder of monthly files.

Real data and the synthetic source go through the same folder and the same contract: what
puts files there (an upstream system, `python -m pipelines.prepare`) is not the pipeline's
business.
"""

from __future__ import annotations

import datetime as dt

import dagster as dg
from upath import UPath

from resources.storage import resolve_path
from riskcore.contract import Contract, load_contract
from riskcore.months import add_months, labels_matured, month_label


class ScoringCalendar(dg.ConfigurableResource):
    """As of when the pipeline runs, and how long a default flag takes to mature."""

    as_of_month: str | None = None  # None: the last complete calendar month
    performance_window_months: int = 12
    out_of_time_months: int = 3

    @property
    def as_of(self) -> str:
        return self.as_of_on(dt.date.today())

    def as_of_on(self, day: dt.date) -> str:
        """The evaluation month on `day`: the month before it, unless the calendar is pinned (a simulated world)."""
        return month_label(self.as_of_month or add_months(day, -1))

    def matured(self, month: str) -> bool:
        return labels_matured(month, self.as_of, self.performance_window_months)


class LandingFolder(dg.ConfigurableResource):
    """Monthly files from upstream systems: `<path>/applications/YYYY-MM.{parquet,csv}`, same for outcomes;
    read under the portfolio's contracts (file paths)."""

    path: str
    applications_contract: str
    outcomes_contract: str
    features_contract: str
    scores_contract: str
    storage_options: dict[str, str] = {}

    def _root(self) -> UPath:
        return resolve_path(self.path, self.storage_options)

    def applications(self) -> Contract:
        return load_contract(self.applications_contract)

    def outcomes(self) -> Contract:
        return load_contract(self.outcomes_contract, source=self.applications())

    def features(self) -> Contract:
        return load_contract(self.features_contract, source=self.applications())

    def scores(self) -> Contract:
        return load_contract(self.scores_contract, source=self.applications())

    def _find(self, kind: str, month: str) -> UPath | None:
        for suffix in ("parquet", "csv"):
            candidate = self._root() / kind / f"{month_label(month)}.{suffix}"
            if candidate.exists():
                return candidate
        return None

    def applications_file(self, month: str) -> UPath:
        found = self._find("applications", month)
        if found is None:
            raise FileNotFoundError(
                f"no applications file for {month_label(month)} in {self._root() / 'applications'} (expected {month_label(month)}.parquet or .csv)"
            )
        return found

    def outcomes_file(self, month: str) -> UPath | None:
        return self._find("outcomes", month)
