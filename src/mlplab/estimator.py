"""scikit-learn estimators: drop-in where MLPClassifier/MLPRegressor are used (pipelines, grid search,
cross-validation), trained by the same library code as ``mlplab train`` (no second training loop) and
saved in the same checkpoint format, so ``mlplab predict`` works on a saved estimator and an estimator
loads a CLI run.

Needs scikit-learn (``pip install 'mlplab[sklearn]'``).
"""

from __future__ import annotations

import contextlib
import copy
import json
import numbers
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

try:
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.utils import check_random_state, column_or_1d
    from sklearn.utils.class_weight import compute_sample_weight
    from sklearn.utils.multiclass import check_classification_targets
    from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError("mlplab's scikit-learn estimators need scikit-learn: pip install 'mlplab[sklearn]'") from error

from .checkpoint import load_checkpoint, save_checkpoint
from .config import Config, ConfigError, MlplabError
from .data import build_dataset
from .estimator_params import (
    _ATTRIBUTES_DOC,
    _PARAMETERS_DOC,
    ACTIVATION_NAMES,
    FIXED,
    PARAMETERS,
    _Converged,
    _has_text_columns,
    _is_number,
    _params_from_config,
    _params_from_saved,
    _plain,
)
from .inference import TrainedModel, load
from .preprocess import TargetEncoder, as_table
from .run import fit_dataset, new_training_state

__all__ = ["NeuralNetClassifier", "NeuralNetRegressor"]

