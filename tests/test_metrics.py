"""Our NumPy metrics equal scikit-learn's on the same predictions."""

import numpy as np
import pytest
from sklearn import metrics as sk

from mlplab.metrics import classification_metrics, confusion_matrix, regression_metrics, roc_auc


@pytest.mark.parametrize("seed", range(5))
def test_binary_metrics_match_sklearn(seed):
    rs = np.random.RandomState(seed)
    y = rs.randint(0, 2, 200)
    p = np.clip(y * 0.3 + rs.uniform(0, 0.7, 200), 0, 1).round(2)  # rounding makes ties
    ours = classification_metrics(y, p, 2)
    predicted = (p >= 0.5).astype(int)
    assert ours["accuracy"] == pytest.approx(sk.accuracy_score(y, predicted))
    assert ours["precision"] == pytest.approx(sk.precision_score(y, predicted, average="macro", zero_division=0))
    assert ours["recall"] == pytest.approx(sk.recall_score(y, predicted, average="macro", zero_division=0))
    assert ours["f1"] == pytest.approx(sk.f1_score(y, predicted, average="macro", zero_division=0))
    assert ours["roc_auc"] == pytest.approx(sk.roc_auc_score(y, p))
    assert confusion_matrix(y, predicted, 2).tolist() == sk.confusion_matrix(y, predicted).tolist()


@pytest.mark.parametrize("seed", range(5))
def test_multiclass_metrics_match_sklearn(seed):
    rs = np.random.RandomState(seed)
    y = rs.randint(0, 4, 150)
    logits = rs.normal(size=(150, 4)) + 1.5 * np.eye(4)[y]
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    ours = classification_metrics(y, p, 4)
    predicted = p.argmax(axis=1)
    assert ours["accuracy"] == pytest.approx(sk.accuracy_score(y, predicted))
    for name in ("precision", "recall", "f1"):
        expected = getattr(sk, f"{name}_score")(y, predicted, average="macro", zero_division=0)
        assert ours[name] == pytest.approx(expected)
    assert confusion_matrix(y, predicted, 4).tolist() == sk.confusion_matrix(y, predicted, labels=range(4)).tolist()


def test_a_class_never_predicted_counts_as_zero():
    y = np.array([0, 1, 2, 2])
    p = np.eye(3)[[0, 0, 2, 2]]
    assert classification_metrics(y, p, 3)["precision"] == pytest.approx(
        sk.precision_score(y, [0, 0, 2, 2], average="macro", zero_division=0))
    assert np.isnan(roc_auc(np.ones(4), np.arange(4.0)))


def test_regression_metrics_match_sklearn():
    rs = np.random.RandomState(0)
    y = rs.normal(size=100)
    pred = y + rs.normal(scale=0.3, size=100)
    ours = regression_metrics(y, pred)
    assert ours["mse"] == pytest.approx(sk.mean_squared_error(y, pred))
    assert ours["mae"] == pytest.approx(sk.mean_absolute_error(y, pred))
    assert ours["r2"] == pytest.approx(sk.r2_score(y, pred))
