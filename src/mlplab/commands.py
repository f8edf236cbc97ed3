"""What each CLI command does, once its arguments are parsed: call the library and print."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path
from typing import Any

from .config import Config, MlplabError
from .flags import TRAIN_FLAGS, config_from_args

TUTORIAL_POINT = [-1.0, 1.0]  # the tutorial asks for P(label 1) at this point after reloading


def train(args: argparse.Namespace) -> None:
    from .run import load, resume
    from .run import train as train_run

    verbose = not args.quiet
    if args.format is not None and not args.plots:
        raise MlplabError("--format chooses the figures' format; it applies only with --plots")
    args.format = args.format or "png"
    if args.resume:
        given = [flag for flag, key, _, _ in TRAIN_FLAGS if getattr(args, key) is not None and flag != "--epochs"]
        given += [flag for flag in ("--config", "--out") if getattr(args, flag[2:])]
        if given:
            raise MlplabError(f"--resume continues a run with its own config; only --epochs may change "
                              f"(drop {', '.join(given)})")
    if args.log and len(args.log) > 2:
        raise MlplabError(f"--log takes a kind and at most one place (tensorboard DIR, mlflow [URI]); got "
                          f"{' '.join(args.log)}")
    if args.nproc is not None or _under_torchrun():
        return _train_distributed(args, verbose)
    config = None if args.resume else config_from_args(args)
    if args.plots:
        from .report import figure_path

        figure_path(Path("."), "check", args.format)  # a bad --format is refused before training
        from .plots import require_matplotlib

        require_matplotlib()  # and so is a missing matplotlib
    logger = _experiment_logger(args.log, config)  # a bad store is refused before training too
    with logger or contextlib.nullcontext():  # a failed run is marked so in the tracker
        callbacks = [logger] if logger else []
        if args.resume:
            run = resume(args.resume, epochs=getattr(args, "training.epochs"), verbose=verbose,
                         handle_signals=True, callbacks=callbacks)
        else:
            run = train_run(config, out=args.out, force=args.force, verbose=verbose, handle_signals=True,
                            callbacks=callbacks)
        figures = []
        if args.plots:
            from .report import write_figures

            figures = write_figures(run.path, args.format)
        if logger:
            from .explog import log_run_result

            log_run_result(logger, run, figures)
            if verbose:
                print(f"Logged to {logger.kind}: {logger.location}")
    if not verbose:
        print(run.path)
        return
    print(summarise_metrics(run.metrics))
    print(f"Run saved to {run.path}: checkpoint.pt, model.pt, history.json, config.toml, run.json")
    if figures:
        print("Figures: " + ", ".join(path.name for path in figures))
    config = run.config
    if config.data.path is None and config.data.dataset == "xor-blobs":
        reloaded = load(run.path)
        if reloaded.task == "regression":  # --task regression: a value, not a class probability
            value = float(reloaded.predict([TUTORIAL_POINT])[0])
            print(f"The prediction for [-1, 1] is {value:.6f} (from the reloaded checkpoint)")
        else:
            probability = reloaded.predict_proba([TUTORIAL_POINT])[0, -1]
            print(f"The probability that [-1, 1] has label {reloaded.classes[-1]} is {probability:.6f} "
                  "(from the reloaded checkpoint)")


def _experiment_logger(log: list[str] | None, config: Config | None):
    """The --log KIND [WHERE] tracker, opened now (so a missing extra or a bad store stops before
    training), or None."""
    if not log:
        return None
    from .explog import make_experiment_logger

    return make_experiment_logger(log[0], log[1] if len(log) > 1 else None, config=config)


def _under_torchrun() -> bool:
    from .distributed import distributed_env

    return distributed_env()


def _train_distributed(args: argparse.Namespace, verbose: bool) -> None:
    """--nproc N, or a torchrun worker: the workers train; rank 0 prints the summary."""
    from .distributed import train_distributed

    if args.plots:
        raise MlplabError("--plots is not available with --nproc; run `mlplab plot` on the run folder afterwards")
    if args.log:
        raise MlplabError("--log is not available with --nproc yet; log a single-process run")
    config = None if args.resume else config_from_args(args)
    nproc = 1 if args.nproc is None else args.nproc
    path = train_distributed(config, nproc=nproc, out=args.out, force=args.force, verbose=verbose,
                             resume=args.resume, epochs=getattr(args, "training.epochs") if args.resume else None,
                             timeout=args.timeout)
    if path is None:  # not rank 0
        return
    if not verbose:
        print(path)
        return
    meta = json.loads((path / "run.json").read_text())
    print(summarise_metrics(meta["metrics"]))
    print(f"Run saved to {path}: checkpoint.pt, model.pt, history.json, config.toml, run.json")


def summarise_metrics(metrics: dict[str, dict[str, float]]) -> str:
    parts = []
    for split in ("train", "val", "test"):
        if split in metrics:
            values = metrics[split]
            headline = "accuracy" if "accuracy" in values else "r2"
            parts.append(f"{split} loss {values['loss']:.6f} {headline} {values[headline]:.4f}")
    return "Final: " + " | ".join(parts)


def predict(args: argparse.Namespace) -> None:
    if args.state_dict:
        if args.run:  # with --state-dict there is no RUN: the first number was taken for it
            args.values = [_number(args.run), *args.values]
        from .inference import model_from_state_dict

        model = model_from_state_dict(args.state_dict, args.activation, args.task)
    elif args.run is None:
        raise MlplabError("predict needs a run folder or checkpoint (or --state-dict FILE)")
    else:
        from .run import load

        model = load(args.run, allow_incomplete=args.allow_incomplete)
    if args.input and args.values:
        raise MlplabError("give either --input FILE or one row of values after `--`, not both")
    if args.input:
        _predict_file(model, args.input, args.output, getattr(args, "keep", None), getattr(args, "encoding", None))
        return
    if not args.values:
        raise MlplabError("give one row of feature values after `--` (e.g. mlplab predict RUN -- -1 1) "
                          "or --input rows.csv")
    if any(f["kind"] == "categorical" for f in model.preprocessor.features):
        raise MlplabError("this model has text (categorical) features; pass rows with --input rows.csv")
    outputs = model.outputs([args.values])  # one pass serves the probabilities and the label
    if model.task == "regression":
        print(f"prediction: {float(model.predictions(outputs)[0]):.6g}")
        return
    probabilities = outputs.class_probabilities[0]
    label = model.predictions(outputs)[0]
    if model.task == "binary":
        print(f"P(label {model.classes[1]}) = {probabilities[1]:.6f}")
    else:
        for name, probability in zip(model.classes, probabilities):
            print(f"P(label {name}) = {probability:.6f}")
    print(f"predicted label: {label}")


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise MlplabError(f"with --state-dict, give only feature values; {text!r} is not a number") from None


def _predict_file(model, path: str, output: str | None, keep: str | None = None,
                  encoding: str | None = None) -> None:
    import numpy as np

    from .data import read_input
    from .inference import feature_columns
    from .output import write_columns

    encoding = encoding or model.meta.get("config", {}).get("data", {}).get("encoding", "utf-8")
    table = read_input(path, model.preprocessor, encoding=encoding)
    features = feature_columns(model, table, path)
    outputs = model.outputs(features)  # one pass of the network serves the labels and the probabilities
    columns = _kept_columns(table, keep, path)
    columns["prediction"] = model.predictions(outputs)
    if model.task != "regression":
        probabilities = outputs.class_probabilities
        for k, name in enumerate(model.classes):
            columns[f"p_{name}"] = np.round(probabilities[:, k], 6)
    write_columns(output, columns)


def _kept_columns(table, keep: str | None, path: str) -> dict[str, Any]:
    """The input columns copied into the output beside the predictions, so they can be joined back:
    every column of the input (IDs, names, the features) by default, those named by --keep, or none
    with --keep ''."""
    if keep is None:
        names = list(table)
    else:
        names = [name.strip() for name in keep.split(",") if name.strip()]
        unknown = [name for name in names if name not in table]
        if unknown:
            raise MlplabError(f"--keep names no column {', '.join(unknown)} of {path}; "
                              f"columns are {', '.join(table)}")
    return {name: table[name] for name in names}


def datasets(args: argparse.Namespace) -> None:
    from .data import GENERATORS

    width = max(map(len, GENERATORS))
    for name, generator in GENERATORS.items():
        print(f"{name:<{width}}  noise {generator.noise:<5g} {generator.summary}")


def runs(args: argparse.Namespace) -> None:
    from .catalog import RUNS_FOLDER, list_runs

    def skipped(folder: Path, error: MlplabError) -> None:  # one unreadable folder must not hide the others
        sys.stderr.write(f"mlplab: skipped {folder.name}: {error}\n")

    found = list_runs(args.folder, skipped)
    if not found:
        print(f"no runs in {args.folder}")
        return
    # Names as `show`, `predict` and `plot` take them: bare in the default folder, else with the folder.
    default = Path(args.folder) == Path(RUNS_FOLDER)
    header = ["name", "date", "data", "architecture", "epochs", "best val", "test", "train time", ""]
    rows = [[run.path.name if default else str(run.path),
             run.created.strftime("%Y-%m-%d %H:%M") if run.created else "-", run.data, run.architecture,
             str(run.epochs), _fmt(run.best_val), f"{_fmt(run.test)} {run.headline}", f"{run.train_seconds:.1f}s",
             run.state]
            for run in found]
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip())


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, (int, float)) and not isinstance(value, bool) else "-"


def show(args: argparse.Namespace) -> None:
    from .catalog import find_run
    from .runfolder import read_text, readable, resolve
    from .schema import load_run_json, progress

    path = find_run(args.run)
    folder = path if path.is_dir() else path.parent if path.is_file() else None
    if folder is None or not readable(folder / "run.json"):
        raise MlplabError(f"{args.run} is not a run folder (no run.json), nor a run in runs/ (see `mlplab runs`)")
    meta = load_run_json(folder)
    config_text = read_text(resolve(folder / "config.toml"), "config file") if readable(folder / "config.toml") else ""
    print(f"run: {path}")
    print(f"data: {(meta.get('data') or {}).get('name', '?')}  task: {meta['task']}  classes: {meta.get('classes')}")
    architecture = meta["architecture"]
    print(f"architecture: {architecture['n_inputs']} -> {architecture['hidden_sizes']} -> "
          f"{architecture['n_outputs']} ({architecture['activation']}, output {architecture.get('output')})")
    state = progress(meta)
    if state == "completed":
        state = meta.get("stop_reason") or state
    else:
        state += f"; resume with: mlplab train --resume {path}"
    print(f"epochs: {meta['epoch']}  time: {meta.get('train_seconds', 0):.2f}s  stopped: {state}")
    for split, values in (meta.get("metrics") or {}).items():
        if isinstance(values, dict):
            print(f"{split}: " + "  ".join(f"{k} {_fmt(v)}" for k, v in values.items()))
    print("config:")
    sys.stdout.write(config_text)


def evaluate(args: argparse.Namespace) -> None:
    from .data import drop_missing_target, read_input, select_columns
    from .metrics import confusion_matrix, task_metrics
    from .run import load

    model = load(args.run, allow_incomplete=args.allow_incomplete)
    target = args.target or model.meta.get("data", {}).get("target")
    encoding = model.meta.get("config", {}).get("data", {}).get("encoding", "utf-8")
    features, y = select_columns(read_input(args.data, model.preprocessor, encoding=encoding), target,
                                 model.feature_names, args.data)
    features, y, dropped = drop_missing_target(features, y, args.data, target)
    if dropped:
        print(f"{dropped} rows without a target value dropped")
    if model.task == "regression" and y.dtype.kind not in "biuf":
        raise MlplabError(f"{args.data}: the target column '{target}' holds text, but this run is a regression "
                          "model, which needs numbers")
    outputs = model.outputs(features)
    if model.task == "regression":
        results = task_metrics("regression", y.astype(float), model.predictions(outputs))
    else:
        from .preprocess import TargetEncoder

        codes = TargetEncoder(model.task, model.classes).encode(y).astype(int)
        results = task_metrics(model.task, codes, outputs.probabilities, len(model.classes))
        matrix = confusion_matrix(codes, outputs.indices, len(model.classes))
    print(f"{args.data}: {len(y)} rows")
    for key, value in results.items():
        print(f"{key:>10} {value:.4f}")
    if model.task != "regression":
        print("confusion matrix (rows: true, columns: predicted), labels", model.classes)
        for row in matrix.tolist():
            print("  " + " ".join(f"{count:>5}" for count in row))


def bench(args: argparse.Namespace) -> None:
    try:
        import sklearn  # noqa: F401 - the peers need it
    except ImportError:
        raise MlplabError("the benchmarks measure scikit-learn as a peer: pip install 'mlplab[sklearn]'") from None
    from .bench import TASKS, run

    unknown = [task for task in args.only or [] if task not in TASKS]
    if unknown:
        raise MlplabError(f"--only takes {', '.join(TASKS)}; got {', '.join(unknown)}")
    run("quick" if args.quick else "full", tuple(args.only or TASKS), args.output)


def plot(args: argparse.Namespace) -> None:
    from . import plots
    from .report import figure_path, load_run

    folder = Path(args.run) if args.run else None
    needs_run = args.kind not in ("data", "activations")
    if needs_run and folder is None:
        raise MlplabError(f"plot {args.kind} needs a run folder: mlplab plot {args.kind} RUN")
    out_folder = folder if folder is not None and folder.is_dir() else Path(".")
    out = Path(args.out) if args.out else figure_path(out_folder, args.kind, args.format)
    if args.kind == "activations":
        written = [plots.save(plots.plot_activations(), out)]
    elif args.kind == "data" and folder is None:
        written = [plots.save(_data_figure(args), out)]
    else:
        run = load_run(folder, announce=print)
        written = _run_figure(args, run, out)
    for path in written:
        print(f"wrote {path}")


def _data_figure(args: argparse.Namespace):
    from .data import load_dataset
    from .plots import plot_data

    config = Config()
    for key in ("data.dataset", "data.path", "data.target", "data.n_train", "data.noise", "data.n_classes", "seed"):
        if getattr(args, key) is not None:
            config.set(key, getattr(args, key))
    dataset = load_dataset(config.validate())
    names = dataset.preprocessor.column_names if dataset.preprocessor.all_numeric else None
    return plot_data(dataset.x_train, dataset.y_train, dataset.task, dataset.classes, names,
                     title=f"Data: {dataset.source['name']}")


def _run_figure(args: argparse.Namespace, run, out: Path) -> list[Path]:
    from . import plots

    model = run.model
    features = tuple(args.features) if args.features else None
    if args.kind == "data":
        figure = plots.plot_data(run.dataset.x_train, run.dataset.y_train, model.task, model.classes)
    elif args.kind == "boundary":
        figure = plots.plot_boundary(model, run.splits, features, pca=args.pca)
    elif args.kind == "history":
        figure = plots.plot_history(run.history, model.meta.get("best_epoch"))
    elif args.kind == "network":
        figure = plots.plot_network(model)
    elif args.kind == "neurons":
        figure = plots.plot_neurons(model, run.dataset.x_train)
    else:
        from .animation import animate

        return animate(model, run.snapshots, run.history, run.splits,
                       out if args.out else out.with_name("animation.gif"), features=features, pca=args.pca)
    return [plots.save(figure, out)]


def explain(args: argparse.Namespace) -> None:
    from .explain import explain as explain_sample
    from .explain import render
    from .run import load

    model = load(args.run, allow_incomplete=args.allow_incomplete)
    if not args.values:
        raise MlplabError("give the sample's feature values after `--` (e.g. mlplab explain RUN -- -1 1)")
    print(render(explain_sample(model, args.values, args.label, args.lr)))


def sweep(args: argparse.Namespace) -> None:
    from .sweep import load_sweep_config, parse_grid_option, run_sweep

    if args.top < 0:
        raise MlplabError(f"--top must be >= 0, got {args.top}")
    base, grid, options = load_sweep_config(args.config) if args.config else (Config(), {}, {})
    for _, key, _, _ in TRAIN_FLAGS:
        value = getattr(args, key)
        if value is not None:
            base.set(key, [name.strip() for name in value.split(",") if name.strip()]
                     if key == "data.features" else value)
    base.validate()
    for option in args.grid or []:
        key, values = parse_grid_option(option)
        grid[key] = values
    if not grid:
        raise MlplabError("nothing to sweep: give --grid KEY=VALUES (or a [sweep.grid] table in --config)")
    result = run_sweep(base, grid, metric=args.metric or options.get("metric"), out=args.out, force=args.force)
    if args.quiet:
        print(result.path)
        return
    print(f"{len(result.rows)} models in {result.seconds:.1f} s; best by {result.metric}:")
    scores = [result.metric] + [name for name in (f"{result.metric.split('_')[0]}_accuracy",
                                                   f"{result.metric.split('_')[0]}_r2") if name != result.metric]
    columns = ["model", *grid, "epochs", "best_epoch", *(s for s in scores if s in result.rows[0])]
    rows = [[row.get(column) for column in columns] for row in result.top(args.top)]
    cells = [[column.replace("_", " ") if column in ("best_epoch",) else column for column in columns]]
    cells += [[_cell(value) for value in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    for row in cells:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    print(f"Sweep saved to {result.path}: results.csv, results.json, curves.npz, sweep.toml, sweep.png; "
          f"the best model's run folder: {result.path / 'best'}")


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) >= 1e-3 or value == 0 else f"{value:.3g}"
    if isinstance(value, list):
        return "-".join(map(str, value))
    return "-" if value is None else str(value)


def serve(args: argparse.Namespace) -> None:
    from .web import require_web

    require_web()
    from .web.app import Limits
    from .web.serve import serve as serve_runs

    serve_runs(args.runs, host=args.host, port=args.port, workers=args.workers,
               limits=Limits(max_rows=args.max_rows, max_body_bytes=args.max_body))


def export(args: argparse.Namespace) -> None:
    from .export import export_run

    for path in export_run(args.run, args.format, args.output):
        print(f"wrote {path}")


def playground(args: argparse.Namespace) -> None:
    from .web import require_web

    require_web()
    from .web.server import run_playground

    run_playground(args.host, args.port, open_browser=args.open, max_sessions=args.max_sessions)
