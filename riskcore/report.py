"""The monthly regulatory report: one JSON document for machines, one HTML page for people.

Built only from recorded inputs (the month's files, datasets, the model versions recorded with
its scores, their gates and ledger trail), never from the clock or today's champion: the same
inputs give the same bytes. Sections are digested one by one, so a rebuild that differs from
the published report names what changed.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from riskcore.charts import expected_vs_observed, grouped_bars, horizontal_bars, line_chart
from riskcore.drift import psi_band as psi_band_of
from riskcore.escaping import html_text
from riskcore.gates import adverse_impact_ratio
from riskcore.joins import aligned
from riskcore.metrics import calibration_by_decile
from riskcore.monitoring_policy import MonitoringPolicy
from riskcore.performance import realised_performance
from riskcore.stability import band_codes, band_labels, gains_table, grade_calibration

REPORT_KIND = "monthly PD model report"


@dataclass
class OverrideInputs:
    """What people decided about the last month whose review window has closed (the month before the
    report's), as recorded: its final_decisions and override_metrics, and the final decisions of the
    back-test cohort with their realised outcome."""

    month: str | None = None  # the month whose reviews these are
    final: pd.DataFrame | None = None  # final_decisions of that month (id column renamed application_id); None: not materialised
    metrics: dict | None = None  # override_metrics of that month
    groups: pd.DataFrame | None = None  # that month's accepted applications: application_id and the sensitive columns
    note: str = ""
    cohort: str | None = None
    cohort_final: pd.DataFrame | None = None  # the cohort's overridden applications: `side`, `pd`, `defaulted`


# What the report reads of the month's scores besides the id (not the reason columns, most of the file).
SCORE_COLUMNS = [
    *("decision", "score_points", "pd", "cell", "rollout_step", "canary_share"),
    *("model_name", "model_version", "feature_set_version", "policy_version", "code_version", "dagster_run_id"),
]
# Of those, the text columns of a few values a month (decisions, cells, lineage): read as categories, straight
# from Parquet's dictionaries (no Python string per row); the report's figures are the same either way.
SCORE_CATEGORIES = ["decision", "cell", "model_name", "model_version", "feature_set_version", "policy_version", "code_version", "dagster_run_id"]


@dataclass
class ReportInputs:
    month: str
    input_files: list[dict]  # name, sha256, rows received
    applications: pd.DataFrame  # accepted: contract_version, source_file_sha256, sensitive columns
    quarantine_reasons: dict[str, int]  # column:rule -> rows
    quarantined: int
    scores: pd.DataFrame  # the month's risk_scores: the id (as application_id) and SCORE_COLUMNS
    models: list[dict]  # per version that scored the month: label, run_id, gates, trail
    sensitive: list[str]
    min_group_size: int
    min_adverse_impact_ratio: float
    decision_policy: str
    monitoring: MonitoringPolicy  # its frozen score bands and per-band calibration test
    drift: pd.DataFrame | None = None  # drift_report of the month
    drift_reference: str | None = None  # the version whose training reference it was measured against
    psi_thresholds: dict[str, float] = field(default_factory=dict)  # band name -> PSI from which it applies, as the drift was read
    backtest_cohort: str | None = None
    backtest: pd.DataFrame | None = None  # the cohort's scores with their realised outcome (`pd`, `score_points`, `defaulted`)
    backtest_note: str = ""
    backtest_in_sample: dict = field(default_factory=dict)  # model version -> the cohort lies in its training window (True/False/"unknown")
    overrides: OverrideInputs = field(default_factory=OverrideInputs)
    performance_history: list[dict] = field(default_factory=list)  # per month up to this one: estimated AUC with bounds, realised AUC once matured
    stability_pack: dict | None = None  # the month's stability_pack: `notes` (pack.json), `characteristics` and `score_bands` tables
    swap_set: pd.DataFrame | None = None  # the month's swap_set (champion x challenger decisions); None: no challenger then


def _round(value, digits: int = 6):
    return None if value is None or (isinstance(value, float) and np.isnan(value)) else round(float(value), digits)


def build_report(inputs: ReportInputs) -> dict:
    scores, received = inputs.scores, sum(f["rows"] for f in inputs.input_files)
    accepted = len(inputs.applications)
    decisions = scores["decision"].value_counts()
    edges = inputs.monitoring.score_bands
    band_counts = np.bincount(band_codes(scores["score_points"].to_numpy(), edges), minlength=len(edges) - 1)
    approved = (scores["decision"] == "approve").to_numpy()
    # each score's applicant: the applications as they are when written in the scores' order (no million-id lookup)
    applicants = aligned(scores["application_id"], inputs.applications, "application_id", complete=True)
    fairness = {}
    for column in inputs.sensitive:
        ratio, rates = adverse_impact_ratio(approved, applicants[column], inputs.min_group_size)
        fairness[column] = {
            "approval_rate_by_group": rates,
            "adverse_impact_ratio": _round(ratio, 4),
            "threshold": inputs.min_adverse_impact_ratio,
            "passed": None if ratio is None else ratio >= inputs.min_adverse_impact_ratio,
        }
    return {
        "report": {"kind": REPORT_KIND, "month": inputs.month, "decision_policy": inputs.decision_policy},
        "volumes": {
            "received": received,
            "accepted": accepted,
            "quarantined": inputs.quarantined,
            "scored": len(scores),
            "reconciled": received == accepted + inputs.quarantined and len(scores) == accepted,
        },
        "decisions": {
            d: {"count": int(decisions.get(d, 0)), "rate": _round(decisions.get(d, 0) / max(len(scores), 1), 4)} for d in ("approve", "refer", "decline")
        },
        "score_distribution": {
            "bands": [{"points": b, "count": int(n)} for b, n in zip(band_labels(edges), band_counts)],
            "pd_mean": _round(scores["pd"].mean()),
            "pd_quantiles": {f"p{q}": _round(scores["pd"].quantile(q / 100)) for q in (5, 25, 50, 75, 95)},
        },
        "backtest": _backtest(inputs),
        "performance_over_time": {"months": [{k: _round(v) if k != "month" else v for k, v in row.items()} for row in inputs.performance_history]},
        "stability": _stability(inputs),
        **_stability_pack(inputs),
        "fairness": fairness,
        "models": inputs.models,
        "contract": {
            "contract_versions": sorted(inputs.applications["contract_version"].unique().tolist()),
            "quarantine_by_rule": dict(sorted(inputs.quarantine_reasons.items())),
            "quarantined_share": _round(inputs.quarantined / received if received else 0.0, 4),
        },
        "overrides": _overrides(inputs),
        "rollout": _rollout(inputs),
        "lineage": {
            "input_files": sorted(inputs.input_files, key=lambda f: f["name"]),
            "accepted_file_digests": sorted(inputs.applications["source_file_sha256"].unique().tolist()),
            "model_versions": sorted(f"{n}/{v}" for n, v in scores[["model_name", "model_version"]].drop_duplicates().itertuples(index=False)),
            "feature_set_versions": sorted(scores["feature_set_version"].unique().tolist()),
            "policy_versions": sorted(scores["policy_version"].unique().tolist()),
            "code_versions": sorted(scores["code_version"].unique().tolist()),
            "scoring_dagster_run_ids": sorted(scores["dagster_run_id"].unique().tolist()),
        },
    }


def _rollout(inputs: ReportInputs) -> dict:
    """The challenger on live applications this month: the step, each cell's volume, deciding
    version and approval rate (they reconcile with the decisions above), and the swap set."""
    scores = inputs.scores
    cells = [
        {
            "cell": cell,
            "decisions": len(part),
            "share": _round(len(part) / len(scores), 4),
            "decided_by": ", ".join(sorted(part["model_version"].unique())),
            "approve_rate": _round((part["decision"] == "approve").mean(), 4),
            "mean_pd": _round(part["pd"].mean()),
        }
        for cell, part in sorted(scores.groupby("cell", observed=True), key=lambda group: group[0])  # by name, also when a category
    ]
    swap = [] if inputs.swap_set is None else _records(inputs.swap_set, list(inputs.swap_set.columns))
    return {
        "rollout_step": int(scores["rollout_step"].max()),
        "canary_share": _round(scores["canary_share"].max(), 4),
        "cells": cells,
        "swap_set": swap,
        "note": "" if swap else "no challenger beside the champion when the month was scored: no shadow scores, no swap set",
    }


def _backtest(inputs: ReportInputs) -> dict:
    if inputs.backtest is None or not len(inputs.backtest):
        return {"cohort": inputs.backtest_cohort, "available": False, "note": inputs.backtest_note}
    frame = inputs.backtest
    measured = realised_performance(frame["defaulted"].to_numpy(), frame["pd"].to_numpy())
    deciles = calibration_by_decile(frame["defaulted"].to_numpy(), frame["pd"].to_numpy())
    return {
        "cohort": inputs.backtest_cohort,
        "available": True,
        "note": inputs.backtest_note,
        "model_versions": sorted(frame["model_version"].unique().tolist()),
        # a back-test on months the model learnt from shows fit, not performance
        "in_sample": inputs.backtest_in_sample,
        **{k: int(v) if k in ("rows", "defaults") else _round(v) for k, v in measured.items()},
        "pd_vs_realised_by_decile": [
            {"decile": int(r.decile), "rows": int(r.rows), "mean_pd": _round(r.expected_rate), "default_rate": _round(r.observed_rate)}
            for r in deciles.itertuples()
        ],
    }


MAX_LISTED_OVERRIDES = 500
METRIC_KEYS = ("review_policy", "applications", "reviewed", "overrides", "override_rate", "high_side", "high_side_rate", "low_side", "low_side_rate")
REFERRAL_KEYS = ("referred", "decided", "approved", "approve_rate")


def _overrides(inputs: ReportInputs) -> dict:
    """Of the month before the report's (its review window closed when the report's month was scored):
    override rates by side, reason, officer and segment, and its referral decisions apart (its
    override_metrics), the adverse impact ratio of the final decisions beside the model's, the
    overrides themselves (by ledger entry), and the realised default rate of the matured cohort's
    overridden loans against their PD."""
    given = inputs.overrides
    if given.final is None or given.metrics is None:
        return {"month": given.month, "available": False, "note": given.note}
    final, metrics = given.final, given.metrics
    by_id = given.groups.astype({"application_id": str}).set_index("application_id")  # final_decisions keeps ids as text
    fairness = {}
    for column in inputs.sensitive:
        groups = by_id.loc[final["application_id"], column].reset_index(drop=True)
        model, _ = adverse_impact_ratio((final["model_decision"] == "approve").to_numpy(), groups, inputs.min_group_size)
        officers, rates = adverse_impact_ratio((final["final_decision"] == "approve").to_numpy(), groups, inputs.min_group_size)
        fairness[column] = {
            "model": _round(model, 4),
            "final": _round(officers, 4),
            "final_approval_rate_by_group": rates,
            "threshold": inputs.min_adverse_impact_ratio,
        }
    overridden = final[final["side"].notna()].sort_values(["ledger_seq", "application_id"], na_position="last")
    listed = overridden.head(MAX_LISTED_OVERRIDES)
    referrals = metrics["referral_decisions"]
    return {
        "month": given.month,
        "available": True,
        "note": given.note,
        **{k: _round(metrics[k], 6) if isinstance(metrics[k], float) else metrics[k] for k in METRIC_KEYS},
        "referrals_count_as_overrides": metrics["referrals_count_as_overrides"],
        "referral_decisions": {
            **{k: _round(referrals[k], 6) for k in REFERRAL_KEYS},
            "by_officer": {o: {k: _round(v, 6) for k, v in x.items()} for o, x in referrals["by_officer"].items()},
        },
        "override_rate_band": metrics["override_rate_band"],
        "within_band": metrics["within_band"],
        "by_reason": metrics["by_reason"],
        "by_officer": metrics["by_officer"],
        "by_segment": metrics["by_segment"],
        "adverse_impact_ratio": fairness,
        "listed": f"{len(listed)} of {len(overridden)}",
        "entries": [
            {
                "ledger_seq": None if pd.isna(r["ledger_seq"]) else int(r["ledger_seq"]),
                "application_id": str(r["application_id"]),
                "from": r["model_decision"],
                "to": r["final_decision"],
                "side": r["side"],
                "reason": r["reason"],
                "officer": r["officer"],
                "second_officer": None if pd.isna(r["second_officer"]) else r["second_officer"],
                "note": r["note"],
            }
            for r in listed.to_dict("records")
        ],
        "matured_cohort": _overrides_realised(given),
    }


def _overrides_realised(given: OverrideInputs) -> dict:
    frame = given.cohort_final
    if frame is None:
        return {"cohort": given.cohort, "available": False}
    sides = {"all": frame, **{s: frame[frame["side"] == s] for s in ("high", "low")}}
    return {
        "cohort": given.cohort,
        "available": True,
        "by_side": {
            s: {
                "rows": len(f),
                "defaults": int(f["defaulted"].sum()),
                "default_rate": _round(f["defaulted"].mean()) if len(f) else None,
                "mean_pd": _round(f["pd"].mean()) if len(f) else None,
            }
            for s, f in sides.items()
        },
    }


def _stability(inputs: ReportInputs) -> dict:
    if inputs.drift is None:
        return {"available": False}
    drift = inputs.drift.sort_values("column")
    return {
        "available": True,
        "reference": inputs.drift_reference,
        "score_psi": _round(drift.loc[drift["column"] == "pd", "psi"].iloc[0]) if (drift["column"] == "pd").any() else None,
        "drifted_columns": drift.loc[drift["drifted"], "column"].tolist(),
        "psi_thresholds": inputs.psi_thresholds,
        "psi": {r.column: {"psi": _round(r.psi), "band": r.psi_band, "drifted": bool(r.drifted)} for r in drift.itertuples()},
    }


def _records(frame: pd.DataFrame, columns: list[str]) -> list[dict]:
    """Rows as JSON records: floats rounded (NaN as null), integers and text as they are."""
    return [
        {c: _round(v) if isinstance(v, float) else v.item() if isinstance(v, np.generic) else v for c, v in zip(columns, row)}
        for row in frame[columns].itertuples(index=False)
    ]


def _stability_pack(inputs: ReportInputs) -> dict:
    """The validator's stability pack: the month's characteristic analysis and score bands against the
    scoring version's training window (read from its stability_pack), and the gains and per-band
    calibration tables of the back-tested cohort (riskcore.stability on the back-test's rows)."""
    pack = inputs.stability_pack
    notes = pack["notes"] if pack else {"reference": "not available: no stability pack for this month"}
    judged = pack is not None and len(pack["characteristics"]) > 0
    characteristic = {"available": judged, "note": notes["reference"]}
    score_bands = {"available": judged, "note": notes["reference"]}
    if judged:
        table, policy = pack["characteristics"], inputs.monitoring
        characteristic["features"] = [
            {
                "feature": name,
                "csi": _round(rows["csi"].sum()),
                "band": psi_band_of(rows["csi"].sum(), policy),
                "score_shift_points": _round(rows["shift_points"].sum(), 4),
                "bins": _records(rows, ["bin", "reference_share", "current_share", "current_rows", "reference_points", "current_points", "csi"]),
            }
            for name, rows in table.groupby("feature", sort=False)
        ]
        bands = pack["score_bands"]
        score_bands |= {"psi": _round(bands["psi"].sum()), "band": psi_band_of(bands["psi"].sum(), policy)}
        # current against reference share per frozen band: the data of a "score distribution against the reference" chart
        score_bands["bands"] = _records(bands, ["band", "reference_share", "current_share", "current_rows"])
    frame, policy = inputs.backtest, inputs.monitoring
    cohort = {"cohort": inputs.backtest_cohort, "available": frame is not None and len(frame) > 0, "note": inputs.backtest_note}
    gains, calibration = dict(cohort), dict(cohort)
    if cohort["available"]:
        y, pd_, points = frame["defaulted"].to_numpy(), frame["pd"].to_numpy(), frame["score_points"].to_numpy()
        table = gains_table(points, y, policy.score_bands)
        gains |= {"ks": _round(table["ks"].max()), "bands": _records(table, list(table.columns))}
        grades = grade_calibration(pd_, y, points, policy.score_bands, policy)
        calibration |= {
            "confidence": policy.calibration_confidence,
            "tolerance": policy.calibration_tolerance,
            "min_expected_defaults": policy.calibration_min_expected_defaults,
            "grades": _records(grades, list(grades.columns)),
        }
    return {"characteristic_analysis": characteristic, "score_band_stability": score_bands, "gains": gains, "grade_calibration": calibration}


def canonical_json(doc: dict) -> bytes:
    return (json.dumps(doc, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False) + "\n").encode()


def section_digests(doc: dict) -> dict[str, str]:
    return {k: hashlib.sha256(canonical_json(v)).hexdigest() for k, v in sorted(doc.items())}


def report_digest(json_bytes: bytes, html_bytes: bytes) -> str:
    return hashlib.sha256(hashlib.sha256(json_bytes).digest() + hashlib.sha256(html_bytes).digest()).hexdigest()


def changed_sections(published: dict[str, str], rebuilt: dict[str, str]) -> list[str]:
    return sorted(k for k in set(published) | set(rebuilt) if published.get(k) != rebuilt.get(k))


def render_html(doc: dict) -> str:
    """A page a reviewer reads; every figure is the JSON's, nothing is computed here. Every value
    (ids, categories, group values, column names, names and reasons people typed) goes through
    `html_text`: text, never markup; the page has no links or scripts of its own. Charts are
    inline SVG (riskcore.charts) of figures the JSON holds, right after the table they illustrate."""
    e = html_text
    month = doc["report"]["month"]

    def table(rows: list[dict]) -> str:
        if not rows:
            return "<p>none</p>"
        columns = list(dict.fromkeys(k for r in rows for k in r))  # rows may differ: cells go by column name
        head = "".join(f"<th>{e(str(k))}</th>" for k in columns)
        body = "".join("<tr>" + "".join(f"<td>{e(_fmt(r.get(k)))}</td>" for k in columns) + "</tr>" for r in rows)
        return f"<table><tr>{head}</tr>{body}</table>"

    v, b, s = doc["volumes"], doc["backtest"], doc["stability"]
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{e(doc['report']['kind'])} {e(month)}</title>",
        "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}table{border-collapse:collapse;margin:.5em 0}"
        "td,th{border:1px solid #ccc;padding:.2em .6em;text-align:right}th{background:#f3f3f3}</style></head><body>",
        f"<h1>{e(doc['report']['kind'][:1].upper() + doc['report']['kind'][1:])}: {e(month)}</h1>",
        f"<p>Decision policy {e(doc['report']['decision_policy'])}. Every figure below is in the JSON document of the same month; "
        "the lineage section names the files, versions and runs behind it.</p>",
        "<h2>Volumes</h2>",
        table([v]),
        "<h2>Decisions</h2>",
        table([{"decision": d, **x} for d, x in doc["decisions"].items()]),
        "<h2>Score distribution</h2>",
        table(doc["score_distribution"]["bands"]),
        table([{"mean PD": doc["score_distribution"]["pd_mean"], **doc["score_distribution"]["pd_quantiles"]}]),
        f"<h2>Back-test: PD against realised default rate (cohort {e(str(b['cohort']))})</h2>",
        table([{k: b[k] for k in ("rows", "defaults", "default_rate", "mean_pd", "auc", "gini", "ks", "brier")}])
        + table([{"model version": v, "cohort in its training window (in-sample)": x} for v, x in b.get("in_sample", {}).items()])
        + table(b["pd_vs_realised_by_decile"])
        + expected_vs_observed(
            "Realised default rate against mean PD, by PD decile",
            [f"decile {r['decile']}" for r in b["pd_vs_realised_by_decile"]],
            [r["mean_pd"] for r in b["pd_vs_realised_by_decile"]],
            [r["default_rate"] for r in b["pd_vs_realised_by_decile"]],
            "mean PD",
            "realised default rate",
        )
        if b["available"]
        else f"<p>not available: {e(b['note'])}</p>",
        "<h2>Estimated against realised AUC over the months</h2>",
        "<p>Estimated from each month's PDs when it was scored (CBPE, bounds where the realised AUC falls if calibration holds); "
        "realised once the month's labels matured.</p>"
        + table(doc["performance_over_time"]["months"])
        + line_chart(
            "AUC: estimated before labels mature against realised",
            [r["month"] for r in doc["performance_over_time"]["months"]],
            [
                ("estimated", [r["estimated_auc"] for r in doc["performance_over_time"]["months"]]),
                ("realised", [r["realised_auc"] for r in doc["performance_over_time"]["months"]]),
            ],
            "month",
            "AUC",
            band=(
                "estimate bounds",
                [r["estimated_auc_low"] for r in doc["performance_over_time"]["months"]],
                [r["estimated_auc_high"] for r in doc["performance_over_time"]["months"]],
            ),
        ),
        "<h2>Stability and drift</h2>",
        (
            f"<p>Against the training reference of {e(str(s['reference']))}; score PSI {e(_fmt(s['score_psi']))}; drifted: {e(', '.join(s['drifted_columns']) or 'none')}.</p>"
            + table([{"column": c, **x} for c, x in s["psi"].items()])
            + horizontal_bars(
                "PSI per column against the training reference",
                list(s["psi"]),
                [x["psi"] for x in s["psi"].values()],
                sorted(s.get("psi_thresholds", {}).items()),
                "PSI",
            )
        )
        if s["available"]
        else "<p>no drift report for this month</p>",
        *_stability_pack_html(doc, table),
        "<h2>Fairness (adverse impact ratio)</h2>",
        table(
            [
                {
                    "attribute": a,
                    "ratio": x["adverse_impact_ratio"],
                    "threshold": x["threshold"],
                    "passed": x["passed"],
                    **{f"approval {g}": r for g, r in x["approval_rate_by_group"].items()},
                }
                for a, x in doc["fairness"].items()
            ]
        ),
        "<h2>Models that scored the month</h2>",
    ]
    for model in doc["models"]:
        parts += [
            f"<h3>{e(model['label'])}</h3><p>MLflow run {e(model['run_id'])}; gates {e(model['gates_policy'])}: "
            f"{'passed' if model['gates_passed'] else 'NOT passed'}</p>",
            table([{"gate": g, **r} for g, r in model["gates"].items()]),
            table(model["trail"]),
        ]
    parts += [
        "<h2>Contract results</h2>",
        table([{"contract versions": ", ".join(doc["contract"]["contract_versions"]), "quarantined share": doc["contract"]["quarantined_share"]}]),
        table([{"rule": r, "rows": n} for r, n in doc["contract"]["quarantine_by_rule"].items()]),
        f"<h2>Overrides and referral decisions: reviews of {html_text(str(doc['overrides']['month']))}</h2>",
        _overrides_html(doc["overrides"], table),
        *_rollout_html(doc["rollout"], table),
        "<h2>Lineage</h2>",
        table(doc["lineage"]["input_files"]),
        table([{"what": k, "values": ", ".join(v)} for k, v in doc["lineage"].items() if k != "input_files"]),
        "</body></html>\n",
    ]
    return "".join(parts)


