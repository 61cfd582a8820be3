import numpy as np
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score

from governance.gates.performance import performance_figures


def test_figures_equal_scikit_learn_on_german_credit(german, fair_model):
    x = german.drop(columns=["risk", "sex"])
    y = german["risk"].to_numpy() == 1
    scores = fair_model.predict_proba(x)[:, 1]
    pred = fair_model.predict(x) == 1
    figures = performance_figures(y, pred, scores)
    assert figures == {
        "accuracy": accuracy_score(y, pred),
        "roc_auc": roc_auc_score(y, scores),
        "f1": f1_score(y, pred),
        "precision": precision_score(y, pred),
        "recall": recall_score(y, pred),
    }


def test_undefined_figures_are_none():
    y = np.array([True, True, True])
    figures = performance_figures(y, np.array([False, False, False]), np.array([0.1, 0.2, 0.3]))
    assert figures["roc_auc"] is None  # one class only
    assert figures["precision"] is None  # no positive prediction
    assert figures["accuracy"] == 0.0
