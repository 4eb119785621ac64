import itertools

import numpy as np
import pandas as pd

from resources.storage import parquet_bytes
from riskcore.metrics import bayes_optimal_auc
from riskcore.synthetic import Scenario, applications_frame, generate_month, outcomes_frame


def test_same_seed_and_month_give_the_same_bytes():
    first = parquet_bytes(generate_month(7, "2023-03", 2000))
    assert first == parquet_bytes(generate_month(7, "2023-03", 2000))
    assert first != parquet_bytes(generate_month(8, "2023-03", 2000))
    assert first != parquet_bytes(generate_month(7, "2023-04", 2000))


def test_landing_file_carries_no_truth_and_pii_is_fictional():
    month = generate_month(1, "2023-01", 1000)
    apps = applications_frame(month)
    assert "true_pd" not in apps and "defaulted" not in apps
    area = apps["ssn"].str.slice(0, 3).astype(int)
    assert ((area == 0) | (area == 666) | (area >= 900)).all()  # never-issued SSN areas
    assert apps["email"].str.endswith(("@example.com", "@example.org", "@example.net")).all()
    assert apps["phone"].str.contains(r"\) 555-01\d\d$").all()
    assert apps["application_date"].dt.strftime("%Y-%m").eq("2023-01").all()
    assert apps[["employment_years", "credit_utilisation"]].isna().any().all()  # realistic gaps


def test_labels_follow_the_true_pd_and_observe_after_the_window():
    month = generate_month(3, "2023-05", 20000)
    assert abs(month["defaulted"].mean() - month["true_pd"].mean()) < 0.006
    outcomes = outcomes_frame(month, "2023-05", 12)
    assert outcomes["observed_date"].eq(pd.Timestamp("2024-05-01")).all()


def _brute_force_bayes_auc(p: np.ndarray) -> float:
    num = den = 0.0
    for i, j in itertools.permutations(range(len(p)), 2):
        weight = p[i] * (1 - p[j])
        den += weight
        num += weight * (1.0 if p[i] > p[j] else 0.5 if p[i] == p[j] else 0.0)
    return num / den


def test_bayes_optimal_auc_matches_brute_force_with_ties():
    p = generate_month(11, "2023-02", 150)["true_pd"].round(2).to_numpy()  # rounding makes ties
    assert len(np.unique(p)) < len(p)
    assert abs(bayes_optimal_auc(p) - _brute_force_bayes_auc(p)) < 1e-12


def test_bayes_optimal_auc_of_constant_pd_is_one_half():
    assert bayes_optimal_auc(np.full(50, 0.1)) == 0.5


def test_economic_shock_shifts_the_named_distributions_only_from_its_start():
    shock = Scenario("economic_shock", start="2024-03")
    before_base, before_shock = generate_month(5, "2024-02", 20000), generate_month(5, "2024-02", 20000, shock)
    pd.testing.assert_frame_equal(before_base, before_shock)
    base, shocked = generate_month(5, "2024-04", 20000), generate_month(5, "2024-04", 20000, shock)
    assert shocked["annual_income"].median() < 0.9 * base["annual_income"].median()
    assert shocked["credit_utilisation"].mean() > base["credit_utilisation"].mean() + 0.05
    assert shocked["defaulted"].mean() > 1.3 * base["defaulted"].mean()
    pd.testing.assert_series_equal(base["loan_purpose"], shocked["loan_purpose"])


def test_new_segment_and_data_fault_scenarios():
    segment = generate_month(5, "2024-07", 10000, Scenario("new_segment", start="2024-06"))
    assert (segment["channel"] == "partner_api").mean() > 0.2
    base = generate_month(5, "2024-07", 10000)
    assert (base["channel"] == "partner_api").sum() == 0
    fault = generate_month(5, "2024-07", 10000, Scenario("data_fault", start="2024-06"))
    assert fault["annual_income"].median() < base["annual_income"].median() / 10  # monthly, not yearly
    assert fault["employment_years"].isna().mean() > 0.3
    pd.testing.assert_series_equal(fault["true_pd"], base["true_pd"])  # a reporting fault, not a change in risk