def _rollout_html(r: dict, table) -> list[str]:
    step = "champion only (no rollout)" if r["rollout_step"] == 0 else f"step {r['rollout_step']}: the challenger decides {r['canary_share']:.0%} of applicants"
    return [
        "<h2>Challenger rollout</h2>",
        f"<p>{html_text(step)}. Cells (a keyed hash of the application id), with the version that decided each:</p>",
        table(r["cells"]),
        "<p>Swap set: champion decision against challenger decision on every application (shadow scores), expected bad rate from each model's PD.</p>",
        table(r["swap_set"]) if r["swap_set"] else f"<p>{html_text(r['note'])}</p>",
    ]


def _stability_pack_html(doc: dict, table) -> list[str]:
    """The stability pack's four sections, every figure the JSON's."""
    e = html_text
    c, sb, g, k = doc["characteristic_analysis"], doc["score_band_stability"], doc["gains"], doc["grade_calibration"]
    parts = ["<h2>Characteristic analysis (CSI and score shift in points, per feature on its reference bins)</h2>"]
    if c["available"]:
        parts += [f"<p>{e(c['note'])}.</p>", table([{k_: v for k_, v in f.items() if k_ != "bins"} for f in c["features"]])]
        for f in c["features"]:
            parts += [f"<h3>{e(f['feature'])}</h3>", table(f["bins"])]
    else:
        parts.append(f"<p>{e(c['note'])}</p>")
    parts.append("<h2>Score-band stability (share per frozen score band, month against reference)</h2>")
    if sb["available"]:
        parts += [
            f"<p>Score-band PSI {e(_fmt(sb['psi']))} ({e(sb['band'])}).</p>",
            table(sb["bands"]),
            grouped_bars(
                "Score distribution against the training reference, by frozen score band",
                [str(r["band"]) for r in sb["bands"]],
                [("reference", [r["reference_share"] for r in sb["bands"]]), ("this month", [r["current_share"] for r in sb["bands"]])],
                "score points",
                "share of applications",
            ),
        ]
    else:
        parts.append(f"<p>{e(sb['note'])}</p>")
    parts.append(f"<h2>Gains table by score band (cohort {e(str(g['cohort']))})</h2>")
    parts += [f"<p>KS {e(_fmt(g['ks']))}, riskiest band first.</p>", table(g["bands"])] if g["available"] else [f"<p>not available: {e(g['note'])}</p>"]
    parts.append(f"<h2>Calibration by score band: observed against expected default rate (cohort {e(str(k['cohort']))})</h2>")
    if k["available"]:
        parts += [
            f"<p>Jeffreys {e(_fmt(k['confidence']))} interval; red when it lies wholly outside mean PD x (1 +/- {e(_fmt(k['tolerance']))}); "
            f'bands expecting fewer than {e(_fmt(k["min_expected_defaults"]))} defaults are pooled; grade "all" is the portfolio.</p>',
            table(k["grades"]),
        ]
    else:
        parts.append(f"<p>not available: {e(k['note'])}</p>")
    return parts


