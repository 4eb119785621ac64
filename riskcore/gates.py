"""Promotion gates: what a challenger must show, on the same out-of-time rows as the champion,
before anyone may approve it. Thresholds come from a versioned policy file."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from riskcore.metrics import ks_statistic, roc_auc
from riskcore.promotion import PromotionPolicy

MAX_GRADES = 10  # PD deciles


@dataclass(frozen=True)
class Gate:
    name: str
    value: float | None
    threshold: str
    passed: bool
    note: str = ""  # the verdict in words, where value and threshold alone do not explain it


def psi(expected: np.ndarray, actual: np.ndarray, bins: int = 10) -> float:
    """Population stability index of `actual` against `expected`, on expected's decile edges."""
    expected, actual = np.asarray(expected, dtype="float64"), np.asarray(actual, dtype="float64")
    edges = np.unique(np.quantile(expected, np.linspace(0, 1, bins + 1)))
    edges[0], edges[-1] = -np.inf, np.inf
    e = np.histogram(expected, edges)[0] / len(expected)
    a = np.histogram(actual, edges)[0] / len(actual)
    e, a = np.clip(e, 1e-6, None), np.clip(a, 1e-6, None)
    return float(np.sum((a - e) * np.log(a / e)))


def _grade_bounds(sorted_pd: np.ndarray, min_expected_defaults: float) -> np.ndarray:
    """Row bounds of equal-count PD grades: deciles, or the most grades (down to one) that each
    expect at least `min_expected_defaults` defaults, so that no grade is judged on a handful."""
    n = len(sorted_pd)
    expected = np.r_[0.0, np.cumsum(sorted_pd)]
    for grades in range(min(MAX_GRADES, n), 1, -1):
        bounds = np.arange(grades + 1) * n // grades
        if np.diff(expected[bounds]).min() >= min_expected_defaults:
            return bounds
    return np.array([0, n])


def calibration_table(
    y: np.ndarray, pd_: np.ndarray, confidence: float, tolerance: float, min_expected_defaults: float, grades: np.ndarray | None = None
) -> pd.DataFrame:
    """Observed against expected default rate per PD grade, and for the portfolio (grade "all"),
    in the ECB's PD back-testing tradition: a Jeffreys test and a traffic light per grade.

    Grades are equal-count PD deciles, or as many equal-count grades (down to one) as keep each
    at `min_expected_defaults` expected defaults or more: small samples get fewer, wider grades.
    Or given: `grades`, a grade per row (e.g. a frozen score band, riskcore.stability), listed in
    ascending order; `min_expected_defaults` is then the caller's to respect.
    The default rate has the Jeffreys posterior Beta(D + 1/2, N - D + 1/2); `jeffreys_lower` and
    `jeffreys_upper` bound its equal-tailed `confidence` interval and `p_value` is two-sided
    (PD too low and PD too high), against the grade's mean PD. Lights:
      red: the whole interval lies outside mean PD x (1 +/- `tolerance`): the model is wrong
           by more than the tolerance, and the sample shows it;
      amber: significant (interval excludes the mean PD) but not shown to be material: at large
           N every real model is significantly wrong by a little, which alone must not fail it;
      green: consistent with the mean PD.
    The binomial variance ignores the spread of PDs inside a grade (or the portfolio), which
    makes the test slightly conservative there, as in the ECB's instructions.

    Power: 1,000 rows at a 7% mean PD hold ~70 defaults, and the observed/expected ratio has a
    sampling sd of ~0.12 there; with a 90% interval and a 10% tolerance, PDs 30% too low
    (defaults 43% above PD) are red in ~70% of such samples, PDs 30% too high (defaults 23%
    below) in only ~40%; no test does much better on 70 defaults. PDs 30% too low are red in
    every simulated sample from 5,000 rows on, 30% too high in ~95% at 5,000 and ~99% at 10,000."""
    from scipy.stats import beta  # scipy stays out of the code location's load

    y, pd_ = np.asarray(y, dtype="float64"), np.asarray(pd_, dtype="float64")
    if grades is None:
        order = np.argsort(pd_, kind="stable")
        starts = _grade_bounds(pd_[order], min_expected_defaults)[:-1]
        names = list(range(1, len(starts) + 1))
    else:
        order = np.argsort(np.asarray(grades), kind="stable")
        sorted_grades = np.asarray(grades)[order]
        starts = np.flatnonzero(np.r_[True, sorted_grades[1:] != sorted_grades[:-1]])
        names = sorted_grades[starts].tolist()
    sorted_pd, sorted_y = pd_[order], y[order]
    rows = np.r_[np.diff(starts), len(y) - starts[-1], len(y)]
    defaults = np.r_[np.add.reduceat(sorted_y, starts), y.sum()]
    mean_pd = np.r_[np.add.reduceat(sorted_pd, starts), pd_.sum()] / rows
    a, b = defaults + 0.5, rows - defaults + 0.5
    tail = (1 - confidence) / 2
    lower, upper = beta.ppf(tail, a, b), beta.ppf(1 - tail, a, b)
    p_value = np.minimum(1.0, 2 * np.minimum(beta.cdf(mean_pd, a, b), beta.sf(mean_pd, a, b)))
    red = (lower > mean_pd * (1 + tolerance)) | (upper < mean_pd * (1 - tolerance))
    light = np.where(red, "red", np.where((mean_pd < lower) | (mean_pd > upper), "amber", "green"))
    return pd.DataFrame(
        {
            "grade": [*names, "all"],
            "rows": rows.astype("int64"),
            "defaults": defaults.astype("int64"),
            "mean_pd": mean_pd,
            "observed_rate": defaults / rows,
            "jeffreys_lower": lower,
            "jeffreys_upper": upper,
            "p_value": p_value,
            "light": light,
        }
    )


