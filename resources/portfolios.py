"""Every portfolio of a deployment, over what they share: one resource.

Assets are defined once and loaded under each portfolio's key prefix; at run time an asset
finds its portfolio from its own key (`portfolios.of(context)`) and gets that portfolio's
landing folder, calendar, datasets, registered model and policies. What portfolios share (the
MLflow server, the ledger database, the storage options) is configured here once, from
environment variables where it is a secret.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import dagster as dg
from pydantic import PrivateAttr

from resources.governance import Governance
from resources.registry import ModelRegistry
from resources.source import LandingFolder, ScoringCalendar
from resources.storage import DatasetStore
from riskcore.portfolio import Portfolio, load_portfolios

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class PortfolioResources:
    """One portfolio's view of the shared resources."""

    spec: Portfolio
    landing: LandingFolder
    calendar: ScoringCalendar
    store: DatasetStore
    registry: ModelRegistry
    governance: Governance

    @property
    def name(self) -> str:
        return self.spec.name

    def decision_policy(self):
        from riskcore.decision_policy import load_policy

        return load_policy(self.spec.policies["decision"])

    def monitoring_policy(self):
        from riskcore.monitoring_policy import load_monitoring_policy

        return load_monitoring_policy(self.spec.policies["monitoring"])

    def review_policy(self):
        from riskcore.review_policy import load_review_policy

        return load_review_policy(self.spec.policies["review"])

    def training_policy(self):
        from riskcore.training_policy import load_training_policy

        return load_training_policy(self.spec.policies["training"])

    def review_store(self, attest=None):
        """The portfolio's review queue and decisions, beside its ledger (`attest`: the review service's signature)."""
        from riskcore.review_store import ReviewStore

        return ReviewStore(self.governance.ledger(), self.name, self.review_policy(), attest)

    def rollout_rows(self, month: str):
        """(one row per application, in the scores' order: the decision, the champion's and the
        challenger's PD and decision, cell, step, outcome where matured; its sensitive attributes
        row-aligned; the outcome column or None). A month's scores, shadow scores, applications and
        outcomes are written in one order: each is taken as it is when in the scores', joined by id when not."""
        from riskcore.datasets import CHALLENGER_SCORES, OUTCOMES, SCORES
        from riskcore.rollout import read_scores

        landing, store, calendar = self.landing, self.store, self.calendar
        id_column = landing.applications().only("id")
        ids = store.read_arrow(SCORES, month, columns=[id_column]).column(id_column)
        texts = ["decision", "model_version", "champion_decision", "cell"]  # as categories: a few distinct values each
        frame = read_scores(
            store, month, ["pd", "decision", "model_version", "champion_pd", "champion_decision", "cell", "rollout_step", "canary_share"], texts
        )
        shadow = store.read_aligned(CHALLENGER_SCORES, month, ids, id_column, ["pd", "decision", "model_version"], categories=["decision", "model_version"])
        frame = frame.assign(challenger_pd=shadow["pd"].array, challenger_decision=shadow["decision"].array, challenger_version=shadow["model_version"].array)
        target = None
        if calendar.matured(month) and month in store.partitions(OUTCOMES):
            target = landing.outcomes().only("target")
            frame[target] = store.read_aligned(OUTCOMES, month, ids, id_column, [target])[target].array
        return frame, self.sensitive_attributes(month, ids), target

    def sensitive_attributes(self, month: str, ids) -> pd.DataFrame:
        """The month's applications' sensitive attributes, row-aligned with `ids` (as `DatasetStore.read_arrow` gives them)."""
        from riskcore.datasets import APPLICATIONS

        id_column = self.landing.applications().only("id")
        return self.store.read_aligned(APPLICATIONS, month, ids, id_column, list(self.spec.sensitive_attributes))


def _join(root: str, location: str) -> str:
    """A portfolio location: a URL or absolute path as is, a relative one under the environment's root."""
    if "://" in location or location.startswith("/"):
        return location
    return f"{root.rstrip('/')}/{location}"


class Portfolios(dg.ConfigurableResource):
    """Portfolio files, and the roots, registry and ledger every portfolio uses."""

    files: list[str]
    landing_root: str
    datasets_root: str
    tracking_uri: str
    artifact_location: str | None = None  # for new MLflow experiments; None lets the server decide
    ledger_url: str
    ledger_key: str | None = None
    service_signing_key: str | None = None  # RISK_SERVICE_SIGNING_KEY (an EnvVar): the sensors' service identity signs with it
    rollout_key: str | None = None  # RISK_ROLLOUT_KEY (an EnvVar): the canary cell's keyed hash; None: no canary can start
    auto_approve: str | None = None  # development only: overrides the promotion policy's setting
    storage_options: dict[str, str] = {}
    # values for ${VAR} in portfolio files when the environment does not set VAR (the local world's RISK_AS_OF)
    variables: dict[str, str] = {}
    # Portfolio files (and the contracts and policies they name) read once per resource
    # instance, that is once per run, not once per asset and check; keyed by the file list,
    # since a copy with other files shares this dict.
    _specs: dict = PrivateAttr(default_factory=dict)

    def specs(self) -> list[Portfolio]:
        key = tuple(self.files)
        if key not in self._specs:
            self._specs[key] = load_portfolios(self.files, self.variables)
        return self._specs[key]

    def named(self, name: str) -> PortfolioResources:
        for spec in self.specs():
            if spec.name == name:
                return self.bind(spec)
        raise KeyError(f"no portfolio named {name!r}; portfolios: {', '.join(p.name for p in self.specs())}")

    def of(self, context) -> PortfolioResources:
        """The portfolio of the running asset or check."""
        return self.named(portfolio_of_run_step(context))

    def bind(self, spec: Portfolio) -> PortfolioResources:
        c = spec.calendar
        calendar = ScoringCalendar(
            as_of_month=c.evaluation_month, performance_window_months=c.performance_window_months, out_of_time_months=c.out_of_time_months
        )
        artifacts = self.artifact_location
        if artifacts is None and self.tracking_uri.startswith("sqlite:"):
            # A file registry keeps its artifacts with the datasets, not in ./mlruns of whatever folder a command ran from.
            artifacts = _join(self.datasets_root, "mlflow-artifacts")
        return PortfolioResources(
            spec=spec,
            landing=LandingFolder(
                path=_join(self.landing_root, spec.landing),
                storage_options=self.storage_options,
                applications_contract=spec.contracts["applications"],
                outcomes_contract=spec.contracts["outcomes"],
                features_contract=spec.contracts["features"],
                scores_contract=spec.contracts["scores"],
            ),
            calendar=calendar,
            store=DatasetStore(base_path=_join(self.datasets_root, spec.datasets), storage_options=self.storage_options),
            registry=ModelRegistry(tracking_uri=self.tracking_uri, artifact_location=artifacts, experiment_name=spec.name, model_name=spec.model_name),
            governance=Governance(
                ledger_url=self.ledger_url,
                ledger_key=self.ledger_key,
                promotion_policy=spec.policies["promotion"],
                auto_approve=self.auto_approve,
                allowed_signers=spec.allowed_signers,
                portfolio_file=spec.file,
                service_signing_key=self.service_signing_key,
                rollout_policy=spec.policies["rollout"],
                assignment_key=self.rollout_key,
            ),
        )


def portfolio_of_run_step(context) -> str:
    """The first part of the key of what is being materialised or checked: its portfolio."""
    keys = [*getattr(context, "selected_asset_keys", ()), *(k.asset_key for k in getattr(context, "selected_asset_check_keys", ()))]
    if not keys:
        keys = [spec.asset_key for spec in context.check_specs]
    return keys[0].path[0]
