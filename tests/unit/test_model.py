import numpy as np
import pandas as pd

from checks import contract_path
from riskcore.contract import load_contract
from riskcore.features import build_features, feature_specs, model_matrix
from riskcore.ingestion import LandedFile, conform
from riskcore.model import train_scorecard
from riskcore.synthetic import applications_frame, generate_month

CONTRACT = load_contract(contract_path("loan_applications.yaml"))


def test_contributions_add_up_to_the_calibrated_logit():
    month = generate_month(42, "2023-01", 6000)
    accepted, _ = conform(LandedFile("m", "", 0, applications_frame(month)), CONTRACT, "2023-01")
    specs = feature_specs(CONTRACT)
    X = model_matrix(build_features(accepted, CONTRACT, "2023-01"), specs)
    model = train_scorecard(X.assign(defaulted=month["defaulted"].to_numpy()), "defaulted", specs)
    pd_ = model.predict_pd(X)
    logit = model.logit_contributions(X).sum(axis=1).to_numpy() + model.intercept_logit
    np.testing.assert_allclose(1 / (1 + np.exp(-logit)), pd_, atol=1e-10)
    assert list(model.logit_contributions(X).columns) == [s.name for s in specs if s.kind == "numeric"] + [s.name for s in specs if s.kind == "categorical"]
    # Unknown categories (a new channel) still score, contributing nothing new.
    unseen = X.head(5).assign(channel="carrier_pigeon")
    assert np.isfinite(model.predict_pd(unseen)).all()
    assert isinstance(model.reference_contributions_, np.ndarray) and not isinstance(model.reference_contributions_, pd.Series)
