"""scikit-learn estimators: drop-in where MLPClassifier/MLPRegressor are used (pipelines, grid search,
cross-validation), trained by the same library code as ``mlplab train`` (no second training loop) and
saved in the same checkpoint format, so ``mlplab predict`` works on a saved estimator and an estimator
loads a CLI run.

Needs scikit-learn (``pip install 'mlplab[sklearn]'``).
"""

from __future__ import annotations

import copy
import json
import numbers
from pathlib import Path
from typing import Any

import numpy as np
import torch

try:
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
    from sklearn.utils import check_random_state
    from sklearn.utils.class_weight import compute_sample_weight
    from sklearn.utils.multiclass import check_classification_targets
    from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError("mlplab's scikit-learn estimators need scikit-learn: pip install 'mlplab[sklearn]'") from error

from .checkpoint import load_checkpoint, save_checkpoint
from .config import Config, ConfigError, MlplabError
from .data import build_dataset
from .inference import TrainedModel, load
from .preprocess import TargetEncoder
from .run import fit_dataset, new_training_state

__all__ = ["NeuralNetClassifier", "NeuralNetRegressor"]

# estimator parameter -> config key: the config's rules validate every parameter (one set of rules for
# the CLI, TOML files and the estimators), and an error names the parameter, not the config key.
PARAMETERS = {
    "hidden_sizes": "model.hidden_sizes",
    "activation": "model.activation",
    "dropout": "model.dropout",
    "optimizer": "training.optimizer",
    "learning_rate": "training.learning_rate",
    "momentum": "training.momentum",
    "weight_decay": "training.weight_decay",
    "epochs": "training.epochs",
    "batch_size": "training.batch_size",
    "early_stopping": "training.early_stopping",
    "patience": "training.patience",
    "validation_fraction": "data.val_fraction",
    "device": "training.device",
    "dtype": "model.dtype",
}