class _NeuralNet(BaseEstimator):
    _task_kind = "classification"

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam", alpha=0.0001,
                 batch_size="auto", learning_rate="constant", learning_rate_init=0.001, power_t=0.5, max_iter=200,
                 shuffle=True, random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1, beta_1=0.9, beta_2=0.999,
                 epsilon=1e-8, n_iter_no_change=10, max_fun=15000, dropout=0.0, scale="standard", device="cpu",
                 dtype="auto", callbacks=None, log=None):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.dropout = dropout
        self.scale = scale
        self.device = device
        self.dtype = dtype
        self.callbacks = callbacks
        self.log = log

    # --- validation: parameters -> a Config -------------------------------------------------------------

    def _config(self, n_rows: int, *, partial: bool = False, input_dtype: Any = np.float64,
                mean_weight: float = 1.0) -> Config:
        for name, value in FIXED.items():
            if getattr(self, name) != value:
                raise ValueError(f"The '{name}' parameter of {type(self).__name__} is accepted for scikit-learn "
                                 f"compatibility only at {value!r}; got {getattr(self, name)!r}.")
        if self.solver == "lbfgs":
            raise ValueError(f"The 'solver' parameter of {type(self).__name__}: 'lbfgs' is not available (mlplab "
                             "trains by gradient steps); use 'adam' or 'sgd'.")
        config = Config()
        hidden = self.hidden_layer_sizes
        hidden = [hidden] if isinstance(hidden, numbers.Integral) else hidden
        values = {name: getattr(self, name) for name in PARAMETERS}
        if values["dtype"] == "auto":  # compute in the input's precision: float32 stays float32 (no copy)
            values["dtype"] = "float32" if np.dtype(input_dtype) == np.float32 else "float64"
        values["hidden_layer_sizes"] = list(hidden) if isinstance(hidden, (list, tuple, np.ndarray)) else hidden
        values["activation"] = ACTIVATION_NAMES.get(self.activation, self.activation)
        batch = min(200, n_rows) if self.batch_size == "auto" else self.batch_size
        if isinstance(batch, numbers.Integral) and not isinstance(batch, bool):
            batch = min(int(batch), n_rows) if batch >= 1 else int(batch)  # scikit-learn clips a batch larger
            # than the data; one below 1 is refused by the config's check, naming the parameter
        values["batch_size"] = batch
        if _is_number(self.alpha) and self.alpha >= 0 and isinstance(batch, int) and batch >= 1:
            # the penalty's gradient as scikit-learn scales it, alpha * W / (the batch's summed sample
            # weight), as decay: with weights, a row of weight 2 counts as that row twice
            values["alpha"] = self.alpha / (batch * mean_weight)
        if values["solver"] not in ("sgd", "rmsprop"):
            values["momentum"] = 0.0  # only sgd and rmsprop use it
        if values["solver"] != "sgd" or not values["momentum"]:
            values["nesterovs_momentum"] = False
        if not self.early_stopping or partial:
            values["validation_fraction"], values["early_stopping"] = 0.0, False
        for name, key in PARAMETERS.items():
            config.set(key, values[name])
        config.data.scale_target = self._task_kind == "regression"
        config.seed = self._seed()
        try:
            config.validate()
        except ConfigError as error:
            name = next((name for name, key in PARAMETERS.items() if key == error.key), error.key)
            raise ValueError(f"The '{name}' parameter of {type(self).__name__} {error.problem}.") from None
        if not _is_number(self.tol) or self.tol < 0:
            raise ValueError(f"The 'tol' parameter of {type(self).__name__} must be a number >= 0, got {self.tol!r}.")
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
        if _has_text_columns(X):  # a DataFrame with text: the library's own one-hot encoding, as the CLI
            X, y = validate_data(self, X, y, reset=not continuing, skip_check_array=True)
            y = column_or_1d(np.asarray(y), warn=True)
            rows = as_table(X, [str(name) for name in X.columns])
        else:
            X, y = validate_data(self, X, y, reset=not continuing, dtype=[np.float64, np.float32],
                                 y_numeric=self._task_kind == "regression")
            rows = X
        weight = self._row_weights(X, y, sample_weight)
        target = self._target_encoder(y, continuing, classes, weight)
        # a model keeps the precision it was first fitted in
        input_dtype = getattr(X, "dtype", np.float64)  # a DataFrame with text columns: float64
        if continuing:
            input_dtype = str(next(self.model_.module.parameters()).dtype).removeprefix("torch.")
        config = self._config(len(X), partial=partial, input_dtype=input_dtype,
                              mean_weight=1.0 if weight is None else float(weight.mean()) or 1.0)
        state = self._training_state() if continuing else None
        done = state.epoch if state is not None else 0
        config.training.epochs = done + (1 if partial else config.training.epochs)
        names = [str(name) for name in getattr(self, "feature_names_in_", [])] or [
            f"x{i}" for i in range(X.shape[1])]
        dataset = build_dataset(config, rows, y, None, None, {"name": "arrays", "target": "y"}, target, weight,
                                feature_names=names)
        logger = self._experiment_logger(config)
        callbacks = list(self.callbacks or []) + ([logger] if logger else [])
        converged = None if config.training.early_stopping or partial else _Converged(self.tol, self.n_iter_no_change)
        with torch.random.fork_rng(devices=[]), logger or contextlib.nullcontext():  # the caller's RNG as it was
            if state is not None:
                torch.manual_seed(config.seed + done)
            run, state = fit_dataset(config, dataset, state=state, verbose=bool(self.verbose),
                                     callbacks=[converged, *callbacks] if converged else callbacks)
            if logger:
                from .explog import log_run_result

                log_run_result(logger, run)
        self.model_, self._state = run.model, state
        self.model_.meta["estimator"] = {"class": type(self).__name__, "params": self._json_params()}
        self._set_history(run.history)
        self.n_iter_ = state.epoch - done  # as scikit-learn: the epochs of this call; loss_curve_ keeps them all
        self.t_ = len(self.loss_curve_) * len(dataset.x_train)
        if converged is not None and state.stop_reason is None and not partial:
            warnings.warn(f"{type(self).__name__}: maximum iterations ({self.max_iter}) reached and the "
                          "optimization hasn't converged yet.", ConvergenceWarning, stacklevel=3)
        return self

    def _experiment_logger(self, config: Config):
        """The tracker ``log`` names (``"mlflow"``, ``("tensorboard", DIR)``, ``("mlflow", URI)``), or None."""
        if self.log is None:
            return None
        kind, where = (self.log, None) if isinstance(self.log, str) else (tuple(self.log) + (None,))[:2]
        from .explog import make_experiment_logger

        try:
            return make_experiment_logger(kind, where, config=config, run_name=type(self).__name__)
        except MlplabError as error:
            raise ValueError(f"The 'log' parameter of {type(self).__name__}: {error}") from None

    def _target_encoder(self, y, continuing: bool, classes, weight=None) -> TargetEncoder:
        if self._task_kind == "regression":
            if not continuing or getattr(self, "_target_scaling", None) is None:
                self._target_scaling = TargetEncoder.fit(np.asarray(y, dtype=np.float64), "regression", True,
                                                         weight).scaling
            return TargetEncoder("regression", scaling=self._target_scaling)
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
        state.epoch, state.history = len(self.history_), list(self.history_)
        return state

    def _set_history(self, history: list[dict[str, Any]]) -> None:
        self.history_ = history
        self.n_iter_ = len(history)
        self.loss_curve_ = [record["train_loss"] for record in history]
        headline = "val_r2" if self._task_kind == "regression" else "val_accuracy"
        scores = [record[headline] for record in history if headline in record]
        self.validation_scores_ = scores if scores else None
        self.best_validation_score_ = max(scores) if scores else None
        self.best_loss_ = None if scores or not self.loss_curve_ else min(self.loss_curve_)

    # --- scikit-learn's fitted attributes, read from the network ---------------------------------------------

    def _linears(self) -> list[torch.nn.Linear]:
        if not hasattr(self, "model_"):
            raise AttributeError("this estimator is not fitted yet; call fit first")
        return [layer for layer in self.model_.module.modules() if isinstance(layer, torch.nn.Linear)]

    @property
    def coefs_(self) -> list[np.ndarray]:
        """Each layer's weights, shape (n_in, n_out): views of the network's tensors on the CPU."""
        return [layer.weight.detach().cpu().numpy().T for layer in self._linears()]

    @property
    def intercepts_(self) -> list[np.ndarray]:
        """Each layer's biases, shape (n_out,): views of the network's tensors on the CPU."""
        return [layer.bias.detach().cpu().numpy() for layer in self._linears()]

    @property
    def n_layers_(self) -> int:
        return len(self._linears()) + 1

    @property
    def n_outputs_(self) -> int:
        return self._linears()[-1].out_features

    @property
    def out_activation_(self) -> str:
        self._linears()
        return {"binary": "logistic", "multiclass": "softmax"}.get(self.model_.task, "identity")

    # --- using it ------------------------------------------------------------------------------------------

    def _checked(self, X):
        check_is_fitted(self, "model_")
        if _has_text_columns(X) or not self.model_.preprocessor.all_numeric:
            validate_data(self, X, reset=False, skip_check_array=True)
            return X  # the model's preprocessing reads the DataFrame's columns by name
        return validate_data(self, X, reset=False, dtype=[np.float64, np.float32])

    # --- persistence without pickle --------------------------------------------------------------------

    def _json_params(self) -> dict[str, Any]:
        params = self.get_params()
        params["hidden_layer_sizes"] = list(np.atleast_1d(params["hidden_layer_sizes"]).tolist())
        params["callbacks"] = params["log"] = None  # code and a place to write: a loaded estimator has none
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


