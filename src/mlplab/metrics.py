"""Evaluation metrics in NumPy (checked against scikit-learn in the tests, without importing it here).

Classification metrics take the true class indices and the predicted probabilities (binary: P(class 1),
shape (n,); multiclass: (n, k)); regression metrics take true and predicted values.
"""

from __future__ import annotations

import numpy as np

__all__ = ["classification_metrics", "confusion_matrix", "evaluate", "regression_metrics", "roc_auc"]

# The metric each task's model selection looks at, and whether larger is better.
HEADLINE = {"binary": ("accuracy", True), "multiclass": ("accuracy", True), "regression": ("r2", True)}


def predicted_indices(probabilities: np.ndarray) -> np.ndarray:
    if probabilities.ndim == 1:
        return (probabilities >= 0.5).astype(np.int64)
    return probabilities.argmax(axis=1)


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Rows are true classes, columns predicted ones (scikit-learn's layout)."""
    counts = np.bincount(y_true.astype(np.int64) * n_classes + y_pred.astype(np.int64),
                         minlength=n_classes * n_classes)
    return counts.reshape(n_classes, n_classes)


def roc_auc(y_true: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve as the Mann-Whitney U statistic, ties counted half. NaN if one class."""
    positives = y_true == 1
    n_pos, n_neg = int(positives.sum()), int((~positives).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    upper = np.cumsum(counts)
    average_rank = (upper - (counts - 1) / 2.0)[inverse]  # 1-based ranks, ties averaged
    return float((average_rank[positives].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def classification_metrics(y_true: np.ndarray, probabilities: np.ndarray, n_classes: int) -> dict[str, float]:
    """accuracy, macro precision/recall/F1 (0 where undefined, as scikit-learn's zero_division=0), and
    roc_auc for binary tasks."""
    y_true = y_true.astype(np.int64)
    matrix = confusion_matrix(y_true, predicted_indices(probabilities), n_classes)
    true_positive = np.diag(matrix).astype(float)
    predicted = matrix.sum(axis=0)
    actual = matrix.sum(axis=1)
    precision = np.divide(true_positive, predicted, out=np.zeros(n_classes), where=predicted > 0)
    recall = np.divide(true_positive, actual, out=np.zeros(n_classes), where=actual > 0)
    denominator = precision + recall
    f1 = np.divide(2 * precision * recall, denominator, out=np.zeros(n_classes), where=denominator > 0)
    # Macro averages run over the classes present in the true or predicted labels, as scikit-learn's do.
    present = (predicted + actual) > 0
    results = {
        "accuracy": float(true_positive.sum() / max(len(y_true), 1)),
        "precision": float(precision[present].mean()),
        "recall": float(recall[present].mean()),
        "f1": float(f1[present].mean()),
    }
    if probabilities.ndim == 1:
        results["roc_auc"] = roc_auc(y_true, probabilities)
    return results


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    error = y_pred - y_true
    total = float(((y_true - y_true.mean()) ** 2).sum())
    return {
        "mse": float((error**2).mean()),
        "mae": float(np.abs(error).mean()),
        "r2": 1.0 - float((error**2).sum()) / total if total > 0 else 0.0,
    }


def evaluate(task: str, y_true: np.ndarray, outputs: np.ndarray, n_classes: int | None = None) -> dict[str, float]:
    """The task's metrics for probabilities (classification) or predictions (regression)."""
    if task == "regression":
        return regression_metrics(y_true.astype(np.float64), outputs.astype(np.float64))
    return classification_metrics(y_true, outputs.astype(np.float64), n_classes or 2)
