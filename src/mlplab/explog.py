"""Experiment logs: a run's history, config, final metrics and figures in TensorBoard or MLflow.

``--log tensorboard DIR`` writes TensorBoard event files into DIR (``tensorboard --logdir DIR`` shows
them); ``--log mlflow [URI]`` records an MLflow run in a tracking store: a URI (``sqlite:///mlflow.db``,
``http://host:5000``, ...), a plain path taken as a SQLite file, or by default MLflow's own choice
(``MLFLOW_TRACKING_URI``, else ``sqlite:///mlflow.db`` in the current folder). No server is needed.

What is logged, the same in both:

- every numeric value of each per-epoch record of the history (``train_loss``, ``val_accuracy``,
  ``lr`` ...), under its own key, at step = the epoch;
- the config, flattened to ``section.key`` (``training.learning_rate``), as parameters (MLflow params;
  TensorBoard's HParams);
- the final metrics as ``final/{split}_{metric}`` (``final/test_accuracy``);
- figure files: artifacts under ``figures/`` in MLflow; PNGs as images in TensorBoard.

The logger is a training callback (``on_train_begin``/``on_epoch_end``/``on_train_end``, duck-typed
like :class:`mlplab.training.Callback`, so that importing this module imports neither torch nor either
backend). Final metrics and figures exist only after training: :func:`log_run_result` (or
:meth:`ExperimentLogger.finish`) logs them and closes the logger::

    logger = make_experiment_logger("mlflow", "sqlite:///mlflow.db", config=config)
    run = mlplab.train(config, callbacks=[logger])
    log_run_result(logger, run, figures=["runs/x/loss.png"])

Each backend is an optional extra (``pip install 'mlplab[tensorboard]'`` / ``'mlplab[mlflow]'``),
imported only when a logger of that kind is made.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import numbers
import struct
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import MlplabError

if TYPE_CHECKING:
    from .config import Config
    from .run import Run
    from .training import TrainingState

__all__ = ["KINDS", "ExperimentLogger", "flatten_config", "log_run_result", "make_experiment_logger"]

KINDS = ("tensorboard", "mlflow")
_NEEDS = {"tensorboard": ("tensorboard",), "mlflow": ("mlflow",)}
_SQL_NEEDS = ("sqlalchemy", "alembic")  # MLflow's SQL stores (sqlite:///...), not in mlflow-skinny itself


def make_experiment_logger(kind: str, where: str | None = None, *, config: Config | Mapping[str, Any] | None = None,
                           experiment: str = "mlplab", run_name: str | None = None) -> ExperimentLogger:
    """A logger for ``--log KIND [WHERE]``; raises :class:`MlplabError` (one line) for an unknown kind,
    a missing extra, or a store that cannot be opened. Opens the store now, so a bad URI fails before
    training starts. ``config`` is logged at once (or later with :meth:`ExperimentLogger.log_config`);
    ``experiment`` and ``run_name`` name the MLflow experiment and run (TensorBoard: ignored)."""
    if kind not in KINDS:
        raise MlplabError(f"--log takes {' or '.join(KINDS)}, got {kind!r}")
    _require(kind, _NEEDS[kind])
    if kind == "tensorboard":
        if not where:
            raise MlplabError("--log tensorboard needs a folder for its event files: --log tensorboard DIR")
        logger: ExperimentLogger = _TensorBoardLogger(where)
    else:
        logger = _MlflowLogger(where, experiment, run_name)
    if config is not None:
        logger.log_config(config)
    return logger


def log_run_result(logger: ExperimentLogger, run: Run, figures: Iterable[str | Path] = ()) -> None:
    """Log what exists only after training, then close ``logger``: the run's config (when not logged yet),
    its history (when the logger was not a training callback), final metrics and ``figures``."""
    if not logger.config_logged and getattr(run, "config", None) is not None:
        logger.log_config(run.config)
    if not logger.epochs_logged:
        logger.log_history(run.history)
    logger.finish(run.metrics, figures)


def flatten_config(config: Config | Mapping[str, Any]) -> dict[str, Any]:
    """``{"training": {"epochs": 5}, "seed": 0}`` -> ``{"training.epochs": 5, "seed": 0}``."""
    values = config.to_dict() if hasattr(config, "to_dict") else dict(config)
    flat: dict[str, Any] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, Mapping):
            for key, inner in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), inner)
        else:
            flat[prefix] = value

    walk("", values)
    return flat


def numeric_items(record: Mapping[str, Any]) -> list[tuple[str, float]]:
    """The numeric values of one history record (the epoch itself is the step, not a value)."""
    return [(key, float(value)) for key, value in record.items()
            if key != "epoch" and isinstance(value, numbers.Real) and not isinstance(value, bool)]


def _require(kind: str, modules: tuple[str, ...]) -> None:
    missing = [name for name in modules if importlib.util.find_spec(name) is None]
    if missing:
        raise MlplabError(f"--log {kind} needs {', '.join(missing)}: pip install 'mlplab[{kind}]'")


class ExperimentLogger:
    """A training callback that writes to one experiment log; see the module's description."""

    reads_scores_every_epoch = False  # it logs what each epoch's record holds

    kind = ""

    def __init__(self) -> None:
        self.config_logged = False
        self.epochs_logged = 0  # history records written
        self.step = 0  # the last epoch written: final metrics and figures are logged at it
        self.closed = False
        self._next = 0  # index in state.history of the first record not yet written

    @property
    def location(self) -> str:
        """Where the log is: a folder, or an MLflow URI and run id."""
        raise NotImplementedError

    # --- the training callback -------------------------------------------------------------------------

    def on_train_begin(self, state: TrainingState) -> None:
        self._next = len(state.history)  # a resumed run: the epochs before were its first session's

    def on_epoch_end(self, state: TrainingState) -> None:
        records, self._next = state.history[self._next:], len(state.history)
        self.log_history(records)

    def on_train_end(self, state: TrainingState) -> None:
        self.on_epoch_end(state)  # nothing new, unless a callback before this one added a record
        self.flush()

    # --- what the backends write -----------------------------------------------------------------------

    def log_config(self, config: Config | Mapping[str, Any]) -> None:
        self._write_params(flatten_config(config))
        self.config_logged = True

    def log_history(self, records: Iterable[Mapping[str, Any]]) -> None:
        for record in records:
            step = int(record.get("epoch", self.step + 1))
            self._write_metrics(step, numeric_items(record))
            self.epochs_logged += 1
            self.step = max(self.step, step)

    def finish(self, metrics: Mapping[str, Mapping[str, Any]] | None = None,
               figures: Iterable[str | Path] = ()) -> None:
        """Log the final metrics (``{split: {metric: value}}``) and figure files, then close."""
        final = [(f"final/{split}_{name}", float(value)) for split, values in (metrics or {}).items()
                 for name, value in (values or {}).items()
                 if isinstance(value, numbers.Real) and not isinstance(value, bool)]
        self._write_final(final)
        for path in figures:
            path = Path(path)
            if not path.is_file():
                raise MlplabError(f"figure {path} does not exist; nothing was logged for it")
            self._write_figure(path)
        self.close()

    def close(self, failed: bool = False) -> None:
        if not self.closed:
            self.closed = True
            self._close(failed)

    def __enter__(self) -> ExperimentLogger:
        return self

    def __exit__(self, kind: Any, error: Any, traceback: Any) -> None:
        self.close(failed=kind is not None)

    def flush(self) -> None: ...

    def _write_params(self, params: dict[str, Any]) -> None:
        raise NotImplementedError

    def _write_metrics(self, step: int, values: list[tuple[str, float]]) -> None:
        raise NotImplementedError

    def _write_final(self, values: list[tuple[str, float]]) -> None:
        raise NotImplementedError

    def _write_figure(self, path: Path) -> None:
        raise NotImplementedError

    def _close(self, failed: bool) -> None:
        raise NotImplementedError


