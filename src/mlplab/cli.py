"""The command line: parse, call the library, print. Nothing here trains, scores or saves by itself.

argparse (not click) because ``--hidden 64 64 32`` needs an option with one-or-more values, and it
costs nothing to import. Every user mistake becomes one line on stderr and exit status 2; torch is
imported only by the commands that need it, so ``mlplab --help`` is quick.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, NoReturn

from .config import ConfigError, MlplabError
from .flags import FLAG_OF_KEY, TRAIN_FLAGS

# How `mlplab train --help` shows the flags: its groups (by config section, the run's own settings last)
# and a metavar that says what a value is. Choices and defaults are read from the config's own rules.
RUN_KEYS = ("training.log_every", "training.checkpoint_every", "training.snapshot_every", "seed")
METAVARS = {"model.activation": "NAME", "data.input_features": "TERMS",
            "data.path": "FILE", "data.target": "COL", "data.features": "COLS",
            "data.test_path": "FILE", "data.noise": "STD", "data.n_classes": "K", "data.test_fraction": "FRACTION",
            "data.val_fraction": "FRACTION", "model.dropout": "P", "training.learning_rate": "LR",
            "training.momentum": "M", "training.weight_decay": "L2", "training.l1": "L1", "training.gamma": "G",
            "training.clip_grad": "NORM"}
TRAIN_EXAMPLES = """examples:
  mlplab train                                    # the tutorial's network, data and training
  mlplab train --dataset spiral --hidden 32 32 --optimizer adam --lr 0.01 --epochs 500
  mlplab train --data houses.csv --target price   # a table: scaled, Adam, early stopping by default
  mlplab train --config runs/NAME/config.toml     # repeat a run (NAME as `mlplab runs` lists it)
  mlplab train --resume NAME --epochs 4000        # continue a run saved with --checkpoint-every
