"""Evaluation metrics in NumPy (checked against scikit-learn in the tests, without importing it here).

Classification metrics take the true class indices and the predicted probabilities (binary: P(class 1),
shape (n,); multiclass: (n, k)); regression metrics take true and predicted values.
"""

from __future__ import annotations

import numpy as np

__all__ = ["classification_metrics", "confusion_matrix", "predicted_indices", "probabilities_from_logits",
           "regression_metrics", "roc_auc", "task_loss", "task_metrics"]


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
    n_pos = int(np.count_nonzero(positives))
    n_neg = len(y_true) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ordered = np.sort(scores)
    positive_scores = scores[positives]
    # a score's average 1-based rank among all: (rank of its first tie + rank of its last tie) / 2
    ranks = (np.searchsorted(ordered, positive_scores, "left") + np.searchsorted(ordered, positive_scores, "right")
             + 1) / 2.0
    return float((ranks.sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def classification_metrics(y_true: np.ndarray, probabilities: np.ndarray, n_classes: int) -> dict[str, float]:
    """accuracy, macro precision/recall/F1 (0 where undefined, as scikit-learn's zero_division=0), and
    roc_auc for binary tasks."""
    y_true = y_true.astype(np.int64)
    # Plain Python over the k x k counts: for the handful of classes of a small net this is several
    # times faster than a dozen NumPy calls on k-element arrays, and it runs after every epoch.
    counts = confusion_matrix(y_true, predicted_indices(probabilities), n_classes).tolist()
    predicted = [sum(column) for column in zip(*counts)]
    actual = [sum(row) for row in counts]
    precisions, recalls, f1s = [], [], []
    for k in range(n_classes):
        if predicted[k] + actual[k] == 0:
            continue  # macro averages run over the classes present, as scikit-learn's do
        precision = counts[k][k] / predicted[k] if predicted[k] else 0.0
        recall = counts[k][k] / actual[k] if actual[k] else 0.0
        precisions.append(precision)
        recalls.append(recall)
        f1s.append(2 * precision * recall / (precision + recall) if precision + recall else 0.0)
    results = {
        "accuracy": sum(counts[k][k] for k in range(n_classes)) / max(len(y_true), 1),
        "precision": sum(precisions) / len(precisions),
        "recall": sum(recalls) / len(recalls),
        "f1": sum(f1s) / len(f1s),
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


def probabilities_from_logits(logits: np.ndarray, task: str) -> np.ndarray:
    """Binary: P(class 1), shape (n,); multiclass: softmax rows; regression: the values. In float64, so
    probabilities keep the order of the logits and rows sum to 1."""
    logits = logits.astype(np.float64, copy=False)
    if task == "binary":
        with np.errstate(over="ignore"):  # e^-z overflows to inf for z < -709: the sigmoid is then 0
            return 1.0 / (1.0 + np.exp(-logits.reshape(-1)))
    if task == "multiclass":
        shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
        return shifted / shifted.sum(axis=1, keepdims=True)
    return logits.reshape(-1)


def task_loss(logits: np.ndarray, y_true: np.ndarray, task: str) -> float:
    """The training loss (binary cross-entropy, cross-entropy or mean squared error) on logits."""
    logits = logits.astype(np.float64, copy=False)
    if task == "binary":
        z = logits.reshape(-1)
        return float((np.logaddexp(0.0, z).sum() - z @ y_true.astype(np.float64)) / len(z))
    if task == "multiclass":
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_probabilities = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        rows = np.arange(len(logits))
        return float(-log_probabilities[rows, y_true.astype(np.int64)].sum() / len(logits))
    error = logits.reshape(-1) - y_true
    return float(error @ error / len(error))


def task_metrics(task: str, y_true: np.ndarray, outputs: np.ndarray, n_classes: int | None = None) -> dict[str, float]:
    """The task's metrics for probabilities (classification) or predictions (regression)."""
    if task == "regression":
        return regression_metrics(y_true.astype(np.float64), outputs.astype(np.float64))
    return classification_metrics(y_true, outputs.astype(np.float64), n_classes or 2)
