"""The PD model: an additive scorecard (spline GAM + logistic regression), sigmoid-calibrated.

Additive on the logit scale by construction, so every score splits exactly into one
contribution per feature: reason codes are read off the model, not approximated after it.
Sigmoid calibration is an affine map of the logit, so it keeps that property.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin

from riskcore.features import FeatureSpec

# Types a stored scorecard may contain beyond skops' defaults: the reviewed allow-list that
# lets the registry store models as skops (no arbitrary code on load) instead of pickle.
SERIALISATION_TRUSTED_TYPES = [
    "riskcore.model.PDScorecard",
    "numpy.dtype",
    "scipy._lib.array_api_compat.numpy._aliases.asarray",
    "scipy.interpolate._bsplines.BSpline",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.model_selection._split.StratifiedKFold",
]
# Rows transformed at once when predicting or explaining: bounds the dense design (~1 KB a row) to ~250 MB.
ROWS_AT_ONCE = 250_000


class PDScorecard(ClassifierMixin, BaseEstimator):
    """Probability of default from contract features; `logit_contributions` explains each score."""

    def __init__(
        self,
        numeric: tuple[str, ...] = (),
        categorical: tuple[str, ...] = (),
        n_knots: int = 6,
        C: float = 1.0,
        calibration_folds: int = 3,
        random_state: int = 0,
    ):
        self.numeric = numeric
        self.categorical = categorical
        self.n_knots = n_knots
        self.C = C
        self.calibration_folds = calibration_folds
        self.random_state = random_state

    def _pipeline(self):
        from sklearn.compose import ColumnTransformer
        from sklearn.impute import MissingIndicator, SimpleImputer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import FeatureUnion, Pipeline
        from sklearn.preprocessing import OneHotEncoder, QuantileTransformer, SplineTransformer

        def numeric_shape():
            # Rank-transform then spline: robust to skew and ties (counts), smooth in between.
            shape = Pipeline(
                [
                    ("impute", SimpleImputer(strategy="median")),
                    ("rank", QuantileTransformer(n_quantiles=200, random_state=self.random_state)),
                    ("spline", SplineTransformer(n_knots=self.n_knots, degree=3, include_bias=False)),
                ]
            )
            return FeatureUnion([("shape", shape), ("missing", MissingIndicator(features="all"))])

        columns = [(name, numeric_shape(), [name]) for name in self.numeric] + [
            (name, OneHotEncoder(handle_unknown="ignore", sparse_output=False), [name]) for name in self.categorical
        ]
        return Pipeline(
            [
                ("features", ColumnTransformer(columns, remainder="drop", verbose_feature_names_out=True)),
                ("logit", LogisticRegression(C=self.C, max_iter=5000)),
            ]
        )

    def fit(self, X: pd.DataFrame, y, sample_weight=None):
        """`sample_weight` (a weighted sample's) reaches both the logistic regression and its calibration."""
        from sklearn.calibration import CalibratedClassifierCV
        from sklearn.model_selection import StratifiedKFold
        from sklearn.pipeline import Pipeline

        pipeline = self._pipeline()
        features = pipeline.named_steps["features"]
        # The features learn no target (medians, ranks), so they are fitted and applied once, not once per
        # calibration fold: the design is the fit's largest object and building it its costliest step.
        design = features.fit_transform(X[self.feature_names])
        folds = StratifiedKFold(self.calibration_folds, shuffle=True, random_state=self.random_state)
        calibrated = CalibratedClassifierCV(pipeline.named_steps["logit"], method="sigmoid", cv=folds, ensemble=False)
        calibrated.fit(design, np.asarray(y), sample_weight=sample_weight)
        del design
        # Stored as CalibratedClassifierCV(pipeline) has always been (scoring and the registry's format read it so):
        # the calibrated estimator is the features and the logistic regression, applied to contract features.
        fitted = calibrated.calibrated_classifiers_[0]
        fitted.estimator = Pipeline([("features", features), ("logit", fitted.estimator)])
        calibrated.estimator = self._pipeline()
        calibrated.n_features_in_, calibrated.feature_names_in_ = features.n_features_in_, features.feature_names_in_
        self.calibrated_ = calibrated
        self.classes_ = self.calibrated_.classes_
        # The average applicant, per feature (an array: skops serialises no pandas objects).
        self.reference_contributions_ = np.average(self.logit_contributions(X).to_numpy(), axis=0, weights=sample_weight)
        return self

    @property
    def feature_names(self) -> list[str]:
        return list(self.numeric) + list(self.categorical)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        # In slices: the dense spline design of a slice, not of a whole month or window, is held at once.
        X = X[self.feature_names]
        return np.concatenate([self.calibrated_.predict_proba(X.iloc[i : i + ROWS_AT_ONCE]) for i in range(0, max(len(X), 1), ROWS_AT_ONCE)])

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Class labels at PD 0.5, for sklearn's interface only: decisions come from the policy."""
        return (self.predict_pd(X) >= 0.5).astype("int64")

    def predict_pd(self, X: pd.DataFrame) -> np.ndarray:
        return self.predict_proba(X)[:, 1]

    def pd_from_contributions(self, contributions: pd.DataFrame) -> np.ndarray:
        """The PD `predict_pd` gives, from `logit_contributions` already computed (scoring needs both:
        one pass of the feature transform instead of two)."""
        from scipy.special import expit

        return expit(contributions.to_numpy().sum(axis=1) + self.intercept_logit)

    def _parts(self):
        fitted = self.calibrated_.calibrated_classifiers_[0]
        pipeline, calibrator = fitted.estimator, fitted.calibrators[0]
        # Calibrated PD = expit(-(a * logit + b)): slope -a, intercept -b on the logit scale.
        return pipeline, -float(calibrator.a_), -float(calibrator.b_)

    def logit_contributions(self, X: pd.DataFrame) -> pd.DataFrame:
        """One column per feature; their row sum plus `intercept_logit` is the calibrated logit."""
        pipeline, slope, _ = self._parts()
        transformer, logistic = pipeline.named_steps["features"], pipeline.named_steps["logit"]
        coef, X = logistic.coef_.ravel(), X[self.feature_names]
        out = np.empty((len(X), len(self.feature_names)))
        for start in range(0, len(X), ROWS_AT_ONCE):
            design = transformer.transform(X.iloc[start : start + ROWS_AT_ONCE])
            for j, name in enumerate(self.feature_names):
                part = transformer.output_indices_[name]
                out[start : start + ROWS_AT_ONCE, j] = slope * (design[:, part] @ coef[part])
        return pd.DataFrame(out, index=X.index, columns=self.feature_names)

    @property
    def intercept_logit(self) -> float:
        pipeline, slope, intercept = self._parts()
        return slope * float(pipeline.named_steps["logit"].intercept_[0]) + intercept


def train_scorecard(train: pd.DataFrame, target: str, specs: list[FeatureSpec], random_state: int = 0, sample_weight=None) -> PDScorecard:
    model = PDScorecard(
        numeric=tuple(s.name for s in specs if s.kind == "numeric"),
        categorical=tuple(s.name for s in specs if s.kind == "categorical"),
        random_state=random_state,
    )
    return model.fit(train, train[target].to_numpy(), sample_weight=sample_weight)


def reason_positions(contributions: pd.DataFrame, reference: np.ndarray, k: int = 4) -> np.ndarray:
    """Per row, the k features that raise this applicant's PD most above the average applicant, as
    positions among `contributions`' columns, most adverse first; only factors above the reference
    count, so a row may have fewer than k (-1 fills the rest). Positions, not names: a scored month
    turns them into categories with no Python string per row."""
    adverse = contributions.to_numpy() - np.asarray(reference)[None, :]
    order = np.argsort(-adverse, axis=1, kind="stable")[:, :k]
    order[np.take_along_axis(adverse, order, axis=1) <= 1e-9] = -1
    if order.shape[1] < k:
        order = np.hstack([order, np.full((len(order), k - order.shape[1]), -1, dtype=order.dtype)])
    return order


def reason_codes(contributions: pd.DataFrame, reference: np.ndarray, k: int = 4) -> np.ndarray:
    """`reason_positions` as an (n, k) array of feature names (None fills the rest)."""
    names = np.append(np.asarray(contributions.columns, dtype=object), None)  # position -1 picks the trailing None
    return names[reason_positions(contributions, reference, k)]
