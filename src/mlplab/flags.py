"""The training flags: the one table that ties each ``mlplab train`` flag to its config key.

It builds the CLI's parser, applies given flags over a ``--config`` file, and names the flag in
validation errors. It lives on the library side (not in ``cli.py``) so that the commands, and any other
front end that takes flags, read it without importing the parser module.
"""

from __future__ import annotations

import argparse
from typing import Any

from .config import Config, load_config

__all__ = ["FLAG_OF_KEY", "TRAIN_FLAGS", "config_from_args"]

# flag, config key, type, help.
TRAIN_FLAGS: list[tuple[str, str, Any, str]] = [
    ("--dataset", "data.dataset", str, "built-in data set (see `mlplab datasets`; default xor-blobs)"),
    ("--data", "data.path", str, "your own data: CSV, Parquet or .npz file"),
    ("--target", "data.target", str, "target column of --data"),
    ("--features", "data.features", str, "comma-separated feature columns (default: all but the target)"),
    ("--test-data", "data.test_path", str, "separate test file (default: split off --test-fraction)"),
    ("--n-train", "data.n_train", int, "generated training points (default 80)"),
    ("--n-test", "data.n_test", int, "generated test points (default 20)"),
    ("--noise", "data.noise", float, "generator noise, e.g. the blobs' std (default: the data set's)"),
    ("--classes", "data.n_classes", int, "classes of blobs/gaussian-quantiles, arms of spiral"),
    ("--test-fraction", "data.test_fraction", float, "share of --data held out for testing (default 0.2)"),
    ("--val-fraction", "data.val_fraction", float, "share of training rows for validation (default 0)"),
    ("--input-features", "data.input_features", str,
     "the network's inputs from the feature columns, comma-separated: NAME, NAME^2, NAME*NAME, sin(NAME); "
     "e.g. 'x1,x2,x1^2,x2^2,x1*x2,sin(x1),sin(x2)' (default: the columns as they are)"),
    ("--scale", "data.scale", str, "none, standard or minmax, fitted on training rows (default none)"),
    ("--unknown-categories", "data.unknown_categories", str, "error or ignore (all-zero one-hot)"),
    ("--hidden", "model.hidden_sizes", int, "hidden layer sizes, e.g. --hidden 64 64 32 (default 5)"),
    ("--activation", "model.activation", str, "hidden activation (default relu)"),
    ("--dropout", "model.dropout", float, "dropout after each hidden layer (default 0)"),
    ("--init", "model.init", str, "default, xavier_uniform, xavier_normal, kaiming_uniform, kaiming_normal"),
    ("--task", "model.task", str, "auto, binary, multiclass or regression (default auto)"),
    ("--dtype", "model.dtype", str, "float32 or float64 (default float32)"),
    ("--optimizer", "training.optimizer", str, "sgd, adam, adamw or rmsprop (default sgd)"),
    ("--lr", "training.learning_rate", float, "learning rate (default 0.03)"),
    ("--momentum", "training.momentum", float, "momentum for sgd/rmsprop (default 0)"),
    ("--nesterov", "training.nesterov", bool, "Nesterov momentum (sgd)"),
    ("--weight-decay", "training.weight_decay", float, "L2 penalty (default 0)"),
    ("--l1", "training.l1", float, "L1 penalty on weights (default 0)"),
    ("--epochs", "training.epochs", int, "passes over the training data (default 2000)"),
    ("--batch-size", "training.batch_size", int, "mini-batch size (default: full batch)"),
    ("--schedule", "training.schedule", str, "none, step, cosine or plateau (default none)"),
    ("--step-size", "training.step_size", int, "epochs between decays for --schedule step (default 100)"),
    ("--gamma", "training.gamma", float, "decay factor for step/plateau (default 0.1)"),
    ("--clip-grad", "training.clip_grad", float, "clip the gradient norm to this"),
    ("--early-stopping", "training.early_stopping", bool, "stop when val loss stops improving"),
    ("--patience", "training.patience", int, "epochs without improvement (default 20)"),
    ("--log-every", "training.log_every", int, "print the loss every N epochs (default 100)"),
    ("--checkpoint-every", "training.checkpoint_every", int, "save a resumable checkpoint every N epochs"),
    ("--snapshot-every", "training.snapshot_every", int, "record weights every N epochs (for animations)"),
    ("--device", "training.device", str, "auto, cpu, cuda or mps (default cpu)"),
    ("--seed", "seed", int, "seed for data, splits and initial weights (default 0)"),
]
FLAG_OF_KEY = {key: flag for flag, key, _, _ in TRAIN_FLAGS}


def config_from_args(args: argparse.Namespace) -> Config:
    """The --config file (or the defaults), then every flag given on top, validated."""
    config = load_config(args.config) if args.config else Config()
    for _, key, _, _ in TRAIN_FLAGS:
        value = getattr(args, key)
        if value is not None:
            if key in ("data.features", "data.input_features"):
                value = [name.strip() for name in value.split(",") if name.strip()]
            config.set(key, value)
    return config.validate()