class _NeuralNet(BaseEstimator):
    _task_kind = "classification"

    def __init__(self, hidden_sizes=(100,), activation="relu", optimizer="adam", learning_rate=0.001, epochs=200,
                 batch_size="auto", momentum=0.9, weight_decay=0.0, dropout=0.0, early_stopping=False,
                 validation_fraction=0.1, patience=10, random_state=None, device="cpu", dtype="auto",
                 verbose=False, warm_start=False):
        self.hidden_sizes = hidden_sizes
        self.activation = activation
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.epochs = epochs
        self.batch_size = batch_size
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.dropout = dropout
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.random_state = random_state
        self.device = device
        self.dtype = dtype
        self.verbose = verbose
        self.warm_start = warm_start

    # --- validation: parameters -> a Config -------------------------------------------------------------

    def _config(self, n_rows: int, *, partial: bool = False, input_dtype: Any = np.float64) -> Config:
        config = Config()
        hidden = self.hidden_sizes
        hidden = [hidden] if isinstance(hidden, numbers.Integral) else hidden
        values = {name: getattr(self, name) for name in PARAMETERS}
        if values["dtype"] == "auto":  # compute in the input's precision: float32 stays float32 (no copy)
            values["dtype"] = "float32" if np.dtype(input_dtype) == np.float32 else "float64"
        values["hidden_sizes"] = list(hidden) if isinstance(hidden, (list, tuple, np.ndarray)) else hidden
        if values["batch_size"] == "auto":
            values["batch_size"] = min(200, n_rows)
        if values["optimizer"] not in ("sgd", "rmsprop"):
            values["momentum"] = 0.0  # only sgd and rmsprop use it
        if not self.early_stopping or partial:
            values["validation_fraction"], values["early_stopping"] = 0.0, False
        for name, key in PARAMETERS.items():
            config.set(key, values[name])
        config.seed = self._seed()
        try:
            config.validate()
        except ConfigError as error:
            name = next((name for name, key in PARAMETERS.items() if key == error.key), error.key)
            raise ValueError(f"The '{name}' parameter of {type(self).__name__} {error.problem}.") from None
        config.training.log_every = max(1, config.training.epochs // 10)
        return config

    def _seed(self) -> int:
        if isinstance(self.random_state, numbers.Integral) and 0 <= self.random_state < 2**32:
            return int(self.random_state)
        return int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))

    # --- fitting ------------------------------------------------------------------------------------------

    def fit(self, X, y, sample_weight=None):
        """Train on ``X``, ``y`` (rows weighted by ``sample_weight``). With ``warm_start=True`` a fitted
        estimator continues from its weights for ``epochs`` more epochs. Returns self."""
        return self._fit(X, y, sample_weight, continuing=self.warm_start and hasattr(self, "model_"))

    def _fit(self, X, y, sample_weight, *, continuing: bool, partial: bool = False, classes=None):
        X, y = validate_data(self, X, y, reset=not continuing, dtype=[np.float64, np.float32],
                             y_numeric=self._task_kind == "regression")
        target = self._target_encoder(y, continuing, classes)
        weight = self._row_weights(X, y, sample_weight)
        # a model keeps the precision it was first fitted in
        input_dtype = X.dtype
        if continuing:
            input_dtype = str(next(self.model_.module.parameters()).dtype).removeprefix("torch.")
        config = self._config(len(X), partial=partial, input_dtype=input_dtype)
        state = self._training_state() if continuing else None
        done = state.epoch if state is not None else 0
        config.training.epochs = done + (1 if partial else config.training.epochs)
        names = [str(name) for name in getattr(self, "feature_names_in_", [])] or [
            f"x{i}" for i in range(X.shape[1])]
        dataset = build_dataset(config, X, y, None, None, {"name": "arrays", "target": "y"}, target, weight,
                                feature_names=names)
        with torch.random.fork_rng(devices=[]):  # leave the caller's global torch RNG as it was
            if state is not None:
                torch.manual_seed(config.seed + done)
            run, state = fit_dataset(config, dataset, state=state, verbose=bool(self.verbose))
        self.model_, self._state = run.model, state
        self.model_.meta["estimator"] = {"class": type(self).__name__, "params": self._json_params()}
        self._set_history(run.history)
        return self

    def _target_encoder(self, y, continuing: bool, classes) -> TargetEncoder:
        if self._task_kind == "regression":
            return TargetEncoder("regression")
        check_classification_targets(y)
        seen = np.unique(y)
        if continuing:
            unknown = np.setdiff1d(seen, self.classes_)
            if len(unknown):
                raise ValueError(f"y has labels {unknown.tolist()} not in classes_ {self.classes_.tolist()}")
        else:
            self.classes_ = np.unique(classes) if classes is not None else seen
            if len(self.classes_) < 2:
                raise ValueError(f"{type(self).__name__} needs samples of at least 2 classes in the data, "
                                 f"but the data contain only one class: {self.classes_[0]!r}")
        task = "binary" if len(self.classes_) == 2 else "multiclass"
        return TargetEncoder(task, self.classes_.tolist())

    def _row_weights(self, X, y, sample_weight) -> np.ndarray | None:
        weight = None
        if sample_weight is not None:
            weight = _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True)
        class_weight = getattr(self, "class_weight", None)
        if class_weight is not None:
            by_class = compute_sample_weight(class_weight, y)
            weight = by_class if weight is None else weight * by_class
        if weight is not None and np.all(weight == 1.0):
            return None  # exactly the unweighted mean, bit for bit
        return weight

    def _training_state(self):
        """The state to continue from: kept from the last fit, or rebuilt around loaded/unpickled weights
        (with a fresh optimiser)."""
        if getattr(self, "_state", None) is not None:
            return self._state
        state = new_training_state(self.model_.module, self._config(1))
        state.epoch, state.history = self.n_iter_, list(self.history_)
        return state

    def _set_history(self, history: list[dict[str, Any]]) -> None:
        self.history_ = history
        self.n_iter_ = len(history)
        self.loss_curve_ = [record["train_loss"] for record in history]
        headline = "val_r2" if self._task_kind == "regression" else "val_accuracy"
        scores = [record[headline] for record in history if headline in record]
        self.validation_scores_ = scores if scores else None
        self.best_validation_score_ = max(scores) if scores else None

    # --- using it ------------------------------------------------------------------------------------------

    def _checked(self, X) -> np.ndarray:
        check_is_fitted(self, "model_")
        return validate_data(self, X, reset=False, dtype=[np.float64, np.float32])

    # --- persistence without pickle --------------------------------------------------------------------

    def _json_params(self) -> dict[str, Any]:
        params = self.get_params()
        params["hidden_sizes"] = list(np.atleast_1d(params["hidden_sizes"]).tolist())
        if not isinstance(params["random_state"], (int, type(None))):
            params["random_state"] = None
        if isinstance(params.get("class_weight"), dict):
            params["class_weight"] = [[_plain(k), v] for k, v in params["class_weight"].items()]
        return params

    def save(self, path: str | Path) -> None:
        """Write a checkpoint (the CLI's format, no pickle): ``mlplab predict PATH`` and ``load`` read it."""
        check_is_fitted(self, "model_")
        training_state = {"history": json.dumps(self.history_)}
        save_checkpoint(path, self.model_.module.state_dict(), self.model_.meta, training_state)

    @classmethod
    def load(cls, path: str | Path):
        """Load an estimator saved with :meth:`save`, or any mlplab run folder or checkpoint."""
        checkpoint = load_checkpoint(path)
        meta = checkpoint.meta
        is_regression = meta.get("task") == "regression"
        if is_regression != (cls._task_kind == "regression"):
            raise ValueError(f"{path} holds a {meta.get('task')} model; load it with "
                             f"{'NeuralNetRegressor' if is_regression else 'NeuralNetClassifier'}")
        model = load(path)
        if any(feature["kind"] != "numeric" for feature in model.preprocessor.features) or \
                model.preprocessor.scale != "none":
            raise ValueError(f"{path} was trained with categorical features or scaling, which an estimator "
                             "does not apply; use mlplab.load(path) instead")
        saved = meta.get("estimator", {}).get("params")
        estimator = cls(**_params_from_saved(saved, cls)) if saved else cls(**_params_from_config(meta["config"]))
        estimator.model_ = model
        names = model.feature_names
        estimator.n_features_in_ = len(names)
        if names != [f"x{i}" for i in range(len(names))] and names != [f"x{i + 1}" for i in range(len(names))]:
            estimator.feature_names_in_ = np.asarray(names, dtype=object)
        if cls._task_kind != "regression":
            estimator.classes_ = np.asarray(model.classes)
        estimator._set_history(_saved_history(path, checkpoint.training_state))
        estimator.n_iter_ = meta.get("epoch", estimator.n_iter_)
        return estimator

    # --- pickling: CPU-safe ----------------------------------------------------------------------------

    def __getstate__(self):
        state = super().__getstate__()
        if "model_" in state:  # weights on the CPU, so a GPU-trained model unpickles anywhere
            model = state["model_"]
            state["model_"] = TrainedModel(copy.deepcopy(model.module).cpu(), model.task, model.classes,
                                           model.preprocessor, model.meta)
        state["_state"] = None  # optimiser state stays behind; warm_start resumes with a fresh optimiser
        return state


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _params_from_saved(saved: dict[str, Any], cls) -> dict[str, Any]:
    params = {key: value for key, value in saved.items() if key in cls().get_params()}
    params["hidden_sizes"] = tuple(params.get("hidden_sizes", (100,)))
    if isinstance(params.get("class_weight"), list):
        params["class_weight"] = {key: value for key, value in params["class_weight"]}
    return params


