"""What the estimators share that is not the estimator itself: scikit-learn's parameter names mapped
onto mlplab's config keys, their numpydoc sections, and the stopping rule scikit-learn applies without
early stopping."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from .training import Callback

# scikit-learn's parameter -> config key: the config's rules validate every parameter (one set of rules for
# the CLI, TOML files and the estimators), and an error names the parameter, not the config key. The CLI
# and TOML keep their own short names (--hidden, --lr, --epochs): they are typed by hand and mirror the
# config's sections, while these are the names scikit-learn users' code already spells.
PARAMETERS = {
    "hidden_layer_sizes": "model.hidden_sizes",
    "activation": "model.activation",
    "solver": "training.optimizer",
    "alpha": "training.weight_decay",
    "batch_size": "training.batch_size",
    "learning_rate_init": "training.learning_rate",
    "max_iter": "training.epochs",
    "early_stopping": "training.early_stopping",
    "validation_fraction": "data.val_fraction",
    "n_iter_no_change": "training.patience",
    "momentum": "training.momentum",
    "nesterovs_momentum": "training.nesterov",
    "dropout": "model.dropout",
    "scale": "data.scale",
    "device": "training.device",
    "dtype": "model.dtype",
}
ACTIVATION_NAMES = {"logistic": "sigmoid"}  # scikit-learn's spelling -> mlplab's; the others are the same
# scikit-learn parameters mlplab accepts (so code passing them runs) but implements only at these values.
FIXED = {"learning_rate": "constant", "power_t": 0.5, "shuffle": True, "beta_1": 0.9, "beta_2": 0.999,
         "epsilon": 1e-8, "max_fun": 15000}

_PARAMETERS_DOC = """
    Parameters
    ----------
    hidden_layer_sizes : int or tuple of int, default=(100,)
        Units of each hidden layer, as in MLPClassifier.
    activation : {"relu", "tanh", "logistic", "identity", "leaky_relu", "elu", "selu", "gelu", "silu", \
"softplus"}, default="relu"
        Hidden activation; ``"logistic"`` is the sigmoid.
    solver : {"adam", "sgd", "adamw", "rmsprop"}, default="adam"
        The optimiser. ``"lbfgs"`` is not available (mlplab trains by gradient steps).
    alpha : float, default=0.0001
        L2 penalty with scikit-learn's meaning: ``alpha / 2 * ||W||^2 / batch_size`` added to each
        batch's mean loss (an optimiser weight decay of ``alpha / batch_size``).
    batch_size : int or "auto", default="auto"
        Mini-batch size; ``"auto"`` is ``min(200, n_samples)``.
    learning_rate : {"constant"}, default="constant"
        Learning-rate schedule; only the constant rate is implemented.
    learning_rate_init : float, default=0.001
        The step size.
    power_t, shuffle, beta_1, beta_2, epsilon, max_fun
        Accepted for compatibility at scikit-learn's defaults only (rows are always shuffled).
    max_iter : int, default=200
        Epochs (passes over the data).
    random_state : int, RandomState or None, default=None
        Seeds the weights, the batch order and the validation split.
    tol : float, default=1e-4
        Without early stopping, training stops once the training loss has not improved by ``tol`` for
        ``n_iter_no_change`` epochs, as in scikit-learn.
    verbose : bool, default=False
        Print the loss as training goes.
    warm_start : bool, default=False
        A second ``fit`` continues from the fitted weights for ``max_iter`` more epochs.
    momentum : float, default=0.9
        SGD momentum (also RMSprop's); ignored by Adam.
    nesterovs_momentum : bool, default=True
        Nesterov momentum for SGD with momentum > 0.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the rows (stratified for classes) and stop when the
        validation loss has not improved for ``n_iter_no_change`` epochs; the best weights are kept.
    validation_fraction : float, default=0.1
        Share of rows held out for early stopping.
    n_iter_no_change : int, default=10
        Patience of both stopping rules, in epochs.
    dropout : float, default=0.0
        mlplab extra: dropout after each hidden activation.
    scale : {"standard", "minmax", "none"}, default="standard"
        mlplab extra: feature scaling fitted on the training rows and applied at predict (harmless
        inside a pipeline that already scales).
    device : {"cpu", "cuda", "mps", "auto"}, default="cpu"
        mlplab extra: where to train.
    dtype : {"auto", "float64", "float32"}, default="auto"
        mlplab extra: the network's precision. ``auto`` computes in the input's: float32 input stays
        float32 (no copy, half the memory), anything else is float64, as scikit-learn does.
    callbacks : list of mlplab.Callback or None, default=None
        mlplab extra: hooks called at the start, after every epoch and at the end of training.
    log : str, tuple of (str, str) or None, default=None
        mlplab extra: log each fit for an experiment tracker: ``("tensorboard", DIR)``, ``"mlflow"`` or
        ``("mlflow", URI)`` (the per-epoch history, the parameters, the final metrics; needs
        ``mlplab[tensorboard]`` or ``mlplab[mlflow]``).
"""

_ATTRIBUTES_DOC = """
    Attributes
    ----------
    loss_curve_ : list of float
        Training loss after each epoch.
    best_loss_ : float or None
        The lowest training loss; None with early stopping (as in scikit-learn).
    validation_scores_ : list of float or None
        Accuracy (R^2 for the regressor) on the validation rows after each epoch, with early stopping.
    best_validation_score_ : float or None
        The best of ``validation_scores_``.
    n_iter_ : int
        Epochs trained.
    t_ : int
        Training rows seen (``n_iter_`` times the rows trained on).
    coefs_ : list of ndarray of shape (n_in, n_out)
        Each layer's weights, NumPy views of the network's (no copy on the CPU).
    intercepts_ : list of ndarray of shape (n_out,)
        Each layer's biases, NumPy views.
    n_features_in_ : int
        Number of input columns seen in ``fit``.
    feature_names_in_ : ndarray of str
        Column names, when ``X`` was a DataFrame with string column names.
    n_layers_ : int
        Layers including input and output.
    n_outputs_ : int
        Output units.
    out_activation_ : str
        "logistic", "softmax" or "identity".
    model_ : mlplab.TrainedModel
        The trained network with its preprocessing (``mlplab predict`` reads the same checkpoint).
"""


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _params_from_saved(saved: dict[str, Any], cls) -> dict[str, Any]:
    params = {key: value for key, value in saved.items() if key in cls().get_params()}
    params["hidden_layer_sizes"] = tuple(params.get("hidden_layer_sizes", (100,)))
    if isinstance(params.get("class_weight"), list):
        params["class_weight"] = {key: value for key, value in params["class_weight"]}
    return params


def _params_from_config(config: dict[str, Any]) -> dict[str, Any]:
    """Estimator parameters that reproduce a CLI run's settings."""
    training, model, data = config["training"], config["model"], config["data"]
    batch = training.get("batch_size")
    theirs = {mine: name for name, mine in ACTIVATION_NAMES.items()}
    activation = theirs.get(model["activation"], model["activation"])
    return {"hidden_layer_sizes": tuple(model["hidden_sizes"]), "activation": activation,
            "dropout": model["dropout"], "solver": training["optimizer"],
            "learning_rate_init": training["learning_rate"], "max_iter": training["epochs"],
            "batch_size": batch or "auto", "alpha": training["weight_decay"] * (batch or 200),
            "momentum": training["momentum"], "nesterovs_momentum": bool(training.get("nesterov")),
            "early_stopping": training["early_stopping"], "validation_fraction": data["val_fraction"] or 0.1,
            "n_iter_no_change": training["patience"], "random_state": config["seed"],
            "device": training["device"], "dtype": model.get("dtype", "float32"), "scale": data.get("scale", "none")}


class _Converged(Callback):
    """scikit-learn's stopping rule without early stopping: the training loss has not improved by
    ``tol`` for more than ``n_iter_no_change`` epochs."""

    reads_scores_every_epoch = False

    def __init__(self, tol: float, n_iter_no_change: int):
        self.tol, self.n_iter_no_change = tol, n_iter_no_change
        self.best, self.count = np.inf, 0

    def on_epoch_end(self, state) -> None:
        loss = state.history[-1]["train_loss"]
        self.count = self.count + 1 if loss > self.best - self.tol else 0
        self.best = min(self.best, loss)
        if self.count > self.n_iter_no_change:
            state.stop_reason = (f"training loss did not improve more than tol={self.tol:g} for "
                                 f"{self.n_iter_no_change} consecutive epochs")


def _has_text_columns(X) -> bool:
    """A pandas DataFrame (not imported here) with a text, category or boolean-object column."""
    dtypes = getattr(X, "dtypes", None)
    return dtypes is not None and hasattr(X, "columns") and any(
        getattr(dtype, "kind", "O") not in "biuf" for dtype in dtypes)


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)