class NeuralNetClassifier(ClassifierMixin, _NeuralNet):
    """A multi-layer perceptron classifier with the scikit-learn API, trained by mlplab.

    A drop-in for :class:`sklearn.neural_network.MLPClassifier`: the same parameter names with the same
    meanings and defaults, the same fitted attributes; mlplab's extras are further parameters. Binary
    problems use one sigmoid output and binary cross-entropy, more classes a softmax output and
    cross-entropy. ``class_weight`` (a dict or "balanced") and ``sample_weight`` weight the loss. A
    pandas DataFrame with text columns trains directly (one-hot encoded by mlplab, missing values imputed).
{parameters}    class_weight : dict, "balanced" or None, default=None
        mlplab extra: weights of the classes in the loss, as in scikit-learn's other classifiers.
{attributes}    classes_ : ndarray
        The class labels.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from mlplab import NeuralNetClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = NeuralNetClassifier(hidden_layer_sizes=(16,), learning_rate_init=0.01, max_iter=100,
    ...                           random_state=0).fit(X, y)
    >>> clf.score(X, y) > 0.95
    True
    >>> clf.predict_proba(X[:1]).shape
    (1, 3)
    >>> [w.shape for w in clf.coefs_]
    [(4, 16), (16, 3)]
    """

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam", alpha=0.0001,
                 batch_size="auto", learning_rate="constant", learning_rate_init=0.001, power_t=0.5, max_iter=200,
                 shuffle=True, random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1, beta_1=0.9, beta_2=0.999,
                 epsilon=1e-8, n_iter_no_change=10, max_fun=15000, dropout=0.0, scale="standard", device="cpu",
                 dtype="auto", callbacks=None, log=None, class_weight=None):
        super().__init__(
            hidden_layer_sizes, activation, solver=solver, alpha=alpha, batch_size=batch_size,
            learning_rate=learning_rate, learning_rate_init=learning_rate_init, power_t=power_t, max_iter=max_iter,
            shuffle=shuffle, random_state=random_state, tol=tol, verbose=verbose, warm_start=warm_start,
            momentum=momentum, nesterovs_momentum=nesterovs_momentum, early_stopping=early_stopping,
            validation_fraction=validation_fraction, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon,
            n_iter_no_change=n_iter_no_change, max_fun=max_fun, dropout=dropout, scale=scale, device=device,
            dtype=dtype, callbacks=callbacks, log=log)
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

    A drop-in for :class:`sklearn.neural_network.MLPRegressor` (same parameter names, meanings, defaults
    and fitted attributes). The target is standardised for training and predictions come back in its
    units, so a target in the thousands needs no scaling by hand.
{parameters}{attributes}
    Examples
    --------
    >>> import numpy as np
    >>> from mlplab import NeuralNetRegressor
    >>> X = np.linspace(-1, 1, 200).reshape(-1, 1)
    >>> reg = NeuralNetRegressor(hidden_layer_sizes=(32,), learning_rate_init=0.01, max_iter=300, random_state=0)
    >>> reg.fit(X, 1000 * X[:, 0] ** 2).score(X, 1000 * X[:, 0] ** 2) > 0.95
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


for _estimator in (NeuralNetClassifier, NeuralNetRegressor):  # one copy of the shared numpydoc sections
    _estimator.__doc__ = _estimator.__doc__.replace("{parameters}", _PARAMETERS_DOC).replace(
        "{attributes}", _ATTRIBUTES_DOC)
