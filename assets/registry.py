"""The challenger judged against the champion, and which registered version scores applications."""

import dagster as dg

from assets.training import sensitive_attributes
from resources.portfolios import Portfolios
from resources.registry import CHALLENGER, CHAMPION
from riskcore.datasets import APPLICATIONS, RISK_MODEL, TRAINING_SET

TRAINING = "training"


# training_set: the out-of-time rows; applications: their sensitive attributes, for the fairness gate.
@dg.asset(group_name=TRAINING, kinds={"mlflow"}, deps=[RISK_MODEL, TRAINING_SET, APPLICATIONS])
def model_evaluation(context: dg.AssetExecutionContext, portfolios: Portfolios) -> dg.MaterializeResult:
    """Every promotion gate of the policy, challenger and champion on the same out-of-time rows;
    recorded on the model version (MLflow tags), here, and in the governance ledger."""
    from riskcore.features import feature_specs, model_matrix
    from riskcore.gates import evaluate_gates
    from riskcore.training import SAMPLE_COLUMN

    portfolio = portfolios.of(context)
    landing, store, registry, governance = portfolio.landing, portfolio.store, portfolio.registry, portfolio.governance
    contract = landing.applications()
    specs, target = feature_specs(contract), landing.outcomes().only("target")
    challenger, champion = registry.by_alias(CHALLENGER), registry.by_alias(CHAMPION)
    if challenger is None:
        raise ValueError(f"no `{CHALLENGER}` version of {registry.model_name} to evaluate: materialise risk_model first")
    policy = governance.policy()
    compared = champion if champion and champion.version != challenger.version else None
    recorded = registry.version_tags(challenger.version)
    same_comparison = recorded.get("gates_compared_with") == (compared.label if compared else "none") or (champion == challenger)
    if recorded.get("gates_policy") == policy.label and recorded.get("model_card") and same_comparison:
        # Registration is idempotent: a rerun (after a killed run, say) on the same training set and code has the same
        # challenger, already judged under this policy against the same champion (or since promoted). Its gates, ledger
        # entries and card (with the approvals appended to it since) stand; evaluating again would only repeat them.
        return dg.MaterializeResult(metadata=_recorded_evaluation(challenger, recorded))
    frame = store.read(TRAINING_SET)
    oot, train = frame[frame[SAMPLE_COLUMN] == "out_of_time"], frame[frame[SAMPLE_COLUMN] == "train"]
    sensitive = sensitive_attributes(portfolio, oot)
    model = registry.load(challenger.version)
    pd_oot, pd_train = model.predict_pd(model_matrix(oot, specs)), model.predict_pd(model_matrix(train, specs))
    champion_pd = registry.load(compared.version).predict_pd(model_matrix(oot, specs)) if compared else None
    decision = portfolio.decision_policy()
    approved = decision.decide(decision.points(pd_oot)) == "approve"
    gates = evaluate_gates(
        policy,
        oot[target].to_numpy(),
        pd_oot,
        champion_pd,
        pd_train,
        approved,
        sensitive,
        signature_ok=sorted(model.feature_names) == sorted(s.name for s in specs),
        contract_label=f"portfolio {portfolio.name} ({portfolio.spec.file})",
    )
    passed = all(g.passed for g in gates)
    summary = {
        g.name: {"value": None if g.value is None else round(float(g.value), 6), "threshold": g.threshold, "passed": g.passed, "note": g.note} for g in gates
    }
    registry.tag_version(
        challenger.version,
        {
            **{
                f"gate.{name}": f"{r['value']} {'pass' if r['passed'] else 'FAIL'} ({r['threshold']})" + (f"; {r['note']}" if r["note"] else "")
                for name, r in summary.items()
            },
            "gates_passed": str(passed).lower(),
            "gates_policy": policy.label,
            "gates_compared_with": compared.label if compared else "none",
        },
    )
    ledger = governance.ledger()
    ledger.append(
        "gate_results",
        challenger.label,
        "pipeline",
        {
            "gates": summary,
            "passed": passed,
            "policy": policy.label,
            "compared_with": compared.label if compared else None,
            "out_of_time_rows": len(oot),
            "dagster_run_id": context.run_id,
        },
    )
    governance.anchor(registry)
    card = _model_card(challenger, registry, ledger, frame, specs, gates, policy, compared, pd_oot, oot[target].to_numpy(), approved, sensitive)
    return dg.MaterializeResult(
        metadata={
            "model_card": dg.MetadataValue.url(card) if "://" in card else dg.MetadataValue.path(card),
            "challenger": challenger.label,
            "compared_with": compared.label if compared else "none (no champion yet)",
            "gates_passed": passed,
            "failed_gates": ", ".join(n for n, r in summary.items() if not r["passed"]) or "none",
            "policy": policy.label,
            "gates": summary,
        }
    )