def _params_from_config(config: dict[str, Any]) -> dict[str, Any]:
    """Estimator parameters that reproduce a CLI run's settings."""
    training, model, data = config["training"], config["model"], config["data"]
    return {"hidden_sizes": tuple(model["hidden_sizes"]), "activation": model["activation"],
            "dropout": model["dropout"], "optimizer": training["optimizer"],
            "learning_rate": training["learning_rate"], "epochs": training["epochs"],
            "batch_size": training.get("batch_size") or "auto", "momentum": training["momentum"],
            "weight_decay": training["weight_decay"], "early_stopping": training["early_stopping"],
            "validation_fraction": data["val_fraction"] or 0.1, "patience": training["patience"],
            "random_state": config["seed"], "device": training["device"], "dtype": model.get("dtype", "float32")}


class NeuralNetClassifier(ClassifierMixin, _NeuralNet):
    """A multi-layer perceptron classifier with the scikit-learn API, trained by mlplab.

    Binary problems use one sigmoid output and binary cross-entropy, more classes a softmax output and
    cross-entropy. ``class_weight`` (a dict or "balanced") and ``sample_weight`` weight the loss.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from mlplab import NeuralNetClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = NeuralNetClassifier(hidden_sizes=(16,), learning_rate=0.01, epochs=100, random_state=0).fit(X, y)
    >>> clf.score(X, y) > 0.95
    True
    >>> clf.predict_proba(X[:1]).shape
    (1, 3)
    """

    def __init__(self, hidden_sizes=(100,), activation="relu", optimizer="adam", learning_rate=0.001, epochs=200,
                 batch_size="auto", momentum=0.9, weight_decay=0.0, dropout=0.0, early_stopping=False,
                 validation_fraction=0.1, patience=10, random_state=None, device="cpu", dtype="auto",
                 verbose=False, warm_start=False, class_weight=None):
        super().__init__(hidden_sizes, activation, optimizer, learning_rate, epochs, batch_size, momentum,
                         weight_decay, dropout, early_stopping, validation_fraction, patience, random_state,
                         device, dtype, verbose, warm_start)
        self.class_weight = class_weight

    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """One epoch over ``X``, ``y``; the first call needs ``classes`` (all labels that will occur)."""
        first = not hasattr(self, "model_")
        if first and classes is None:
            raise ValueError("classes must be passed on the first call to partial_fit")
        return self._fit(X, y, sample_weight, continuing=not first, partial=True, classes=classes)

    def predict_proba(self, X) -> np.ndarray:
        """Probabilities, one column per class in ``classes_`` (two for binary problems)."""
        X = self._checked(X)
        return self.model_.predict_proba(X)

    def decision_function(self, X) -> np.ndarray:
        """Logits: shape (n,) for binary problems (> 0 means classes_[1]), (n, n_classes) otherwise."""
        X = self._checked(X)
        return self.model_.decision_function(X)

    def predict(self, X) -> np.ndarray:
        X = self._checked(X)
        return self.classes_[self.model_.outputs(X).indices]  # classes_ itself: its dtype is kept