"""


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

    _add_train_parser(commands)

    sweep = commands.add_parser(
        "sweep", help="train a grid of settings at once, batched; compare them",
        description="Train every combination of --grid values over a base config (--config and the train flags) "
                    "as one batched computation, write a sweep folder and print the best rows.")
    sweep.add_argument("--config", help="TOML base config; a [sweep.grid] table adds grid settings")
    sweep.add_argument("--grid", action="append", metavar="KEY=VALUES",
                       help="a setting and its values: training.learning_rate=0.01,0.03 or seed=0..31; "
                            "hidden sizes: 'model.hidden_sizes=5;8;16,16' (';' between networks)")
    sweep.add_argument("--metric", help="what picks the best: loss (default), accuracy, f1, r2, ... on the "
                                        "validation split (test without one), or a column such as test_f1")
    sweep.add_argument("--top", type=int, default=5, help="rows of the table to print (default 5)")
    sweep.add_argument("--out", help="sweep folder (default sweeps/<data>-<time>)")
    sweep.add_argument("--force", action="store_true", help="replace a sweep already in --out")
    sweep.add_argument("--quiet", action="store_true", help="print only the sweep folder")
    for flag, key, kind, help_text in TRAIN_FLAGS:
        if kind is bool:
            sweep.add_argument(flag, dest=key, action=argparse.BooleanOptionalAction, default=None, help=help_text)
        else:
            sweep.add_argument(flag, dest=key, type=kind, nargs="+" if flag == "--hidden" else None,
                               default=None, metavar=key.split(".")[-1].upper(), help=help_text)

    predict = commands.add_parser("predict", help="predict with a trained run or a plain state_dict")
    predict.add_argument("run", nargs="?", help="run folder or checkpoint file")
    predict.add_argument("values", nargs="*", type=float, help="one row of feature values (after --)")
    predict.add_argument("--input", help="CSV of rows to predict (header with the feature names)")
    predict.add_argument("--out", "--output", dest="output", metavar="FILE",
                         help="write the predictions CSV here (default: stdout)")
    predict.add_argument("--keep", metavar="COLS", help="with --input: comma-separated input columns copied "
                                                        "beside the predictions (default: all; '' for none)")
    predict.add_argument("--encoding", help="with --input: the CSV's text encoding (default: the training data's)")
    predict.add_argument("--state-dict", help="a plain state_dict file (e.g. the tutorial's model.pt)")
    predict.add_argument("--activation", default="relu", help="hidden activation for --state-dict")
    predict.add_argument("--task", choices=["auto", "regression"], default="auto",
                         help="for --state-dict: auto (1 output: sigmoid, more: softmax) or regression")
    predict.add_argument("--allow-incomplete", action="store_true",
                         help="use a run that did not complete (its last periodic checkpoint)")

    commands.add_parser("datasets", help="list the built-in data sets")
    runs = commands.add_parser("runs", help="list the runs in a folder")
    runs.add_argument("folder", nargs="?", default="runs")
    show = commands.add_parser("show", help="print one run's config and metrics")
    show.add_argument("run")
    evaluate = commands.add_parser("evaluate", help="score a run on new labelled data")
    evaluate.add_argument("run")
    evaluate.add_argument("--data", required=True, help="CSV/Parquet/.npz with the features and target")
    evaluate.add_argument("--target", help="target column (default: the one used in training)")
    evaluate.add_argument("--allow-incomplete", action="store_true",
                          help="score a run that did not complete (its last periodic checkpoint)")
    plot = commands.add_parser("plot", help="draw a figure into a file (matplotlib)",
                               description="Figures: data, boundary RUN, history RUN, activations, network RUN, "
                                           "neurons RUN, animate RUN.")
    plot.add_argument("kind", choices=["data", "boundary", "history", "activations", "network", "neurons",
                                       "animate"])
    plot.add_argument("run", nargs="?", help="run folder (data: optional, draws the run's data)")
    plot.add_argument("--out", "--output", dest="out", metavar="FILE",
                      help="output file (default: in the run folder, or ./KIND.FORMAT)")
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
    explain.add_argument("--allow-incomplete", action="store_true", help="explain a run that did not complete")

    playground = commands.add_parser("playground", help="train and watch networks live in the browser",
                                     description="Start the playground web app (needs pip install 'mlplab[web]').")
    playground.add_argument("--port", type=int, default=8765, help="port to listen on (default 8765; 0: any free)")
    playground.add_argument("--host", default="127.0.0.1",
                            help="address to listen on (default 127.0.0.1: this computer only)")
    playground.add_argument("--open", action="store_true", help="open the page in the web browser")
    playground.add_argument("--max-sessions", type=int, default=8, help="browser tabs training at once (default 8)")

    bench = commands.add_parser("bench", help="benchmark mlplab beside its peers (needs scikit-learn)")
    bench.add_argument("--quick", action="store_true", help="a ~1-minute version (smaller data, fewer repeats)")
    bench.add_argument("--only", nargs="+", metavar="TASK",
                       help="train, predict, bigdata, startup, threads, tutorial, large, sweep, distributed "
                            "and/or reader")
    bench.add_argument("--out", "--output", dest="output", metavar="FILE", help="also write the results as JSON here")

    serve = commands.add_parser("serve", help="serve trained runs over HTTP (needs mlplab[web])",
                                description="Serve runs as a JSON/CSV prediction API (FastAPI + uvicorn); "
                                            "docs at /docs, schema at /openapi.json.")
    serve.add_argument("runs", nargs="+", metavar="RUN", help="run folders to serve; NAME=RUN chooses the name")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    serve.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    serve.add_argument("--max-rows", type=int, default=10_000, help="rows per request (default 10000)")
    serve.add_argument("--max-body", type=int, default=10 * 1024 * 1024, help="body bytes (default 10 MiB)")

    export = commands.add_parser("export", help="export a run as ONNX, TorchScript or torch.export (.pt2)")
    export.add_argument("run", help="run folder or checkpoint")
    export.add_argument("--format", required=True, help="onnx, torchscript or pt2")
    export.add_argument("--out", "--output", dest="output", metavar="FILE",
                        help="file to write (default: model.onnx / model.torchscript.pt / "
                                         "model.pt2 in the run folder); a sidecar FILE.json goes beside it")
    return parser


def _add_train_parser(commands: Any) -> None:
    train = commands.add_parser("train", help="train a network (no options: the tutorial's)",
                                description="Train a network. With no options: the tutorial's 2-5-1 network on "
                                            "xor-blobs, SGD lr 0.03, 2000 epochs.",
                                usage="%(prog)s [OPTIONS]", epilog=TRAIN_EXAMPLES, formatter_class=_HelpFormatter)
    groups = {name: train.add_argument_group(name) for name in ("data", "model", "training", "run")}
    for flag, key, kind, help_text in TRAIN_FLAGS:
        group = groups["run" if key in RUN_KEYS else key.split(".")[0]]
        if kind is bool:  # --x and --no-x: a default that is on for data files can be turned off
            group.add_argument(flag, dest=key, action=argparse.BooleanOptionalAction, default=None,
                               help=help_text + _file_default_text(key, " (default: off; {} with --data)"))
            continue
        choices = _choices(key)
        metavar = "{" + ",".join(choices) + "}" if choices else METAVARS.get(key, "N" if kind is int else "X")
        group.add_argument(flag, dest=key, type=kind, nargs="+" if flag == "--hidden" else None, default=None,
                           metavar=metavar, help=_with_default(help_text, key))
    run = groups["run"]
    run.add_argument("--config", metavar="FILE", help="TOML config file (a run's config.toml too); flags override it")
    run.add_argument("--out", "--output", dest="out", metavar="DIR", help="run folder (default: runs/DATA-TIME)")
    run.add_argument("--force", action="store_true", help="replace a run already in --out")
    run.add_argument("--resume", metavar="RUN", help="continue RUN from its last checkpoint")
    run.add_argument("--nproc", type=int, metavar="N",
                     help="data-parallel training on N processes (torch.distributed; also runs under torchrun)")
    run.add_argument("--timeout", type=float, default=300.0, metavar="SECONDS",
                     help="with --nproc: how long a worker waits for a missing one before stopping (default: 300)")
    run.add_argument("--quiet", action="store_true", help="print only the run folder")
    run.add_argument("--log", nargs="+", metavar="KIND [WHERE]",
                     help="also log the run for an experiment tracker: 'tensorboard DIR' or 'mlflow [URI]' "
                          "(needs mlplab[tensorboard] or mlplab[mlflow])")
    run.add_argument("--plots", action="store_true", help="write the standard figures into the run folder")
    run.add_argument("--format", metavar="{png,svg,pdf}", help="figure format for --plots "
                                                                               "(default: png)")


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Help in aligned columns, the examples (epilog) as written."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=34)


def _choices(key: str) -> tuple[str, ...]:
    """The values a setting allows, from its validation rule (``one_of``), without importing torch."""
    import dataclasses

    from .config import Config

    section, _, name = key.rpartition(".")
    owner = getattr(Config(), section) if section else Config()
    spec = next(spec for spec in dataclasses.fields(owner) if spec.name == name)
    return tuple(getattr(spec.metadata.get("rule"), "choices", ()))


def _default_text(key: str) -> str:
    from .config import Config

    value = Config()
    for part in key.split("."):
        value = getattr(value, part)
    if value is None:
        return ""
    if key.endswith("_every") and value == 0:
        return " (default: off)"
    shown = " ".join(map(str, value)) if isinstance(value, list) else str(value)
    return f" (default: {shown}" + _file_default_text(key, "; {} with --data") + ")"


def _with_default(help_text: str, key: str) -> str:
    """The help with its default: the config's, or the one the help already names (``(default: full
    batch)``), and what a data file changes of it."""
    if "(default" not in help_text:
        return help_text + _default_text(key)
    return help_text[:-1] + _file_default_text(key, "; {} with --data") + ")" if help_text.endswith(")") else help_text


def _file_default_text(key: str, template: str) -> str:
    """What a data file (--data) changes of a setting's default, in ``template``; else nothing."""
    from .config import FILE_DATA_DEFAULTS, Config

    value = Config()
    for part in key.split("."):
        value = getattr(value, part)
    if key not in FILE_DATA_DEFAULTS or FILE_DATA_DEFAULTS[key] == value:
        return ""
    value = FILE_DATA_DEFAULTS[key]
    shown = "on" if value is True else " ".join(map(str, value)) if isinstance(value, list) else str(value)
    return template.format(shown)


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
            option = next((token for token in tail if token.startswith("--")), None)
            if option:  # `explain RUN -- -1 1 --label 1`: everything after `--` is a value, by design
                fail(f"{option} comes after `--`, where only the sample's values go; put options before it: "
                     f"mlplab {args.command} RUN {option} ... -- VALUES")
            fail(f"the values after `--` must be numbers, got {' '.join(tail)}")
    if args.command is None:
        parser.print_help()
        raise SystemExit(0)
    for name in ("run", "resume"):  # a run may be named as `mlplab runs` lists it
        if isinstance(getattr(args, name, None), str) and not os.path.exists(getattr(args, name)):
            from .catalog import find_run

            setattr(args, name, str(find_run(getattr(args, name))))
    try:
        from . import commands

        getattr(commands, args.command)(args)
    except MlplabError as error:
        if not hasattr(error, "exit_code"):
            _fail_with(error)
        sys.stderr.write(f"mlplab: {error}\n")  # a signal stopped training, after saving: not an error
        raise SystemExit(error.exit_code) from None
    except KeyboardInterrupt:
        sys.stderr.write("mlplab: interrupted\n")
        raise SystemExit(130) from None


def _fail_with(error: MlplabError) -> NoReturn:
    if isinstance(error, ConfigError):
        flag = FLAG_OF_KEY.get(error.key)
        fail(f"{flag} {error.problem}" if flag else f"{error.key} {error.problem}")
    fail(str(error))


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

