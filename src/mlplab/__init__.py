"""mlplab: build, train, inspect, save and serve small feed-forward neural networks with PyTorch.

The public API, re-exported explicitly. Importing ``mlplab`` does not import torch: the names that
need it are loaded on first use, so ``mlplab --help`` starts fast.

>>> import mlplab
>>> run = mlplab.train(mlplab.Config(), save=False)   # the tutorial network, start to finish
>>> round(run.metrics["test"]["accuracy"], 2)
1.0
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "MLP",
    "Callback",
    "Checkpoint",
    "CheckpointError",
    "Config",
    "ConfigError",
    "DataConfig",
    "DataError",
    "MlplabError",
    "ModelConfig",
    "NeuralNetClassifier",
    "NeuralNetRegressor",
    "RunResult",
    "TrainedModel",
    "TrainingConfig",
    "__version__",
    "generate",
    "load",
    "load_checkpoint",
    "load_config",
    "read_table",
    "resume",
    "run_sweep",
    "sweep_search",
    "train",
]

# name -> module that defines it; resolved lazily by __getattr__ (PEP 562).
_LOCATIONS = {
    "MLP": "model",
    "Callback": "training",
    "Checkpoint": "checkpoint",
    "CheckpointError": "checkpoint",
    "Config": "config",
    "ConfigError": "config",
    "DataConfig": "config",
    "DataError": "preprocess",
    "MlplabError": "config",
    "ModelConfig": "config",
    "NeuralNetClassifier": "estimator",
    "NeuralNetRegressor": "estimator",
    "Run": "run",  # the old name of RunResult; not in __all__
    "RunResult": "run",
    "TrainedModel": "inference",
    "TrainingConfig": "config",
    "generate": "data",
    "load": "inference",
    "load_checkpoint": "checkpoint",
    "load_config": "config",
    "read_table": "data",
    "resume": "run",
    "run_sweep": "sweep",
    "sweep_search": "search",
    "train": "run",
}


def __getattr__(name: str) -> Any:
    if name in _LOCATIONS:
        value = getattr(import_module(f".{_LOCATIONS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'mlplab' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:  # for type checkers and IDEs; at run time the names load lazily
    from .checkpoint import Checkpoint, CheckpointError, load_checkpoint
    from .config import Config, ConfigError, DataConfig, MlplabError, ModelConfig, TrainingConfig, load_config
    from .data import generate, read_table
    from .estimator import NeuralNetClassifier, NeuralNetRegressor
    from .inference import TrainedModel, load
    from .model import MLP
    from .preprocess import DataError
    from .run import Run as Run  # the old name of RunResult
    from .run import RunResult, resume, train
    from .search import sweep_search
    from .sweep import run_sweep
    from .training import Callback