class _TensorBoardLogger(ExperimentLogger):
    """Event files written with torch's SummaryWriter (which needs the tensorboard package)."""

    kind = "tensorboard"

    def __init__(self, folder: str) -> None:
        super().__init__()
        from torch.utils.tensorboard import SummaryWriter

        self.folder = Path(folder)
        try:
            self.writer = SummaryWriter(log_dir=str(self.folder))
        except OSError as error:
            raise MlplabError(f"--log tensorboard cannot write to {folder}: {error.strerror or error}") from None
        self.params: dict[str, Any] = {}

    @property
    def location(self) -> str:
        return str(self.folder)

    def _write_params(self, params: dict[str, Any]) -> None:
        # HParams takes bool, int, float and str; lists and None are shown as text.
        self.params.update({key: value if isinstance(value, (bool, int, float, str)) else str(value)
                            for key, value in params.items()})

    def _write_metrics(self, step: int, values: list[tuple[str, float]]) -> None:
        for key, value in values:
            self.writer.add_scalar(key, value, step)

    def _write_final(self, values: list[tuple[str, float]]) -> None:
        for key, value in values:
            self.writer.add_scalar(key, value, self.step)
        if self.params:
            from torch.utils.tensorboard.summary import hparams

            # Into this same event file (SummaryWriter.add_hparams would start another run folder).
            metric_tags = {key: value for key, value in values if math.isfinite(value)}
            for summary in hparams(self.params, metric_tags):
                self.writer._get_file_writer().add_summary(summary)
            self.params = {}

    def _write_figure(self, path: Path) -> None:
        data = path.read_bytes()
        if data[:8] != b"\x89PNG\r\n\x1a\n":
            self.writer.add_text(f"figures/{path.name}", f"figure file: {path} (TensorBoard shows PNG only)",
                                 self.step)
            return
        from tensorboard.compat.proto.summary_pb2 import Summary

        width, height = struct.unpack(">II", data[16:24])  # the IHDR chunk: no decoding needed
        image = Summary.Image(height=height, width=width, colorspace=4, encoded_image_string=data)
        summary = Summary(value=[Summary.Value(tag=f"figures/{path.stem}", image=image)])
        self.writer._get_file_writer().add_summary(summary, self.step)

    def flush(self) -> None:
        self.writer.flush()

    def _close(self, failed: bool) -> None:
        if self.params:  # the config, when no final metrics came
            self._write_final([])
        self.writer.close()


