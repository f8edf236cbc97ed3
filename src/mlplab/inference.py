"""Using a trained network: the one inference path, :class:`TrainedModel` and :func:`load`.

Every prediction mlplab makes goes through :func:`infer`: rows (already encoded as the network's input
matrix) -> logits -> probabilities -> predicted class indices. The CLI's ``predict`` and ``evaluate``,
the scikit-learn estimators, the figures, the run folder's confusion matrix and the per-epoch scores of
training all call it, so chunking, device moves, eval mode and the float64 output functions live here
once. :class:`TrainedModel` adds what a user needs around it: the preprocessing of raw rows and the
class labels.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .config import MlplabError
from .metrics import predicted_indices, probabilities_from_logits
from .model import ACTIVATIONS, MLP, build_mlp, mlp_from_state_dict
from .preprocess import DataError, Preprocessor, as_table, unscale_target

__all__ = ["INFERENCE_CHUNK_ROWS", "Outputs", "TrainedModel", "feature_columns", "infer", "load",
           "model_from_state_dict"]

# Rows per forward pass: faster than one huge product, and peak memory stays flat (~8k rows is where the
# per-call overhead stops mattering for the widths mlplab trains).
INFERENCE_CHUNK_ROWS = 8192


@dataclass
class Outputs:
    """What the network says about some rows, at each step of the inference path.

    Attributes
    ----------
    logits : ndarray of shape (n, n_outputs), float64
        The last layer's outputs.
    task : str
        ``binary``, ``multiclass`` or ``regression``: which output function applies.
    target_scaling : list of float or None
        Regression trained on a standardised target: its ``[mean, std]``, which turns the network's
        output back into the target's units.
    """

    logits: np.ndarray
    task: str
    target_scaling: list[float] | None = None

    @property
    def scores(self) -> np.ndarray:
        """Logits as scikit-learn's ``decision_function`` gives them: (n,) for binary and regression
        (one output unit), (n, k) for multiclass."""
        return self.logits if self.task == "multiclass" else self.logits[:, 0]

    @cached_property
    def probabilities(self) -> np.ndarray:
        """Binary: P(class 1), shape (n,); multiclass: softmax rows (n, k); regression: the values, in
        the target's units. Computed in float64 (``metrics.probabilities_from_logits``), so rows sum to 1."""
        return unscale_target(probabilities_from_logits(self.logits, self.task), self.target_scaling)

    @property
    def class_probabilities(self) -> np.ndarray:
        """One column per class, (n, n_classes), as ``predict_proba`` returns them."""
        if self.task == "regression":
            raise MlplabError("a regression model has no class probabilities; use predict")
        if self.task == "binary":
            return np.stack([1.0 - self.probabilities, self.probabilities], axis=1)
        return self.probabilities

    @property
    def indices(self) -> np.ndarray:
        """Predicted class indices (binary: P(class 1) >= 0.5; multiclass: the most probable)."""
        return predicted_indices(self.probabilities)


def infer(module: torch.nn.Module, x: np.ndarray | torch.Tensor, task: str) -> Outputs:
    """The one forward pass for inference: ``x`` (encoded rows, a NumPy matrix or a tensor) through
    ``module`` in eval mode (dropout off; the module's mode is restored after), without autograd, in
    chunks of :data:`INFERENCE_CHUNK_ROWS` moved to the module's device and dtype. Only dropout behaves
    differently in eval mode and switching costs ~10 µs, so an MLP without dropout is not switched (the
    training loop scores a split every epoch)."""
    parameter = next(module.parameters())
    n_rows = len(x)
    logits = np.empty((n_rows, module.sizes[-1]))
    was_training = module.training
    if getattr(module, "uses_dropout", True):
        module.eval()
    try:
        with torch.inference_mode():
            for start in range(0, n_rows, INFERENCE_CHUNK_ROWS):
                chunk = x[start:start + INFERENCE_CHUNK_ROWS]
                chunk = torch.from_numpy(chunk) if isinstance(chunk, np.ndarray) else chunk
                chunk = chunk.to(device=parameter.device, dtype=parameter.dtype)
                logits[start:start + INFERENCE_CHUNK_ROWS] = module(chunk).cpu().numpy()
    finally:
        if module.training != was_training:
            module.train(was_training)
    return Outputs(logits, task)


