"""Models loaded from a data format, seen through the scikit-learn classifier interface."""

import numpy as np


class LightGBMClassifierModel:
    """A LightGBM Booster seen through the scikit-learn classifier interface."""

    def __init__(self, booster):
        self.booster = booster
        self.feature_names_in_ = np.array(booster.feature_name(), dtype=object)

    def predict_proba(self, X):
        p = np.asarray(self.booster.predict(X))
        if p.ndim == 1:
            return np.column_stack([1 - p, p])
        return p

    def predict(self, X):
        return self.predict_proba(X).argmax(axis=1)
