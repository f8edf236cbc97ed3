"""The training flags: the one table that ties each ``mlplab train`` flag to its config key.

It builds the CLI's parser, applies given flags over a ``--config`` file, and names the flag in
validation errors. It lives on the library side (not in ``cli.py``) so that the commands, and any other
front end that takes flags, read it without importing the parser module.
"""

from __future__ import annotations

import argparse
from typing import Any

from .config import Config, ConfigError, read_config_values

__all__ = ["FLAG_OF_KEY", "LIST_KEYS", "TRAIN_FLAGS", "config_from_args"]

# flag, config key, type, help.
TRAIN_FLAGS: list[tuple[str, str, Any, str]] = [
    ("--dataset", "data.dataset", str, "built-in data set (`mlplab datasets` describes them)"),
    ("--data", "data.path", str, "your own data: a CSV, Parquet or .npz file"),
    ("--target", "data.target", str, "the target column of --data"),
    ("--features", "data.features", str, "comma-separated feature columns (default: all but the target)"),
    ("--test-data", "data.test_path", str, "a separate test file (default: split off --test-fraction)"),
    ("--n-train", "data.n_train", int, "generated training points"),
    ("--n-test", "data.n_test", int, "generated test points"),
    ("--noise", "data.noise", float, "generator noise, e.g. the blobs' std (default: the data set's)"),
    ("--classes", "data.n_classes", int, "classes of blobs/gaussian-quantiles, arms of spiral"),
    ("--test-fraction", "data.test_fraction", float, "share of --data held out for testing"),
    ("--val-fraction", "data.val_fraction", float, "share of training rows held out for validation"),
    ("--input-features", "data.input_features", str,
     "the network's inputs from the feature columns, comma-separated: NAME, NAME^2, NAME*NAME, sin(NAME); "
     "e.g. 'x1,x2,x1^2,x2^2,x1*x2,sin(x1),sin(x2)' (default: the columns as they are)"),
    ("--scale", "data.scale", str, "feature scaling, fitted on the training rows"),
    ("--scale-target", "data.scale_target", bool, "regression: train on the standardised target, predict in its "
                                                  "units"),
    ("--unknown-categories", "data.unknown_categories", str, "a category unseen in training: error, or all-zero"),
    ("--impute", "data.impute", str, "missing feature values: median, mean, or none to refuse them (text gets a "
                                     "'(missing)' category)"),
    ("--categorical", "data.categorical", str, "comma-separated columns read as text (one-hot) even if numbers"),
    ("--numeric", "data.numeric", str, "comma-separated columns that must hold numbers (a stray word is an error)"),
    ("--drop", "data.drop", str, "comma-separated columns left out of the features (IDs, free text)"),
    ("--encoding", "data.encoding", str, "text encoding of CSV files, e.g. latin-1 or cp1252"),
    ("--hidden", "model.hidden_sizes", int, "hidden layer sizes, e.g. --hidden 64 64 32"),
    ("--activation", "model.activation", str, "hidden activation"),
    ("--dropout", "model.dropout", float, "dropout after each hidden layer"),
    ("--init", "model.init", str, "weight initialisation (default: PyTorch's)"),
    ("--task", "model.task", str, "auto: from the target (text/integers: classes, floats: regression)"),
    ("--dtype", "model.dtype", str, "precision of weights and arithmetic"),
    ("--optimizer", "training.optimizer", str, "optimiser"),
    ("--lr", "training.learning_rate", float, "learning rate"),
    ("--momentum", "training.momentum", float, "momentum for sgd/rmsprop"),
    ("--nesterov", "training.nesterov", bool, "Nesterov momentum (sgd)"),
    ("--weight-decay", "training.weight_decay", float, "L2 penalty"),
    ("--l1", "training.l1", float, "L1 penalty on weights"),
    ("--epochs", "training.epochs", int, "passes over the training data"),
    ("--batch-size", "training.batch_size", int, "mini-batch size (default: full batch)"),
    ("--schedule", "training.schedule", str, "learning-rate schedule"),
    ("--step-size", "training.step_size", int, "epochs between decays for --schedule step"),
    ("--gamma", "training.gamma", float, "decay factor for --schedule step/plateau"),
    ("--clip-grad", "training.clip_grad", float, "clip the gradient norm to this"),
    ("--early-stopping", "training.early_stopping", bool, "stop when the validation loss stops improving"),
    ("--patience", "training.patience", int, "epochs without improvement before --early-stopping stops"),
    ("--device", "training.device", str, "where to train"),
    ("--log-every", "training.log_every", int, "print the loss every N epochs"),
    ("--checkpoint-every", "training.checkpoint_every", int, "save a resumable checkpoint every N epochs"),
    ("--snapshot-every", "training.snapshot_every", int, "record the weights every N epochs (for plot animate)"),
    ("--threads", "training.threads", int, "CPU threads (default 0: one per ~10 ms of work in a step, "
                                           "so small networks use one)"),
    ("--seed", "seed", int, "seeds the data, the splits and the initial weights"),
]
FLAG_OF_KEY = {key: flag for flag, key, _, _ in TRAIN_FLAGS}


LIST_KEYS = ("data.features", "data.input_features", "data.categorical", "data.numeric", "data.drop")


def config_from_args(args: argparse.Namespace) -> Config:
    """The --config file (or the defaults), then every flag given on top, validated. Both go through
    :meth:`Config.from_dict` together, so a data file's defaults fill only what neither set."""
    values = read_config_values(args.config) if args.config else {}
    for _, key, _, _ in TRAIN_FLAGS:
        value = getattr(args, key)
        if value is not None:
            if key in LIST_KEYS:
                value = [name.strip() for name in value.split(",") if name.strip()]
            section, _, name = key.rpartition(".")
            if section:
                table = values.setdefault(section, {})
                if not isinstance(table, dict):
                    raise ConfigError(section, f"must be a table of settings, got {table!r}")
                table[name] = value
            else:
                values[name] = value
    return Config.from_dict(values).validate()