@dataclass
class TrainedModel:
    """A trained network with everything needed to use it: preprocessing, task and class labels.

    Examples
    --------
    >>> import mlplab
    >>> run = mlplab.train(mlplab.Config.from_dict({"training": {"epochs": 300}}), save=False)
    >>> run.model.predict([[-1.0, 1.0], [1.0, 1.0]]).tolist()
    [1, 0]
    >>> run.model.predict_proba([[-1.0, 1.0]]).shape  # one column per class, as in scikit-learn
    (1, 2)
    """

    module: MLP
    task: str
    classes: list[Any] | None
    preprocessor: Preprocessor
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def feature_names(self) -> list[str]:
        return self.preprocessor.feature_names

    def outputs(self, x: Any, *, encoded: bool = False) -> Outputs:
        """The network's :class:`Outputs` for rows ``x`` (raw rows, or with ``encoded=True`` rows already
        in the network's input encoding, such as a plot's grid)."""
        outputs = infer(self.module, x if encoded else self.encode(x), self.task)
        outputs.target_scaling = self.meta.get("target_scaling")
        return outputs

    def decision_function(self, x: Any) -> np.ndarray:
        """The network's raw outputs (logits) in float64: shape (n,) for binary and regression, (n, k)
        for multiclass."""
        return self.outputs(x).scores

    def predict_proba(self, x: Any) -> np.ndarray:
        """Class probabilities, shape (n, n_classes), columns in the order of ``classes``. Computed in
        float64 from the logits, so rows sum to 1 and the ranking of the logits is kept."""
        if self.task == "regression":
            raise MlplabError("a regression model has no class probabilities; use predict")
        return self.outputs(x).class_probabilities

    def predict(self, x: Any) -> np.ndarray:
        """Class labels as they were in the training data, or values for regression."""
        return self.predictions(self.outputs(x))

    def predictions(self, outputs: Outputs) -> np.ndarray:
        """What :meth:`predict` returns, from outputs already computed (one forward pass serves both the
        probabilities and the labels)."""
        if self.task == "regression":
            return outputs.probabilities  # the values, in the target's units
        return np.asarray(self.classes)[outputs.indices]

    def encode(self, x: Any) -> np.ndarray:
        """Rows as the network's input matrix: a numeric array goes straight through (no copy when its
        dtype already fits); tables, DataFrames and text columns go through the preprocessing."""
        dtype = np.dtype(str(next(self.module.parameters()).dtype).replace("torch.", ""))
        if self.preprocessor.all_numeric and not hasattr(x, "columns") and not isinstance(x, dict):
            try:
                array = np.asarray(x)
            except ValueError:  # NumPy refuses ragged nested lists
                raise DataError("rows have different lengths; every row needs the same features") from None
            if array.dtype.kind in "biuf" and array.ndim in (1, 2):
                array = array.reshape(1, -1) if array.ndim == 1 else array
                if array.shape[1] != len(self.feature_names):
                    raise DataError(f"expected {len(self.feature_names)} feature(s) per row "
                                    f"({', '.join(self.feature_names)}), got {array.shape[1]}")
                return self.preprocessor.transform_matrix(array, dtype)
        return self.preprocessor.transform(as_table(x, self.feature_names), dtype)

    def save(self, path: str | Path) -> None:
        save_checkpoint(path, self.module.state_dict(), self.meta)


def load(path: str | Path, *, allow_incomplete: bool = False) -> TrainedModel:
    """Load a trained model from a run folder or a checkpoint file; needs nothing else.

    A run that did not complete (interrupted, or diverged, after a periodic checkpoint) is refused
    unless ``allow_incomplete``: its weights are those of some mid-way epoch.

    Examples
    --------
    >>> import mlplab, tempfile
    >>> folder = tempfile.mkdtemp()
    >>> run = mlplab.train(mlplab.Config.from_dict({"training": {"epochs": 300}}), out=folder)
    >>> mlplab.load(folder).predict([[-1, 1]]).tolist()
    [1]
    """
    checkpoint = load_checkpoint(path)
    meta = checkpoint.meta
    if not meta.get("complete", True) and not allow_incomplete:
        from .schema import progress

        raise CheckpointError(f"{path} is an incomplete run ({progress(meta)}); resume it with "
                              f"`mlplab train --resume {path}`, or pass --allow-incomplete to use it as it is")
    try:
        module = build_mlp(meta["architecture"])
        module.load_state_dict(checkpoint.weights)
        preprocessor = Preprocessor.from_dict(meta["preprocessor"])
    except (KeyError, TypeError, RuntimeError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CheckpointError(f"{path}: the checkpoint's description does not fit its weights ({reason})") from None
    module.eval()
    return TrainedModel(module, meta["task"], meta.get("classes"), preprocessor, meta)


def model_from_state_dict(path: str | Path, activation: str = "relu", task: str = "auto") -> TrainedModel:
    """A :class:`TrainedModel` from a plain state_dict file (the tutorial's ``model.pt``): the layer sizes
    come from the weights; features are named x1, x2, ...; ``task`` ``auto`` reads one output as binary
    (sigmoid) and more as multiclass (softmax), or give ``regression``."""
    from .checkpoint import load_state_dict

    if activation not in ACTIVATIONS:
        raise MlplabError(f"--activation must be one of {', '.join(ACTIVATIONS)}; got {activation!r}")
    try:
        module = mlp_from_state_dict(load_state_dict(path), activation)
    except ValueError as error:
        raise CheckpointError(f"{path}: {error}") from None
    n_inputs, n_outputs = module.sizes[0], module.sizes[-1]
    if task == "regression":
        classes = None
    else:
        task, classes = ("binary", [0, 1]) if n_outputs == 1 else ("multiclass", list(range(n_outputs)))
    preprocessor = Preprocessor([{"name": f"x{i + 1}", "kind": "numeric"} for i in range(n_inputs)])
    return TrainedModel(module.eval(), task, classes, preprocessor)


def feature_columns(model: TrainedModel, table: dict[str, Any], source: str) -> dict[str, Any]:
    """The columns of ``table`` that ``model`` takes, in its order. A model from a bare state_dict has no
    feature names (x1, x2, ...): it then takes the table's first columns in order. ``source`` names the
    table in the error."""
    names = model.feature_names
    missing = [name for name in names if name not in table]
    if missing and len(table) >= len(names) and all(name.startswith("x") for name in names):
        missing = []  # a state_dict model has no names: take the first columns in order
        table = dict(zip(names, table.values()))
    if missing:
        raise DataError(f"{source} lacks the feature column(s) {', '.join(missing)}; "
                        f"the model was trained on {', '.join(names)}")
    return {name: table[name] for name in names}