def _overrides_html(o: dict, table) -> str:
    e = html_text
    if not o["available"]:
        return f"<p>not available: {e(o['note'])}</p>"
    band, r = o["override_rate_band"], o["referral_decisions"]
    counted = "counted as overrides too" if o["referrals_count_as_overrides"] else "not overrides: the decision policy hands its refer band to people"
    parts = [
        f"<p>{e(o['note'])}. Review policy {e(o['review_policy'])}; override rate band [{e(_fmt(band[0]))}, {e(_fmt(band[1]))}]: "
        f"{'within' if o['within_band'] else 'OUTSIDE'}. An override is a final decision against the model's approve or decline "
        f"(high side: approving what the model declined); referral decisions are {e(counted)}.</p>",
        table([{k: o[k] for k in METRIC_KEYS if k != "review_policy"}]),
        "<h3>By reason</h3>",
        table([{"reason": k, **x} for k, x in o["by_reason"].items()]),
        "<h3>By officer</h3>",
        table([{"officer": k, **x} for k, x in o["by_officer"].items()]),
        "<h3>By segment</h3>",
        table([{"segment": k, **x} for k, x in o["by_segment"].items()]),
        "<h3>Adverse impact ratio: the model's decisions and the final ones</h3>",
        table([{"attribute": a, "model": x["model"], "final": x["final"], "threshold": x["threshold"]} for a, x in o["adverse_impact_ratio"].items()]),
        f"<h3>Overrides ({e(o['listed'])} listed, by ledger entry)</h3>",
        table(o["entries"]),
    ]
    parts += [
        "<h3>Referral decisions (the refer band decided by officers)</h3>",
        table([{k: r[k] for k in REFERRAL_KEYS}]),
        table([{"officer": k, **x} for k, x in r["by_officer"].items()]),
    ]
    m = o["matured_cohort"]
    parts.append(f"<h3>Overridden loans of the matured cohort {e(str(m['cohort']))}: realised default rate against PD</h3>")
    parts.append(table([{"side": s, **x} for s, x in m["by_side"].items()]) if m["available"] else "<p>not available: no final decisions of that cohort</p>")
    return "".join(parts)


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return "" if value is None else str(value)
