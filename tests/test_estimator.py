"""The scikit-learn estimators in use: pipelines, search, persistence, weights, warm starts."""

import json
import pickle
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_breast_cancer, load_iris, load_wine
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, cross_val_score, train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

import mlplab
from mlplab import NeuralNetClassifier, NeuralNetRegressor


@pytest.fixture(scope="module")
def iris_split():
    X, y = load_iris(return_X_y=True)
    return train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)


def test_fitted_attributes_and_contract(iris_split):
    X_train, X_test, y_train, y_test = iris_split
    clf = NeuralNetClassifier(hidden_layer_sizes=(16,), learning_rate_init=0.01, max_iter=50, random_state=0)
    assert clf.fit(X_train, y_train) is clf
    assert clf.classes_.tolist() == [0, 1, 2] and clf.n_features_in_ == 4 and clf.n_iter_ == 50
    assert len(clf.loss_curve_) == 50 and clf.loss_curve_[-1] < clf.loss_curve_[0]
    assert clf.validation_scores_ is None and json.loads(json.dumps(clf.history_)) == clf.history_
    assert isinstance(clf.model_, mlplab.TrainedModel)
    assert clf.predict_proba(X_test).shape == (45, 3) and clf.decision_function(X_test).shape == (45, 3)
    np.testing.assert_allclose(clf.predict_proba(X_test).sum(axis=1), 1.0)
    assert clf.score(X_test, y_test) > 0.9
    assert clone(clf).get_params() == clf.get_params() and not hasattr(clone(clf), "model_")


def test_binary_probabilities_have_two_columns_and_string_labels():
    X, y = load_breast_cancer(return_X_y=True)
    labels = np.where(y == 1, "benign", "malignant")
    clf = make_pipeline(StandardScaler(), NeuralNetClassifier(hidden_layer_sizes=(8,), max_iter=30,
                                                              random_state=0))
    clf.fit(X, labels)
    assert clf.predict_proba(X[:5]).shape == (5, 2)
    assert set(clf.predict(X)) <= {"benign", "malignant"}
    decision = clf.decision_function(X[:20])
    assert decision.shape == (20,)
    assert np.array_equal(decision > 0, clf.predict(X[:20]) == "malignant")


def test_bad_parameters_name_the_parameter():
    X, y = load_iris(return_X_y=True)
    cases = [({"learning_rate_init": -1}, "'learning_rate_init' parameter of NeuralNetClassifier must be a number > "),
             ({"hidden_layer_sizes": (10, 0)}, "'hidden_layer_sizes' parameter"),
             ({"activation": "nope"}, "'activation' parameter of NeuralNetClassifier must be one of relu"),
             ({"solver": "lbfgs"}, "'solver' parameter"),
             ({"max_iter": 0}, "'max_iter' parameter"),
             ({"learning_rate": "invscaling"}, "'learning_rate' parameter .* only at 'constant'"),
             ({"batch_size": 0}, "'batch_size' parameter"),
             ({"early_stopping": True, "validation_fraction": 1.5}, "'validation_fraction' parameter")]
    for params, message in cases:
        with pytest.raises(ValueError, match=message):
            NeuralNetClassifier(**params).fit(X, y)
    with pytest.raises(ValueError, match="at least 2 classes"):
        NeuralNetClassifier().fit(X, np.zeros(len(X)))