class _MlflowLogger(ExperimentLogger):
    """One MLflow run, written with MlflowClient (no global active run; a local store needs no server)."""

    kind = "mlflow"
    FLUSH_SECONDS = 2.0
    BATCH = 1000  # MLflow's limit of metrics in one log_batch

    def __init__(self, where: str | None, experiment: str, run_name: str | None) -> None:
        super().__init__()
        self.uri = _tracking_uri(where)
        if self.uri.startswith("sqlite:"):
            _require("mlflow", _SQL_NEEDS)
        for name in ("mlflow.store.db.utils", "alembic"):  # "Creating initial MLflow database tables..."
            logging.getLogger(name).setLevel(logging.WARNING)
        from mlflow.tracking import MlflowClient

        try:
            self.client = MlflowClient(tracking_uri=self.uri)
            found = self.client.get_experiment_by_name(experiment)
            if found is not None:
                experiment_id = found.experiment_id
            else:
                experiment_id = self.client.create_experiment(experiment, artifact_location=_artifacts(self.uri))
            self.run_id = self.client.create_run(experiment_id, run_name=run_name,
                                                 tags={"mlflow.source.name": "mlplab"}).info.run_id
        except Exception as error:  # MlflowException, a database or connection error: one line
            raise MlplabError(f"--log mlflow cannot use {self.uri}: {str(error).splitlines()[0][:300]}") from None
        self.pending: list[Any] = []
        self.last_flush = time.monotonic()

    @property
    def location(self) -> str:
        return f"{self.uri} (run {self.run_id})"

    def _write_params(self, params: dict[str, Any]) -> None:
        from mlflow.entities import Param

        items = [Param(key, str(value)[:6000]) for key, value in params.items()]
        for start in range(0, len(items), 100):  # MLflow's limit of params in one batch
            self.client.log_batch(self.run_id, params=items[start:start + 100])

    def _write_metrics(self, step: int, values: list[tuple[str, float]]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.pending += [Metric(key, value, now, step) for key, value in values]
        if len(self.pending) >= self.BATCH or time.monotonic() - self.last_flush >= self.FLUSH_SECONDS:
            self.flush()

    def _write_final(self, values: list[tuple[str, float]]) -> None:
        self._write_metrics(self.step, values)
        self.flush()

    def _write_figure(self, path: Path) -> None:
        self.client.log_artifact(self.run_id, str(path), artifact_path="figures")

    def flush(self) -> None:
        while self.pending:
            batch, self.pending = self.pending[:self.BATCH], self.pending[self.BATCH:]
            self.client.log_batch(self.run_id, metrics=batch)
        self.last_flush = time.monotonic()

    def _close(self, failed: bool) -> None:
        self.flush()
        self.client.set_terminated(self.run_id, "FAILED" if failed else "FINISHED")


def _tracking_uri(where: str | None) -> str:
    """A URI as given; a plain path as a SQLite file; None: MLflow's default (MLFLOW_TRACKING_URI, ...)."""
    if not where:
        import mlflow

        return mlflow.get_tracking_uri()
    if "://" in where or where.startswith(("sqlite:", "file:", "databricks")):
        return where
    return "sqlite:///" + str(Path(where).resolve())


def _artifacts(uri: str) -> str | None:
    """Artifacts of a new experiment in a SQLite store go beside the database file (``mlartifacts``), not
    into the current folder; other stores keep their own default."""
    prefix = "sqlite:///"
    if uri.startswith(prefix) and uri[len(prefix):] not in ("", ":memory:"):
        return (Path(uri[len(prefix):]).resolve().parent / "mlartifacts").as_uri()
    return None
