"""On the default data (seed 42, 20,000 applications a month), the scorecard is near Bayes-optimal."""

import pandas as pd

from checks import contract_path
from riskcore.contract import load_contract
from riskcore.features import build_features, feature_specs
from riskcore.ingestion import LandedFile, conform
from riskcore.metrics import bayes_optimal_auc
from riskcore.months import months_between
from riskcore.synthetic import applications_frame, generate_month
from riskcore.training import SAMPLE_COLUMN, assemble_training_set, fit_and_evaluate


def test_out_of_time_auc_is_within_two_points_of_the_bayes_optimal_auc():
    contract = load_contract(contract_path("loan_applications.yaml"))
    features, outcomes, truth = {}, {}, []
    for month in months_between("2023-01", "2023-12"):  # the months `make run` trains on
        frame = generate_month(42, month, 20_000)
        accepted, quarantined = conform(LandedFile(month, "", 0, applications_frame(frame)), contract, month)
        assert quarantined.empty
        features[month] = build_features(accepted, contract, month)
        outcomes[month] = frame[["application_id", "defaulted"]]
        truth.append(frame[["application_id", "true_pd"]])
    training = assemble_training_set(features, outcomes, "application_id", "defaulted", out_of_time_months=3)
    _, metrics, calibration, _ = fit_and_evaluate(training, feature_specs(contract), "defaulted", "application_id")
    oot = training[training[SAMPLE_COLUMN] == "out_of_time"].merge(pd.concat(truth), on="application_id")
    assert len(oot) == 60_000
    bayes = bayes_optimal_auc(oot["true_pd"].to_numpy())
    assert abs(metrics["oot_auc"] - bayes) <= 0.02, (metrics["oot_auc"], bayes)
    # Calibrated: predicted and observed default rates agree overall and in the riskiest decile.
    assert abs(metrics["oot_mean_pd"] - metrics["oot_default_rate"]) < 0.01
    top = calibration.iloc[-1]
    assert abs(top["expected_rate"] - top["observed_rate"]) < 0.05
