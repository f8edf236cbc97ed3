"""The command line: parse, call the library, print. Nothing here trains, scores or saves by itself.

argparse (not click) because ``--hidden 64 64 32`` needs an option with one-or-more values, and it
costs nothing to import. Every user mistake becomes one line on stderr and exit status 2; torch is
imported only by the commands that need it, so ``mlplab --help`` is quick.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import NoReturn

from .config import ConfigError, MlplabError
from .flags import FLAG_OF_KEY, TRAIN_FLAGS


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
        if kind is bool:
            train.add_argument(flag, dest=key, action="store_const", const=True, default=None, help=help_text)
        else:
            train.add_argument(flag, dest=key, type=kind, nargs="+" if flag == "--hidden" else None,
                               default=None, metavar=key.split(".")[-1].upper(), help=help_text)
    train.add_argument("--out", help="run folder (default runs/<data>-<time>)")
    train.add_argument("--force", action="store_true", help="replace a run already in --out")
    train.add_argument("--resume", metavar="RUN", help="continue RUN from its last checkpoint")
    train.add_argument("--nproc", type=int, metavar="N",
                       help="data-parallel training on N processes (torch.distributed; also runs under torchrun)")
    train.add_argument("--timeout", type=float, default=300.0, metavar="SECONDS",
                       help="with --nproc: how long a worker waits for a missing one before stopping (default 300)")
    train.add_argument("--quiet", action="store_true", help="print only the run folder")
    train.add_argument("--plots", action="store_true", help="write the standard figures into the run folder")
    train.add_argument("--format", default="png", help="figure format for --plots: png, svg or pdf")

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
            sweep.add_argument(flag, dest=key, action="store_const", const=True, default=None, help=help_text)
        else:
            sweep.add_argument(flag, dest=key, type=kind, nargs="+" if flag == "--hidden" else None,
                               default=None, metavar=key.split(".")[-1].upper(), help=help_text)

    predict = commands.add_parser("predict", help="predict with a trained run or a plain state_dict")
    predict.add_argument("run", nargs="?", help="run folder or checkpoint file")
    predict.add_argument("values", nargs="*", type=float, help="one row of feature values (after --)")
    predict.add_argument("--input", help="CSV of rows to predict (header with the feature names)")
    predict.add_argument("--output", help="write the predictions CSV here (default stdout)")
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
    bench.add_argument("--only", nargs="+", metavar="TASK", help="tutorial, startup, large, sweep and/or distributed")
    bench.add_argument("--output", help="also write the results as JSON here")

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
    export.add_argument("--output", help="file to write (default: model.onnx / model.torchscript.pt / "
                                         "model.pt2 in the run folder); a sidecar FILE.json goes beside it")
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
