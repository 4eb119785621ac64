"""Each portfolio's jobs: the same shapes under the portfolio's name, its assets only."""

import dagster as dg

from assets.registry import champion_metadata
from resources.portfolios import Portfolios
from resources.registry import RegisteredModel
from riskcore.datasets import (
    APPLICATIONS,
    CHALLENGER_SCORES,
    CHAMPION_MODEL,
    DRIFT,
    ESTIMATED,
    FEATURES,
    FINAL_DECISIONS,
    MODEL_EVALUATION,
    OUTCOMES,
    OVERRIDE_METRICS,
    PERFORMANCE,
    QUARANTINED,
    RAW_APPLICATIONS,
    REPORT,
    REVIEW_OUTCOMES,
    REVIEW_QUEUE,
    RISK_MODEL,
    SCORES,
    STABILITY,
    SWAP_SET,
    TRAINING_SET,
)

# Run queue limits in production key on this tag (deploy/dagster.yaml): one training at a time,
# a configurable cap on scoring.
RUN_KIND = "risk/run_kind"
# Every run of a portfolio carries its name: ops read it, the UI filters on it.
PORTFOLIO_TAG = "risk/portfolio"

INGESTION_ASSETS = (RAW_APPLICATIONS, APPLICATIONS, QUARANTINED, FEATURES, OUTCOMES)
REVIEW_ASSETS = (REVIEW_QUEUE, REVIEW_OUTCOMES, FINAL_DECISIONS, OVERRIDE_METRICS)


def job_name(portfolio: str, job: str) -> str:
    """The name a portfolio's job has in the code location, e.g. retail_pd_model_training_job."""
    return f"{portfolio}_{job}"


class SignedConfig(dg.Config):
    """A signed governance request (riskcore.signatures.SignedRequest): what was signed, and the
    signature its maker's key made (`python -m pipelines.governance` fills these in)."""

    reason: str
    signed_at: str
    signature: str

    def request(self, action: str, model: str, identity: str, version: str | None, from_version: str | None = None, from_step: int | None = None):
        from riskcore.signatures import SignedRequest

        return SignedRequest(action, model, version, identity, self.reason, self.signed_at, from_version, from_step, self.signature)


class ApprovalConfig(SignedConfig):
    version: str
    approver: str


class RollbackConfig(SignedConfig):
    actor: str
    to_version: str | None = None  # default: previous_champion
    from_version: str | None = None  # only if this version is still champion (sensors set it)
    from_step: int | None = None  # with from_version: only if that version still holds the canary cell at this step (the rollout sensor sets it)


@dg.op
def approve_and_promote(context: dg.OpExecutionContext, config: ApprovalConfig, portfolios: Portfolios) -> None:
    portfolio = portfolios.named(context.run_tags[PORTFOLIO_TAG])
    governance = portfolio.governance
    request = config.request("approve", portfolio.registry.model_name, config.approver, config.version)
    champion = governance.promote(portfolio.registry, config.version, request, run_id=context.run_id)
    context.log_event(
        dg.AssetMaterialization(
            [portfolio.name, CHAMPION_MODEL],
            metadata=champion_metadata(champion, f"approved by {config.approver} (signed): {config.reason}", governance.policy().label),
        )
    )
    context.log.info(f"{champion.label} is champion, approved by {config.approver}")


@dg.op
def roll_back_champion(context: dg.OpExecutionContext, config: RollbackConfig, portfolios: Portfolios) -> None:
    portfolio = portfolios.named(context.run_tags[PORTFOLIO_TAG])
    governance = portfolio.governance
    request = config.request("rollback", portfolio.registry.model_name, config.actor, config.to_version, config.from_version, config.from_step)
    champion = governance.rollback(portfolio.registry, request, run_id=context.run_id)
    context.log_event(
        dg.AssetMaterialization(
            [portfolio.name, CHAMPION_MODEL],
            metadata=champion_metadata(champion, f"rolled back by {config.actor} (signed): {config.reason}", governance.policy().label),
        )
    )
    context.log.info(f"{champion.label} is champion again ({config.reason})")


