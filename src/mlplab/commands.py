"""What each CLI command does, once its arguments are parsed: call the library and print."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .cli import TRAIN_FLAGS, config_from_args, write_rows
from .config import Config, MlplabError

TUTORIAL_POINT = [-1.0, 1.0]  # the tutorial asks for P(label 1) at this point after reloading


def train(args: argparse.Namespace) -> None:
    from .run import load, resume
    from .run import train as train_run

    verbose = not args.quiet
    if args.resume:
        given = [flag for flag, key, _, _ in TRAIN_FLAGS if getattr(args, key) is not None and flag != "--epochs"]
        given += [flag for flag in ("--config", "--out") if getattr(args, flag[2:])]
        if given:
            raise MlplabError(f"--resume continues a run with its own config; only --epochs may change "
                              f"(drop {', '.join(given)})")
        run = resume(args.resume, epochs=getattr(args, "training.epochs"), verbose=verbose)
    else:
        config = config_from_args(args)
        if args.plots:
            from .report import figure_path

            figure_path(Path("."), "check", args.format)  # a bad --format is refused before training
            from .plots import require_pyplot

            require_pyplot()  # and so is a missing matplotlib
        run = train_run(config, out=args.out, force=args.force, verbose=verbose)
    figures = []
    if args.plots:
        from .report import write_figures

        figures = write_figures(run.path, args.format)
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
        probability = reloaded.predict_proba([TUTORIAL_POINT])[0, 1]
        print(f"The probability that [-1, 1] has label 1 is {probability:.6f} (from the reloaded checkpoint)")


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
        model = _model_from_state_dict(args.state_dict, args.activation, args.task)
    elif args.run is None:
        raise MlplabError("predict needs a run folder or checkpoint (or --state-dict FILE)")
    else:
        from .run import load

        model = load(args.run)
    if args.input:
        _predict_file(model, args.input, args.output, getattr(args, "keep", None), getattr(args, "encoding", None))
        return
    if not args.values:
        raise MlplabError("give one row of feature values after `--` (e.g. mlplab predict RUN -- -1 1) "
                          "or --input rows.csv")
    if any(f["kind"] == "categorical" for f in model.preprocessor.features):
        raise MlplabError("this model has text (categorical) features; pass rows with --input rows.csv")
    row = [args.values]
    if model.task == "regression":
        print(f"prediction: {float(model.predict(row)[0]):.6g}")
        return
    probabilities = model.predict_proba(row)[0]
    label = model.predict(row)[0]
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


def _model_from_state_dict(path: str, activation: str, task: str):
    from .checkpoint import CheckpointError, load_state_dict
    from .model import ACTIVATIONS, mlp_from_state_dict
    from .preprocess import Preprocessor
    from .run import TrainedModel

    if activation not in ACTIVATIONS:
        raise MlplabError(f"--activation must be one of {', '.join(ACTIVATIONS)}; got {activation!r}")
    try:
        module = mlp_from_state_dict(load_state_dict(path), activation)
    except ValueError as error:
        raise CheckpointError(f"{path}: {error}") from None
    n_inputs, n_outputs = module.sizes[0], module.sizes[-1]
    if task == "regression":
        task, classes = "regression", None
    else:
        task, classes = ("binary", [0, 1]) if n_outputs == 1 else ("multiclass", list(range(n_outputs)))
    preprocessor = Preprocessor([{"name": f"x{i + 1}", "kind": "numeric"} for i in range(n_inputs)])
    return TrainedModel(module.eval(), task, classes, preprocessor)


def _predict_file(model, path: str, output: str | None, keep: str | None = None,
                  encoding: str | None = None) -> None:
    from .data import read_input
    from .preprocess import DataError

    encoding = encoding or model.meta.get("config", {}).get("data", {}).get("encoding", "utf-8")
    table = read_input(path, model.preprocessor, encoding=encoding)
    names = model.feature_names
    missing = [name for name in names if name not in table]
    if missing and len(table) >= len(names) and all(name.startswith("x") for name in names):
        missing = []  # a state_dict model has no names: take the first columns in order
        table = dict(zip(names, table.values()))
    if missing:
        raise DataError(f"{path} lacks the feature column(s) {', '.join(missing)}; "
                        f"the model was trained on {', '.join(names)}")
    features = {name: table[name] for name in names}
    kept = _kept_columns(table, names, keep, path)
    header = list(kept)
    rows = [[_cell(value) for value in values] for values in zip(*kept.values())] if kept else \
        [[] for _ in range(len(next(iter(features.values()))))]
    if model.task == "regression":
        predictions = model.predict(features)
        write_rows(output, [*header, "prediction"], [[*r, float(p)] for r, p in zip(rows, predictions)])
        return
    probabilities = model.predict_proba(features)
    labels = model.predict(features)
    header += ["prediction", *(f"p_{name}" for name in model.classes)]
    write_rows(output, header, [[*r, label, *(f"{p:.6f}" for p in ps)]
                                for r, label, ps in zip(rows, labels.tolist(), probabilities.tolist())])


def _kept_columns(table, features: list[str], keep: str | None, path: str):
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


def _cell(value: Any) -> Any:
    """A CSV cell: missing values (None, NaN) as empty cells."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return value


def datasets(args: argparse.Namespace) -> None:
    from .data import GENERATORS

    width = max(map(len, GENERATORS))
    for name, generator in GENERATORS.items():
        print(f"{name:<{width}}  noise {generator.noise:<5g} {generator.summary}")


