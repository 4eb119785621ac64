"""Domain logic for governed probability-of-default scoring.

Pure Python (numpy, pandas, scikit-learn): no Dagster, no MLflow, so every rule a model-risk
reviewer reads here can be tested and reused on its own.
"""