class RolloutConfig(SignedConfig):
    version: str  # the challenger in (or entering) the canary cell
    approver: str


@dg.op
def start_canary(context: dg.OpExecutionContext, config: RolloutConfig, portfolios: Portfolios) -> None:
    portfolio = portfolios.named(context.run_tags[PORTFOLIO_TAG])
    registry, governance = portfolio.registry, portfolio.governance
    state = governance.start_canary(registry, config.request("canary", registry.model_name, config.approver, config.version), run_id=context.run_id)
    context.log.info(f"{registry.model_name}/{state.version} decides {state.share:.0%} of applicants from the next scoring, started by {config.approver}")


@dg.op
def advance_rollout(context: dg.OpExecutionContext, config: RolloutConfig, portfolios: Portfolios) -> None:
    """The next step when the current step's gates hold on the cell's decisions since it began; the
    last step promotes the challenger (recorded as the champion is, so sensors and reports see it)."""
    portfolio = portfolios.named(context.run_tags[PORTFOLIO_TAG])
    registry, governance = portfolio.registry, portfolio.governance
    rules = governance.rollout_rules()
    gates, months = step_gates_of(portfolio, context.instance, governance.rollout(registry))
    context.log.info(f"step gates on {', '.join(months) or 'no month'}: " + "; ".join(f"{g.name} {g.value} {'pass' if g.passed else 'FAIL'}" for g in gates))
    result = governance.advance(registry, config.request("advance", registry.model_name, config.approver, config.version), gates, run_id=context.run_id)
    if isinstance(result, RegisteredModel):  # the last step: a promotion
        context.log_event(
            dg.AssetMaterialization(
                [portfolio.name, CHAMPION_MODEL],
                metadata=champion_metadata(
                    result, f"promoted by its rollout's last step, approved by {config.approver} (signed): {config.reason}", rules.label
                ),
            )
        )
    context.log.info(f"{registry.model_name}/{config.version}: {'champion' if isinstance(result, RegisteredModel) else rules.step_label(result.step)}")


def step_gates_of(portfolio, instance: dg.DagsterInstance, rollout) -> tuple[list, list[str]]:
    """The rollout policy's step gates on the canary cell's decisions of every month scored at the
    current step (Dagster's records of risk_scores say which), with their labels where matured."""
    import pandas as pd

    from pipelines.sensors import latest_metadata_by_month
    from riskcore.rollout import CANARY, step_gates

    scored = latest_metadata_by_month(instance, dg.AssetKey([portfolio.name, SCORES]))
    months = sorted(m for m, r in scored.items() if r.get("rollout_step") == rollout.step and r.get("canary_version") == rollout.version)
    cells, groups = [], []
    for month in months:
        frame, sensitive, target = portfolio.rollout_rows(month)
        canary = (frame["cell"] == CANARY).to_numpy()
        cells.append(frame.loc[canary].rename(columns={target: "defaulted"} if target else {}).reset_index(drop=True))
        groups.append(sensitive[canary].reset_index(drop=True))
    empty = pd.DataFrame({"challenger_pd": [], "champion_pd": [], "decision": []})
    cell = pd.concat(cells, ignore_index=True) if cells else empty
    sensitive = pd.concat(groups, ignore_index=True) if groups else pd.DataFrame(columns=list(portfolio.spec.sensitive_attributes))
    return step_gates(portfolio.governance.rollout_rules(), cell, sensitive, "defaulted" if "defaulted" in cell else None), months