def runs(args: argparse.Namespace) -> None:
    folder = Path(args.folder)
    if not folder.is_dir():
        raise MlplabError(f"{folder} is not a folder of runs")
    rows = []
    for meta_path in sorted(folder.glob("*/run.json")):
        meta = json.loads(meta_path.read_text())
        architecture = meta["architecture"]
        metrics = meta.get("metrics") or {}
        headline = "accuracy" if meta["task"] != "regression" else "r2"
        best_val = _best_val(meta_path.parent / "history.json", headline)
        rows.append([meta_path.parent.name, meta["data"]["name"],
                     "-".join(map(str, [architecture["n_inputs"], *architecture["hidden_sizes"],
                                        architecture["n_outputs"]])),
                     str(meta["epoch"]), best_val,
                     _fmt((metrics.get("test") or {}).get(headline)) + f" {headline}",
                     f"{meta.get('train_seconds', 0):.1f}s"])
    if not rows:
        print(f"no runs in {folder}")
        return
    header = ["name", "data", "architecture", "epochs", "best val", "test", "time"]
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip())


def _best_val(history_path: Path, headline: str) -> str:
    try:
        history = json.loads(history_path.read_text())
    except (OSError, ValueError):
        return "-"
    values = [record[f"val_{headline}"] for record in history if record.get(f"val_{headline}") is not None]
    return _fmt(max(values)) if values else "-"


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{value:.4f}"


def show(args: argparse.Namespace) -> None:
    path = Path(args.run)
    folder = path if path.is_dir() else path.parent if path.is_file() else None
    if folder is None or not (folder / "run.json").is_file():
        raise MlplabError(f"{path} is not a run folder (no run.json)")
    meta_path = folder / "run.json"
    meta = json.loads(meta_path.read_text())
    print(f"run: {path}")
    print(f"data: {meta['data']['name']}  task: {meta['task']}  classes: {meta.get('classes')}")
    architecture = meta["architecture"]
    print(f"architecture: {architecture['n_inputs']} -> {architecture['hidden_sizes']} -> "
          f"{architecture['n_outputs']} ({architecture['activation']}, output {architecture['output']})")
    print(f"epochs: {meta['epoch']}  time: {meta.get('train_seconds', 0):.2f}s  "
          f"stopped: {meta.get('stop_reason') or 'completed'}")
    for split, values in (meta.get("metrics") or {}).items():
        print(f"{split}: " + "  ".join(f"{k} {_fmt(v)}" for k, v in values.items()))
    print("config:")
    sys.stdout.write((folder / "config.toml").read_text())


def evaluate(args: argparse.Namespace) -> None:
    from .data import drop_missing_target, read_input, select_columns
    from .metrics import confusion_matrix
    from .metrics import evaluate as score
    from .run import load

    model = load(args.run)
    target = args.target or model.meta.get("data", {}).get("target")
    encoding = model.meta.get("config", {}).get("data", {}).get("encoding", "utf-8")
    features, y = select_columns(read_input(args.data, model.preprocessor, encoding=encoding), target,
                                 model.feature_names, args.data)
    features, y, dropped = drop_missing_target(features, y, args.data, target)
    if dropped:
        print(f"{dropped} rows without a target value dropped")
    if model.task == "regression":
        results = score("regression", y.astype(float), model.predict(features))
    else:
        from .preprocess import TargetEncoder

        codes = TargetEncoder(model.task, model.classes).encode(y).astype(int)
        probabilities = model.predict_proba(features)
        outputs = probabilities[:, 1] if model.task == "binary" else probabilities
        results = score(model.task, codes, outputs, len(model.classes))
        matrix = confusion_matrix(codes, probabilities.argmax(axis=1), len(model.classes))
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
        run = load_run(folder)
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
    if args.kind == "data":
        figure = plots.plot_data(run.dataset.x_train, run.dataset.y_train, model.task, model.classes)
    elif args.kind == "boundary":
        figure = plots.plot_boundary(model, run.splits, _feature_indices(model, args.features),
                                     pca=args.pca or (args.features is None and model.module.sizes[0] > 2))
    elif args.kind == "history":
        figure = plots.plot_history(run.history, model.meta.get("best_epoch"))
    elif args.kind == "network":
        figure = plots.plot_network(model)
    elif args.kind == "neurons":
        figure = plots.plot_neurons(model, run.dataset.x_train)
    else:
        from .animation import animate

        return animate(model, run.snapshots, run.history, run.dataset.x_train, run.dataset.y_train,
                       out if args.out else out.with_name("animation.gif"))
    return [plots.save(figure, out)]


def _feature_indices(model, names: list[str] | None) -> tuple[int, int]:
    if names is None:
        return (0, 1)
    known = model.preprocessor.column_names if model.preprocessor.all_numeric else []
    missing = [name for name in names if name not in known]
    if missing:
        raise MlplabError(f"--features: no numeric input named {', '.join(missing)}; inputs are {', '.join(known)}")
    return known.index(names[0]), known.index(names[1])


def explain(args: argparse.Namespace) -> None:
    from .explain import explain as explain_sample
    from .explain import render
    from .run import load

    model = load(args.run)
    if not args.values:
        raise MlplabError("give the sample's feature values after `--` (e.g. mlplab explain RUN -- -1 1)")
    print(render(explain_sample(model, args.values, args.label, args.lr)))


def playground(args: argparse.Namespace) -> None:
    from .web import require_web

    require_web()
    from .web.server import run_playground

    run_playground(args.host, args.port, open_browser=args.open, max_sessions=args.max_sessions)