def calibration_gate(policy: PromotionPolicy, y: np.ndarray, pd_: np.ndarray) -> Gate:
    """Fails when the portfolio is red or more grades are red than the policy allows; its value
    is the portfolio's observed over expected default rate (1 = calibrated)."""
    table = calibration_table(y, pd_, policy.calibration_confidence, policy.calibration_tolerance, policy.calibration_min_expected_defaults)
    grades, portfolio = table.iloc[:-1], table.iloc[-1]
    red = int((grades["light"] == "red").sum())
    allowed = policy.calibration_max_red_grades
    passed = portfolio["light"] != "red" and red <= allowed
    counts = grades["light"].value_counts()
    note = (
        f"portfolio {portfolio['light']}: {portfolio['observed_rate']:.2%} defaulted against a mean PD of {portfolio['mean_pd']:.2%}; "
        f"PD grades green/amber/red: {'/'.join(str(counts.get(c, 0)) for c in ('green', 'amber', 'red'))} of {len(grades)}"
    )
    threshold = (
        f"portfolio not red and red grades <= {allowed} of {len(grades)}; red: Jeffreys {policy.calibration_confidence:.0%} "
        f"interval outside PD x (1 +/- {policy.calibration_tolerance:g})"
    )
    return Gate("calibration_jeffreys", float(portfolio["observed_rate"] / portfolio["mean_pd"]), threshold, bool(passed), note)


def adverse_impact_ratio(approved: np.ndarray, group: pd.Series, min_group_size: int) -> tuple[float | None, dict]:
    """Lowest approval rate of a group over the highest (groups smaller than `min_group_size` left out)."""
    return grouped_rate_ratio(approved, *group_codes(group), min_group_size)