def portfolio_jobs(portfolio: str, partitions: dg.PartitionsDefinition) -> dict:
    """Every job of one portfolio, by its short name."""

    def assets(*names: str) -> dg.AssetSelection:
        return dg.AssetSelection.assets(*[[portfolio, n] for n in names])

    def asset_job(job: str, selection: dg.AssetSelection, description: str, kind: str | None = None, partitioned: bool = True):
        return dg.define_asset_job(
            job_name(portfolio, job),
            selection=selection,
            description=description,
            partitions_def=partitions if partitioned else None,
            tags={PORTFOLIO_TAG: portfolio, **({RUN_KIND: kind} if kind else {})},
        )

    ingestion = assets(*INGESTION_ASSETS)
    jobs = {
        "monthly_ingestion_job": asset_job(
            "monthly_ingestion_job", ingestion, "Land, conform and tokenise one month of applications; build its features and outcomes."
        ),
        "model_training_job": asset_job(
            "model_training_job",
            assets(TRAINING_SET, RISK_MODEL, MODEL_EVALUATION, CHAMPION_MODEL),
            "Assemble matured training data, train and register a candidate, judge it against the gates, settle the champion.",
            kind="training",
            partitioned=False,
        ),
        "monthly_scoring_job": asset_job(
            "monthly_scoring_job",
            ingestion | assets(SCORES, CHALLENGER_SCORES, SWAP_SET),
            "Ingest one month and score it: the champion decides, or in a rollout's canary cell the challenger; the challenger's shadow scores and the swap set beside.",
            kind="scoring",
        ),
        "monthly_cycle_job": asset_job(
            "monthly_cycle_job",
            ingestion | assets(SCORES, CHALLENGER_SCORES, SWAP_SET, REVIEW_QUEUE, DRIFT, STABILITY, ESTIMATED, REPORT),
            "The month's whole cycle: ingest, score (by cell during a staged rollout, with the challenger's shadow scores and the swap set), queue its referrals "
            "for review, measure drift and stability, estimate performance, build and publish the regulatory report.",
            kind="scoring",
        ),
        "monitoring_job": asset_job(
            "monitoring_job",
            assets(DRIFT, STABILITY, ESTIMATED),
            "Drift of one month against the champion's training reference, the stability pack (CSI, score bands, gains, calibration by band), and performance estimated from the scores before labels mature.",
        ),
        "performance_job": asset_job(
            "performance_job",
            assets(OUTCOMES, PERFORMANCE, SWAP_SET),
            "Load a month's matured default flags and measure the model that scored it (nothing before they mature); refresh the swap set's "
            "canary-cell figures with them.",
        ),
        "review_job": asset_job(
            "review_job",
            assets(*REVIEW_ASSETS),
            "Queue a month's referrals for review (again: nothing is queued twice), gather what officers decided into the final decisions "
            "and the override metrics, checked against the override band and the review service level (a breach alerts).",
        ),
        "regulatory_report_job": asset_job(
            "regulatory_report_job",
            assets(REPORT),
            "Build (or rebuild and compare with the published) regulatory report of one month, or of a range in one run.",
        ),
    }
    tags = {PORTFOLIO_TAG: portfolio}
    jobs["promotion_job"] = dg.GraphDefinition(f"{portfolio}_promotion", node_defs=[approve_and_promote]).to_job(
        name=job_name(portfolio, "promotion_job"),
        tags=tags,
        description="Approve a challenger (a request signed by an approver the promotion policy lists) and promote it if its gates passed.",
    )
    jobs["rollback_job"] = dg.GraphDefinition(f"{portfolio}_rollback", node_defs=[roll_back_champion]).to_job(
        name=job_name(portfolio, "rollback_job"),
        tags=tags,
        description="Point champion back to previous_champion, or to a named version that passed its gates; while a rollout runs, return its "
        "canary cell to the champion (a signed request from the rollback list or a service allowed to).",
    )
    jobs["canary_job"] = dg.GraphDefinition(f"{portfolio}_canary", node_defs=[start_canary]).to_job(
        name=job_name(portfolio, "canary_job"),
        tags=tags,
        description="Start a challenger's staged rollout: its canary cell (the rollout policy's first share, a keyed hash of the application id) "
        "is decided by it from the next scoring (a request signed by an approver; its offline gates passed).",
    )
    jobs["advance_job"] = dg.GraphDefinition(f"{portfolio}_advance", node_defs=[advance_rollout]).to_job(
        name=job_name(portfolio, "advance_job"),
        tags=tags,
        description="Advance the rollout one step when the step's gates hold in the canary cell (decisions, estimated and realised AUC against the "
        "champion, adverse impact ratio); the last step promotes the challenger (a request signed by an approver).",
    )
    return jobs