def test_pipeline_column_transformer_cross_validation_and_regressor():
    pd = pytest.importorskip("pandas")
    rs = np.random.RandomState(0)
    frame = pd.DataFrame({"size": rs.uniform(-1, 2, 300), "colour": rs.choice(["red", "green", "blue"], 300)})
    y = (frame["size"] + frame["colour"].map({"red": 1.0, "green": 0.0, "blue": -1.0}) > 1).astype(int)
    pipeline = make_pipeline(
        ColumnTransformer([("num", StandardScaler(), ["size"]), ("cat", OneHotEncoder(), ["colour"])]),
        NeuralNetClassifier(hidden_layer_sizes=(16,), learning_rate_init=0.01, max_iter=100, random_state=0))
    scores = cross_val_score(pipeline, frame, y, cv=3)
    assert scores.mean() > 0.9
    clf = NeuralNetClassifier(hidden_layer_sizes=(8,), max_iter=20, random_state=0).fit(frame[["size"]], y)
    assert clf.feature_names_in_.tolist() == ["size"]
    X = rs.uniform(-1, 1, size=(400, 2))
    reg = make_pipeline(StandardScaler(), NeuralNetRegressor(hidden_layer_sizes=(32, 32),
                                                             learning_rate_init=0.01, max_iter=200, random_state=0))
    assert cross_val_score(reg, X, np.sin(2 * X[:, 0]) + X[:, 1], cv=3).mean() > 0.95


def test_grid_search_picks_a_sensible_model():
    X, y = load_wine(return_X_y=True)
    search = GridSearchCV(
        make_pipeline(StandardScaler(), NeuralNetClassifier(max_iter=60, random_state=0)),
        {"neuralnetclassifier__hidden_layer_sizes": [(2,), (32,)],
         "neuralnetclassifier__learning_rate_init": [1e-5, 0.01]}, cv=3)
    search.fit(X, y)
    assert search.best_params_ == {"neuralnetclassifier__hidden_layer_sizes": (32,),
                                   "neuralnetclassifier__learning_rate_init": 0.01}
    assert search.best_score_ > 0.95


def test_save_load_and_pickle_round_trips(tmp_path, iris_split, cli):
    X_train, X_test, y_train, _ = iris_split
    clf = NeuralNetClassifier(hidden_layer_sizes=(16,), learning_rate_init=0.01, max_iter=40, random_state=0)
    clf.fit(X_train, y_train)
    clf.save(tmp_path / "iris.pt")
    loaded = NeuralNetClassifier.load(tmp_path / "iris.pt")
    assert loaded.get_params() == clf.get_params()
    np.testing.assert_array_equal(loaded.predict_proba(X_test), clf.predict_proba(X_test))
    assert loaded.loss_curve_ == clf.loss_curve_ and loaded.n_iter_ == 40
    unpickled = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(unpickled.predict_proba(X_test), clf.predict_proba(X_test))
    assert all(p.device.type == "cpu" for p in pickle.loads(pickle.dumps(clf)).model_.module.parameters())
    code, out, err = cli("predict", tmp_path / "iris.pt", "--", *map(str, X_test[0]))
    assert code == 0, err
    assert f"predicted label: {clf.predict(X_test[:1])[0]}" in out
    with pytest.raises(ValueError, match="NeuralNetClassifier"):
        NeuralNetRegressor.load(tmp_path / "iris.pt")


def test_estimator_loads_a_cli_run(tutorial_run):
    clf = NeuralNetClassifier.load(tutorial_run.path)
    assert clf.hidden_layer_sizes == (5,) and clf.learning_rate_init == 0.03 and clf.max_iter == 2000
    assert clf.classes_.tolist() == [0, 1] and clf.n_features_in_ == 2 and clf.n_iter_ == 2000
    expected = mlplab.load(tutorial_run.path).predict_proba([[-1, 1], [0.5, 0.2]])
    np.testing.assert_array_equal(clf.predict_proba(np.array([[-1, 1], [0.5, 0.2]])), expected)
    clf.set_params(warm_start=True, max_iter=10).fit(*mlplab.generate("xor-blobs", 80, 20, seed=0)[:2])
    assert clf.n_iter_ == 10 and len(clf.loss_curve_) == 2010  # as MLPClassifier: n_iter_ counts this fit