def group_codes(group: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """Each row's group (its value as text) as a code into the sorted groups, -1 where missing: an
    attribute factorised once serves any number of rates over its rows (the swap set's nine cells)."""
    codes, groups = pd.factorize(group.astype("string"), sort=True)
    return codes, pd.Index(groups)


def grouped_rate_ratio(selected: np.ndarray, codes: np.ndarray, groups: pd.Index, min_group_size: int) -> tuple[float | None, dict]:
    """`adverse_impact_ratio` on `group_codes`: the lowest group's rate of `selected` (0/1) over the
    highest, groups smaller than `min_group_size` left out; and the rates of the groups judged."""
    selected = np.asarray(selected, dtype="float64")
    known = (codes >= 0) & ~np.isnan(selected)
    sizes = np.bincount(codes[known], minlength=len(groups))
    judged = sizes >= min_group_size
    rates = np.bincount(codes[known], weights=selected[known], minlength=len(groups))[judged] / sizes[judged]
    if len(rates) < 2 or rates.max() == 0:
        return None, {}
    return float(rates.min() / rates.max()), {str(g): round(float(r), 4) for g, r in zip(groups[judged], rates, strict=True)}


def _unjudged(group: pd.Series, min_group_size: int) -> str:
    """Why `adverse_impact_ratio` could not judge this attribute, with the group sizes."""
    sizes = group.astype("string").value_counts()
    if (sizes >= min_group_size).sum() >= 2:
        return f"{group.name}: no group has an approval"
    listed = ", ".join(f"{g} {n}" for g, n in sizes.head(5).items()) + (f" and {len(sizes) - 5} more" if len(sizes) > 5 else "") or "no values"
    return f"{group.name}: groups too small to judge (fewer than two of {min_group_size}+ rows: {listed})"


def fairness_gate(policy: PromotionPolicy, approved: np.ndarray, sensitive: pd.DataFrame, contract_label: str = "") -> Gate:
    """The lowest adverse impact ratio over the sensitive attributes, and in words why whenever it
    cannot be computed: no attribute declared (the policy decides), or groups too small (fails:
    an attribute declared sensitive but not judged is not shown to be fair)."""
    threshold = f">= {policy.min_adverse_impact_ratio}"
    if sensitive.columns.empty:
        passed = policy.when_no_sensitive_attribute == "pass"
        where = f" in {contract_label}" if contract_label else ""
        return Gate(
            "adverse_impact_ratio",
            None,
            threshold,
            passed,
            f"no sensitive attribute declared{where}: {'passed' if passed else 'refused'} by fairness.when_no_sensitive_attribute",
        )
    ratios = {c: adverse_impact_ratio(approved, sensitive[c], policy.min_group_size)[0] for c in sensitive.columns}
    judged = {c: r for c, r in ratios.items() if r is not None}
    notes = [_unjudged(sensitive[c], policy.min_group_size) for c, r in ratios.items() if r is None]
    if not judged:
        return Gate("adverse_impact_ratio", None, threshold, False, "; ".join(notes))
    worst = min(judged, key=judged.get)
    return Gate(
        "adverse_impact_ratio",
        judged[worst],
        threshold,
        judged[worst] >= policy.min_adverse_impact_ratio,
        "; ".join([f"lowest of {', '.join(judged)}: {worst}" if len(judged) > 1 else f"judged on {worst}", *notes]),
    )


def evaluate_gates(
    policy: PromotionPolicy,
    y: np.ndarray,
    challenger_pd: np.ndarray,
    champion_pd: np.ndarray | None,
    challenger_train_pd: np.ndarray,
    approved: np.ndarray,
    sensitive: pd.DataFrame,
    signature_ok: bool,
    *,
    contract_label: str = "",
) -> list[Gate]:
    """Every gate of the policy, on the same out-of-time rows for challenger and champion.
    `contract_label` names where sensitive attributes are declared, for the fairness verdict."""
    auc = roc_auc(y, challenger_pd)
    gates = [Gate("auc", auc, f">= {policy.min_auc}", auc >= policy.min_auc)]
    if champion_pd is not None:
        champion_auc = roc_auc(y, champion_pd)
        gates.append(Gate("auc_vs_champion", auc - champion_auc, f">= -{policy.auc_tolerance}", auc >= champion_auc - policy.auc_tolerance))
    ks = ks_statistic(y, challenger_pd)
    gates.append(Gate("ks", ks, f">= {policy.min_ks}", ks >= policy.min_ks))
    gates.append(calibration_gate(policy, y, challenger_pd))
    stability = psi(challenger_train_pd, challenger_pd)
    gates.append(Gate("score_psi_train_vs_oot", stability, f"< {policy.max_score_psi}", stability < policy.max_score_psi))
    gates.append(fairness_gate(policy, approved, sensitive, contract_label))
    gates.append(Gate("signature_matches_feature_store", 1.0 if signature_ok else 0.0, "== 1", signature_ok))
    return gates