def _recorded_evaluation(challenger, tags: dict[str, str]) -> dict:
    """The metadata of an evaluation recorded before, read back from the version's tags."""
    gates = {k.removeprefix("gate."): v for k, v in sorted(tags.items()) if k.startswith("gate.")}
    card = tags["model_card"]
    return {
        "model_card": dg.MetadataValue.url(card) if "://" in card else dg.MetadataValue.path(card),
        "challenger": challenger.label,
        "compared_with": tags["gates_compared_with"],
        "gates_passed": tags.get("gates_passed") == "true",
        "failed_gates": ", ".join(n for n, v in gates.items() if " FAIL " in v) or "none",
        "policy": tags["gates_policy"],
        "gates": gates,
        "evaluation": "as recorded: the same challenger (same training set and code) was judged before under this policy",
    }


def _model_card(challenger, registry, ledger, frame, specs, gates, policy, compared, pd_oot, y, approved, sensitive) -> str:
    """Render the card of the challenger and log it to its MLflow run; returns the artifact URI."""
    from riskcore.gates import adverse_impact_ratio, calibration_table
    from riskcore.model_card import render_model_card
    from riskcore.months import sample_windows
    from riskcore.training import SAMPLE_COLUMN

    tags = registry.version_tags(challenger.version)
    text = render_model_card(
        model=challenger.label,
        run_id=challenger.run_id,
        lineage={
            k: tags.get(k, "") for k in ("feature_set_version", "contract_version", "training_set_sha256", "training_sample", "code_version", "dagster_run_id")
        },
        windows=sample_windows(frame, SAMPLE_COLUMN, "application_month"),
        specs=specs,
        metrics=registry.run_metrics(challenger.run_id),
        calibration=calibration_table(y, pd_oot, policy.calibration_confidence, policy.calibration_tolerance, policy.calibration_min_expected_defaults).round(
            4
        ),
        gates=gates,
        policy=policy.label,
        compared_with=compared.label if compared else None,
        approval_rates={c: adverse_impact_ratio(approved, sensitive[c], policy.min_group_size)[1] for c in sensitive.columns},
        ledger=[(e.kind, e.actor, e.recorded_at) for e in ledger.entries(subject=challenger.label)],
        rollout=ledger.entries(),
    )
    uri = registry.log_text(challenger.run_id, text, "model_card.md")
    registry.tag_version(challenger.version, {"model_card": uri})
    return uri


@dg.asset(group_name=TRAINING, kinds={"mlflow"}, deps=[model_evaluation])
def champion_model(context: dg.AssetExecutionContext, portfolios: Portfolios) -> dg.MaterializeResult:
    """The version behind `champion`. A challenger is promoted here only by an auto-approval the
    policy grants (development); otherwise it waits for `make approve` or the promotion job."""
    from riskcore.promotion import PromotionRefused, auto_approval

    portfolio = portfolios.of(context)
    registry, governance = portfolio.registry, portfolio.governance
    champion, challenger = registry.by_alias(CHAMPION), registry.by_alias(CHALLENGER)
    policy = governance.policy()
    outcome = "no challenger"
    if challenger is not None and (champion is None or challenger.version != champion.version):
        if auto_approval(policy, champion is not None):
            try:
                champion = governance.promote(registry, challenger.version, None, run_id=context.run_id)
                outcome = f"promoted {challenger.label} ({policy.auto_approve} auto-approval)"
            except PromotionRefused as refused:
                outcome = f"not promoted: {refused}"
        else:
            outcome = f"{challenger.label} awaits approval: make approve PORTFOLIO={portfolio.name} VERSION={challenger.version} APPROVER=... REASON=..."
    if champion is None:
        raise ValueError(f"{registry.model_name} has no champion ({outcome})")
    return dg.MaterializeResult(
        metadata={
            **champion_metadata(champion, outcome, policy.label),
            "challenger_version": challenger.version if challenger else "",
            "auto_approve": policy.auto_approve,
        }
    )


def champion_metadata(champion, promotion: str, policy: str) -> dict:
    """Recorded whenever the champion is settled: by this asset, and by the promotion and rollback
    jobs, so Dagster's records alone say which version is champion (the rollback sensor reads them)."""
    return {"model_name": champion.name, "champion_version": champion.version, "mlflow_run_id": champion.run_id, "promotion": promotion, "policy": policy}