def test_sample_weight_and_class_weight_shift_the_decision():
    rs = np.random.RandomState(0)
    X = np.concatenate([rs.normal(-0.5, 1, (200, 2)), rs.normal(0.5, 1, (200, 2))])
    y = np.array([0] * 200 + [1] * 200)
    params = {"hidden_layer_sizes": (8,), "learning_rate_init": 0.01, "max_iter": 100, "random_state": 0}
    plain = NeuralNetClassifier(**params).fit(X, y).predict(X).mean()
    weighted = NeuralNetClassifier(**params).fit(X, y, sample_weight=np.where(y == 1, 10.0, 1.0)).predict(X).mean()
    by_class = NeuralNetClassifier(class_weight={0: 1.0, 1: 10.0}, **params).fit(X, y).predict(X).mean()
    assert weighted > plain + 0.2 and by_class == pytest.approx(weighted)
    ones = NeuralNetClassifier(**params).fit(X, y, sample_weight=np.ones(400))
    np.testing.assert_array_equal(ones.predict_proba(X), NeuralNetClassifier(**params).fit(X, y).predict_proba(X))
    imbalanced = np.concatenate([np.zeros(360), np.ones(40)]).astype(int)
    recall = {}
    for class_weight in (None, "balanced"):
        clf = NeuralNetClassifier(class_weight=class_weight, **params).fit(X, imbalanced)
        recall[class_weight] = (clf.predict(X)[imbalanced == 1] == 1).mean()
    assert recall["balanced"] > recall[None]


def test_partial_fit_and_warm_start(iris_split):
    X_train, X_test, y_train, y_test = iris_split
    clf = NeuralNetClassifier(hidden_layer_sizes=(16,), learning_rate_init=0.01, random_state=0)
    with pytest.raises(ValueError, match="classes must be passed"):
        clf.partial_fit(X_train, y_train)
    clf.partial_fit(X_train[:20], y_train[:20], classes=[0, 1, 2])
    assert clf.classes_.tolist() == [0, 1, 2] and clf.n_iter_ == 1
    for _ in range(60):
        clf.partial_fit(X_train, y_train)
    assert clf.n_iter_ == 1 and len(clf.loss_curve_) == 61 and clf.score(X_test, y_test) > 0.85
    with pytest.raises(ValueError, match="not in classes_"):
        clf.partial_fit(X_train[:3], [0, 1, 7])
    warm = NeuralNetClassifier(hidden_layer_sizes=(16,), learning_rate_init=0.01, max_iter=30, warm_start=True,
                               random_state=0)
    warm.fit(X_train, y_train)
    first = warm.loss_curve_[-1]
    warm.fit(X_train, y_train)
    assert warm.n_iter_ == 30 and len(warm.loss_curve_) == 60 and warm.loss_curve_[-1] < first
    straight = NeuralNetClassifier(hidden_layer_sizes=(16,), learning_rate_init=0.01, max_iter=60, random_state=0)
    np.testing.assert_allclose(straight.fit(X_train, y_train).loss_curve_, warm.loss_curve_, rtol=1e-9)


def test_early_stopping_records_validation_scores():
    X, y = load_breast_cancer(return_X_y=True)
    clf = make_pipeline(StandardScaler(), NeuralNetClassifier(hidden_layer_sizes=(64,), learning_rate_init=0.01,
                                                              max_iter=500,
                                                              early_stopping=True, n_iter_no_change=5, random_state=0))
    clf.fit(X, y)
    model = clf[-1]
    assert model.n_iter_ < 500 and len(model.validation_scores_) == model.n_iter_
    assert model.best_validation_score_ == max(model.validation_scores_)


@pytest.mark.parametrize("loader", [load_iris, load_wine, load_breast_cancer], ids=lambda f: f.__name__)
def test_accuracy_within_a_point_of_mlpclassifier(loader):
    """Same layer sizes, optimiser, learning rate, batch size and epoch budget; mean over 3 splits."""
    X, y = loader(return_X_y=True)
    ours, theirs = [], []
    for seed in range(3):
        X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=seed, stratify=y)
        mine = make_pipeline(StandardScaler(), NeuralNetClassifier(hidden_layer_sizes=(100,), random_state=seed))
        sk = make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(100,), random_state=seed))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            ours.append(mine.fit(X_train, y_train).score(X_test, y_test))
            theirs.append(sk.fit(X_train, y_train).score(X_test, y_test))
    assert np.mean(ours) >= np.mean(theirs) - 0.01, (ours, theirs)
