"""The command line: parse, call the library, print. Nothing here trains, scores or saves by itself.

argparse (not click) because ``--hidden 64 64 32`` needs an option with one-or-more values, and it
costs nothing to import. Every user mistake becomes one line on stderr and exit status 2; torch is
imported only by the commands that need it, so ``mlplab --help`` is quick.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
from pathlib import Path
from typing import Any, NoReturn

from .config import Config, ConfigError, MlplabError, read_config_values

# flag, config key, type, help. The one table that ties flags to config keys: it builds the parser,
# applies given flags over a --config file, and names the flag in validation errors.
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
    ("--val-fraction", "data.val_fraction", float, "share of training rows for validation (default 0; 0.1 with "
                                                   "--data)"),
    ("--input-features", "data.input_features", str,
     "the network's inputs from the feature columns, comma-separated: NAME, NAME^2, NAME*NAME, sin(NAME); "
     "e.g. 'x1,x2,x1^2,x2^2,x1*x2,sin(x1),sin(x2)' (default: the columns as they are)"),
    ("--scale", "data.scale", str, "none, standard or minmax, fitted on training rows (default none; standard "
                                   "with --data)"),
    ("--scale-target", "data.scale_target", bool, "regression: train on the standardised target, predict in its "
                                                  "units (default: on with --data)"),
    ("--unknown-categories", "data.unknown_categories", str, "error or ignore (all-zero one-hot)"),
    ("--impute", "data.impute", str, "missing feature values: median, mean or none to refuse them (default "
                                     "median; text gets a '(missing)' category)"),
    ("--categorical", "data.categorical", str, "comma-separated columns read as text (one-hot) even if numbers"),
    ("--numeric", "data.numeric", str, "comma-separated columns that must hold numbers (a stray word is an error)"),
    ("--drop", "data.drop", str, "comma-separated columns left out of the features (IDs, free text)"),
    ("--encoding", "data.encoding", str, "text encoding of CSV files, e.g. latin-1 or cp1252 (default utf-8)"),
    ("--hidden", "model.hidden_sizes", int, "hidden layer sizes, e.g. --hidden 64 64 32 (default 5; 128 64 with "
                                            "--data)"),
    ("--activation", "model.activation", str, "hidden activation (default relu)"),
    ("--dropout", "model.dropout", float, "dropout after each hidden layer (default 0)"),
    ("--init", "model.init", str, "default, xavier_uniform, xavier_normal, kaiming_uniform, kaiming_normal"),
    ("--task", "model.task", str, "auto, binary, multiclass or regression (default auto)"),
    ("--dtype", "model.dtype", str, "float32 or float64 (default float32)"),
    ("--optimizer", "training.optimizer", str, "sgd, adam, adamw or rmsprop (default sgd; adam with --data)"),
    ("--lr", "training.learning_rate", float, "learning rate (default 0.03; 0.001 with --data)"),
    ("--momentum", "training.momentum", float, "momentum for sgd/rmsprop (default 0)"),
    ("--nesterov", "training.nesterov", bool, "Nesterov momentum (sgd)"),
    ("--weight-decay", "training.weight_decay", float, "L2 penalty (default 0; 0.0001 with --data)"),
    ("--l1", "training.l1", float, "L1 penalty on weights (default 0)"),
    ("--epochs", "training.epochs", int, "passes over the training data (default 2000; at most 300 with --data)"),
    ("--batch-size", "training.batch_size", int, "mini-batch size (default: full batch; 64 with --data)"),
    ("--schedule", "training.schedule", str, "none, step, cosine or plateau (default none)"),
    ("--step-size", "training.step_size", int, "epochs between decays for --schedule step (default 100)"),
    ("--gamma", "training.gamma", float, "decay factor for step/plateau (default 0.1)"),
    ("--clip-grad", "training.clip_grad", float, "clip the gradient norm to this"),
    ("--early-stopping", "training.early_stopping", bool, "stop when val loss stops improving, keep the best "
                                                          "weights (default: on with --data)"),
    ("--patience", "training.patience", int, "epochs without improvement (default 20)"),
    ("--log-every", "training.log_every", int, "print the loss every N epochs (default 100)"),
    ("--checkpoint-every", "training.checkpoint_every", int, "save a resumable checkpoint every N epochs"),
    ("--snapshot-every", "training.snapshot_every", int, "record weights every N epochs (for animations)"),
    ("--device", "training.device", str, "auto, cpu, cuda or mps (default cpu)"),
    ("--seed", "seed", int, "seed for data, splits and initial weights (default 0)"),
]
FLAG_OF_KEY = {key: flag for flag, key, _, _ in TRAIN_FLAGS}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # argparse's own mistakes: one line too
        fail(f"{message} (see `{self.prog} --help`)")


def fail(message: str) -> NoReturn:
    sys.stderr.write(f"mlplab: error: {message}\n")
    raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="mlplab", description="Build, train, inspect and save small neural networks.")
    parser.add_argument("--version", action="version", version=f"mlplab {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    train = commands.add_parser("train", help="train a network (no options: the tutorial's)",
                                description="Train a network. With no options: the tutorial's 2-5-1 "
                                            "network on xor-blobs, SGD lr 0.03, 2000 epochs.")
    train.add_argument("--config", help="TOML config file; flags override it")
    for flag, key, kind, help_text in TRAIN_FLAGS:
        if kind is bool:  # --x and --no-x: a default that is on for data files can be turned off
            train.add_argument(flag, dest=key, action=argparse.BooleanOptionalAction, default=None, help=help_text)
        else:
            train.add_argument(flag, dest=key, type=kind, nargs="+" if flag == "--hidden" else None,
                               default=None, metavar=key.split(".")[-1].upper(), help=help_text)
    train.add_argument("--out", help="run folder (default runs/<data>-<time>)")
    train.add_argument("--force", action="store_true", help="replace a run already in --out")
    train.add_argument("--resume", metavar="RUN", help="continue RUN from its last checkpoint")
    train.add_argument("--quiet", action="store_true", help="print only the run folder")
    train.add_argument("--plots", action="store_true", help="write the standard figures into the run folder")
    train.add_argument("--format", default="png", help="figure format for --plots: png, svg or pdf")

    predict = commands.add_parser("predict", help="predict with a trained run or a plain state_dict")
    predict.add_argument("run", nargs="?", help="run folder or checkpoint file")
    predict.add_argument("values", nargs="*", type=float, help="one row of feature values (after --)")
    predict.add_argument("--input", help="CSV of rows to predict (header with the feature names)")
    predict.add_argument("--output", help="write the predictions CSV here (default stdout)")
    predict.add_argument("--keep", metavar="COLS", help="with --input: comma-separated input columns copied "
                                                        "beside the predictions (default: all; '' for none)")
    predict.add_argument("--encoding", help="with --input: the CSV's text encoding (default: the training data's)")
    predict.add_argument("--state-dict", help="a plain state_dict file (e.g. the tutorial's model.pt)")
    predict.add_argument("--activation", default="relu", help="hidden activation for --state-dict")
    predict.add_argument("--task", choices=["auto", "regression"], default="auto",
                         help="for --state-dict: auto (1 output: sigmoid, more: softmax) or regression")

    commands.add_parser("datasets", help="list the built-in data sets")
    runs = commands.add_parser("runs", help="list the runs in a folder")
    runs.add_argument("folder", nargs="?", default="runs")
    show = commands.add_parser("show", help="print one run's config and metrics")
    show.add_argument("run")
    evaluate = commands.add_parser("evaluate", help="score a run on new labelled data")
    evaluate.add_argument("run")
    evaluate.add_argument("--data", required=True, help="CSV/Parquet/.npz with the features and target")
    evaluate.add_argument("--target", help="target column (default: the one used in training)")
    plot = commands.add_parser("plot", help="draw a figure into a file (matplotlib)",
                               description="Figures: data, boundary RUN, history RUN, activations, network RUN, "
                                           "neurons RUN, animate RUN.")
    plot.add_argument("kind", choices=["data", "boundary", "history", "activations", "network", "neurons",
                                       "animate"])
    plot.add_argument("run", nargs="?", help="run folder (data: optional, draws the run's data)")
    plot.add_argument("--out", help="output file (default: in the run folder, or ./KIND.FORMAT)")
    plot.add_argument("--format", default="png", help="png, svg or pdf (default png)")
    plot.add_argument("--features", nargs=2, metavar="NAME", help="boundary: the two inputs spanning the plane")
    plot.add_argument("--pca", action="store_true", help="boundary: span the plane by 2 principal components")
    for flag in ("--dataset", "--data", "--target", "--n-train", "--noise", "--classes", "--seed"):
        _, key, kind, help_text = next(row for row in TRAIN_FLAGS if row[0] == flag)
        plot.add_argument(flag, dest=key, type=kind, default=None, help=f"data: {help_text}")

    explain = commands.add_parser("explain", help="one sample through the network, forward and backward")
    explain.add_argument("run", help="run folder or checkpoint")
    explain.add_argument("values", nargs="*", type=float, help="the sample's feature values (after --)")
    explain.add_argument("--label", help="the sample's true label (default: the model's prediction)")
    explain.add_argument("--lr", type=float, help="learning rate of the SGD step shown (default: the run's)")

    playground = commands.add_parser("playground", help="train and watch networks live in the browser",
                                     description="Start the playground web app (needs pip install 'mlplab[web]').")
    playground.add_argument("--port", type=int, default=8765, help="port to listen on (default 8765; 0: any free)")
    playground.add_argument("--host", default="127.0.0.1",
                            help="address to listen on (default 127.0.0.1: this computer only)")
    playground.add_argument("--open", action="store_true", help="open the page in the web browser")
    playground.add_argument("--max-sessions", type=int, default=8, help="browser tabs training at once (default 8)")

    bench = commands.add_parser("bench", help="benchmark mlplab beside its peers (needs scikit-learn)")
    bench.add_argument("--quick", action="store_true", help="a ~1-minute version (smaller data, fewer repeats)")
    bench.add_argument("--only", nargs="+", metavar="TASK", help="tutorial, startup, large and/or reader")
    bench.add_argument("--output", help="also write the results as JSON here")
    return parser


def _version() -> str:
    from . import __version__

    return __version__


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    # Values after `--` are one row of features (negative numbers included). They are split off here:
    # argparse cannot place them after options when the command also has a RUN positional.
    tail: list[str] = []
    if "--" in argv:
        argv, tail = argv[:argv.index("--")], argv[argv.index("--") + 1:]
    args = parser.parse_args(argv)
    if tail:
        if not hasattr(args, "values"):
            fail(f"`{args.command or 'mlplab'}` takes no values after `--`")
        try:
            args.values = [*args.values, *map(float, tail)]
        except ValueError:
            fail(f"the values after `--` must be numbers, got {' '.join(tail)}")
    if args.command is None:
        parser.print_help()
        raise SystemExit(0)
    try:
        from . import commands

        getattr(commands, args.command)(args)
    except ConfigError as error:
        flag = FLAG_OF_KEY.get(error.key)
        fail(f"{flag} {error.problem}" if flag else f"{error.key} {error.problem}")
    except MlplabError as error:
        fail(str(error))
    except KeyboardInterrupt:
        sys.stderr.write("mlplab: interrupted\n")
        raise SystemExit(130) from None


def entry() -> None:
    """The ``mlplab`` console script: :func:`main`, then a quick exit. Once torch is imported, the
    interpreter's normal shutdown takes ~0.4 s tearing it down; every file mlplab writes is complete
    and fsynced by then, so flushing the streams and leaving at once loses nothing."""
    try:
        main()
        code = 0
    except BrokenPipeError:  # `mlplab runs | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 1
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
        if not isinstance(exit_.code, (int, type(None))):
            sys.stderr.write(f"{exit_.code}\n")
    if "torch" not in sys.modules:
        raise SystemExit(code)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


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


LIST_KEYS = ("data.features", "data.input_features", "data.categorical", "data.numeric", "data.drop")


def write_rows(path: str | None, header: list[str], rows: list[list[Any]]) -> None:
    """CSV to stdout, or atomically to ``path``."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    if path is None:
        sys.stdout.write(buffer.getvalue())
    else:
        from .checkpoint import atomic_write_text

        if not Path(path).parent.is_dir():
            raise MlplabError(f"--output {path}: the folder {Path(path).parent} does not exist")
        atomic_write_text(path, buffer.getvalue())


def print_json(values: Any) -> None:
    print(json.dumps(values, indent=2))