class NeuralNetRegressor(RegressorMixin, _NeuralNet):
    """A multi-layer perceptron regressor (linear output, mean squared error) with the scikit-learn API.

    Examples
    --------
    >>> import numpy as np
    >>> from mlplab import NeuralNetRegressor
    >>> X = np.linspace(-1, 1, 200).reshape(-1, 1)
    >>> reg = NeuralNetRegressor(hidden_sizes=(32,), learning_rate=0.01, epochs=300, random_state=0)
    >>> reg.fit(X, X[:, 0] ** 2).score(X, X[:, 0] ** 2) > 0.95
    True
    """

    _task_kind = "regression"

    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over ``X``, ``y``, continuing from the current weights."""
        return self._fit(X, y, sample_weight, continuing=hasattr(self, "model_"), partial=True)

    def predict(self, X) -> np.ndarray:
        X = self._checked(X)
        return self.model_.predict(X)


def _saved_history(path, saved: dict[str, Any]) -> list[dict[str, Any]]:
    """The history saved with an estimator (in its checkpoint) or a CLI run (its history.json)."""
    from .run import read_history

    if "history" in saved or not saved:
        return json.loads(saved.get("history", "[]"))
    try:
        return read_history(Path(path), saved)
    except MlplabError:  # a checkpoint moved away from its run folder: the weights still load
        return []
