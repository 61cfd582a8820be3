"""Performance figures of a binary classifier on an evaluation set (scikit-learn metrics)."""

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score


def performance_figures(y_true, y_pred, scores=None) -> dict:
    """Accuracy, ROC AUC, F1, precision and recall; Y_TRUE and Y_PRED are boolean arrays
    (positive = True), SCORES the positive class's score (None: no ROC AUC).

    A figure that is undefined on this data (ROC AUC with one class only, precision with no
    positive prediction) is None, which a policy judges inconclusive.
    """
    y_true = np.asarray(y_true, dtype=bool)
    y_pred = np.asarray(y_pred, dtype=bool)
    both_classes = 0 < y_true.sum() < len(y_true)
    figures = {
        "accuracy": float(accuracy_score(y_true, y_pred)) if len(y_true) else None,
        "roc_auc": float(roc_auc_score(y_true, scores)) if scores is not None and both_classes else None,
        "f1": float(f1_score(y_true, y_pred, zero_division=np.nan)),
        "precision": float(precision_score(y_true, y_pred, zero_division=np.nan)),
        "recall": float(recall_score(y_true, y_pred, zero_division=np.nan)),
    }
    return {k: (None if v is not None and np.isnan(v) else v) for k, v in figures.items()}
