"""The estimators as a literal drop-in: user code written for MLPClassifier/MLPRegressor, with
scikit-learn's parameter names, runs unchanged with mlplab's classes and reads the same attributes."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import mlplab
from mlplab import NeuralNetClassifier, NeuralNetRegressor


def user_code(Classifier, Regressor):
    """Typical code from a scikit-learn tutorial; only the two class names are parameters."""
    X, y = load_breast_cancer(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0, stratify=y)
    model = make_pipeline(StandardScaler(), Classifier(
        hidden_layer_sizes=(32, 16), activation="tanh", solver="adam", alpha=1e-3, batch_size=32,
        learning_rate_init=0.005, max_iter=200, early_stopping=True, validation_fraction=0.15,
        n_iter_no_change=8, tol=1e-4, random_state=1, verbose=False))
    model.fit(X_train, y_train)
    clf = model[-1]
    report = {"accuracy": model.score(X_test, y_test), "classes": clf.classes_.tolist(),
              "coefs": [w.shape for w in clf.coefs_], "intercepts": [b.shape for b in clf.intercepts_],
              "stopped early": clf.n_iter_ < 200, "curve": len(clf.loss_curve_) == clf.n_iter_,
              "scores": len(clf.validation_scores_) == clf.n_iter_, "best_loss_": clf.best_loss_,
              "out": clf.out_activation_, "layers": clf.n_layers_, "proba": model.predict_proba(X_test[:3]).shape}
    sgd = Classifier(solver="sgd", momentum=0.8, nesterovs_momentum=True, learning_rate_init=0.01, max_iter=20,
                     warm_start=True, activation="logistic", random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        sgd.fit(StandardScaler().fit_transform(X_train), y_train)
        sgd.fit(StandardScaler().fit_transform(X_train), y_train)
    report["warm n_iter_"] = sgd.n_iter_
    Xr, yr = load_diabetes(return_X_y=True)
    reg = Regressor(hidden_layer_sizes=(64,), max_iter=500, alpha=1e-4, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reg.fit(Xr[:300], yr[:300])
    report["r2"] = reg.score(Xr[300:], yr[300:])
    report["regressor best_loss_"] = reg.best_loss_ == min(reg.loss_curve_)
    return report


def test_mlpclassifier_code_runs_unchanged_with_mlplab():
    theirs = user_code(MLPClassifier, MLPRegressor)
    ours = user_code(NeuralNetClassifier, NeuralNetRegressor)
    for key in ("classes", "coefs", "intercepts", "stopped early", "curve", "scores", "best_loss_", "out",
                "layers", "proba", "warm n_iter_", "regressor best_loss_"):
        assert ours[key] == theirs[key], key
    assert ours["accuracy"] >= theirs["accuracy"] - 0.03
    assert ours["r2"] >= theirs["r2"] - 0.05, (ours["r2"], theirs["r2"])


def test_coefs_are_views_of_the_network():
    X, y = load_breast_cancer(return_X_y=True)
    clf = NeuralNetClassifier(hidden_layer_sizes=(4,), max_iter=2, random_state=0).fit(X, y)
    first = clf.model_.module.state_dict()
    weight = next(value for name, value in first.items() if name.endswith("weight"))
    assert np.shares_memory(clf.coefs_[0], weight.numpy()) and clf.coefs_[0].shape == (30, 4)
    assert not hasattr(NeuralNetClassifier(), "coefs_")


def test_dataframe_with_text_columns_trains_directly():
    pd = pytest.importorskip("pandas")
    rs = np.random.RandomState(0)
    frame = pd.DataFrame({"size": rs.uniform(0, 10, 300), "colour": rs.choice(["red", "green", "blue"], 300)})
    frame.loc[::25, "colour"] = None  # gaps are imputed as a '(missing)' category
    y = np.where(frame["size"] + frame["colour"].map({"red": 3.0, "green": 0.0, "blue": -3.0}).fillna(0) > 5,
                 "yes", "no")
    clf = NeuralNetClassifier(max_iter=150, random_state=0).fit(frame, y)
    assert clf.feature_names_in_.tolist() == ["size", "colour"] and clf.score(frame, y) > 0.9
    categories = clf.model_.preprocessor.features[1]["categories"]
    assert categories == ["(missing)", "blue", "green", "red"]
    with pytest.raises(ValueError, match="colour"):
        clf.predict(frame[["size"]])


def test_callbacks_parameter_and_public_callback():
    seen = []

    class Record(mlplab.Callback):
        def on_epoch_end(self, state):
            seen.append(state.epoch)
            if state.epoch == 5:
                state.stop_reason = "enough"

    X, y = load_breast_cancer(return_X_y=True)
    clf = NeuralNetClassifier(max_iter=50, callbacks=[Record()], random_state=0).fit(X, y)
    assert seen == [1, 2, 3, 4, 5] and clf.n_iter_ == 5
    assert "Callback" in mlplab.__all__ and mlplab.Callback.__doc__
