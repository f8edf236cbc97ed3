"""Experiment logs (mlplab.explog): a tiny run logged to TensorBoard and to MLflow, read back with each
tool's own reader (TensorBoard's EventAccumulator, MLflow's MlflowClient on a SQLite file): the values
are the run's history, config, final metrics and figures. No server is started."""

from __future__ import annotations

import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest

import mlplab
from mlplab.config import MlplabError
from mlplab.explog import flatten_config, log_run_result, make_experiment_logger

SETTINGS = {"seed": 3, "data": {"val_fraction": 0.25}, "model": {"hidden_sizes": [4]},
            "training": {"epochs": 25, "log_every": 10, "optimizer": "adam", "learning_rate": 0.05}}


def _png(path, width=3, height=2):
    """A tiny valid PNG (grey pixels), written without any imaging library."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + bytes([128] * width) for _ in range(height))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
    return path


def _expected(history):
    """{key: [(epoch, value), ...]} for every numeric key of the per-epoch records."""
    series: dict[str, list[tuple[int, float]]] = {}
    for record in history:
        for key, value in record.items():
            if key != "epoch" and isinstance(value, (int, float)) and not isinstance(value, bool):
                series.setdefault(key, []).append((record["epoch"], float(value)))
    return series


def _train(logger):
    config = mlplab.Config.from_dict(SETTINGS)
    return config, mlplab.train(config, save=False, callbacks=[logger])


def test_tensorboard_logs_read_back(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    folder = tmp_path / "tb"
    logger = make_experiment_logger("tensorboard", str(folder), config=mlplab.Config.from_dict(SETTINGS))
    config, run = _train(logger)
    figure = _png(tmp_path / "loss.png")
    log_run_result(logger, run, figures=[figure])

    events = EventAccumulator(str(folder), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    events.Reload()
    expected = _expected(run.history)
    assert {"train_loss", "val_loss", "val_accuracy", "lr"} <= set(expected)
    final = {f"final/{split}_{name}": value for split, values in run.metrics.items() for name, value in values.items()
             if isinstance(value, float)}
    assert set(events.Tags()["scalars"]) == set(expected) | set(final)
    for key, points in expected.items():
        logged = [(event.step, event.value) for event in events.Scalars(key)]
        assert [step for step, _ in logged] == [step for step, _ in points], key
        np.testing.assert_array_equal([value for _, value in logged],  # TensorBoard keeps float32
                                      np.float32([value for _, value in points]), err_msg=key)
    for key, value in final.items():
        (event,) = events.Scalars(key)
        assert event.step == run.history[-1]["epoch"] and event.value == np.float32(value)

    content = events.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"]).session_start_info
    logged_params = {key: value.WhichOneof("kind") and getattr(value, value.WhichOneof("kind"))
                     for key, value in start.hparams.items()}
    flat = flatten_config(config)
    assert set(logged_params) == set(flat)
    assert logged_params["training.learning_rate"] == 0.05 and logged_params["model.hidden_sizes"] == "[4]"
    assert logged_params["data.dataset"] == "xor-blobs" and logged_params["training.epochs"] == 25

    (image,) = events.Images("figures/loss")
    assert image.encoded_image_string == figure.read_bytes() and (image.width, image.height) == (3, 2)


def test_mlflow_logs_read_back(tmp_path):
    pytest.importorskip("mlflow")
    pytest.importorskip("sqlalchemy")
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    logger = make_experiment_logger("mlflow", uri, run_name="tiny")
    config, run = _train(logger)
    log_run_result(logger, run, figures=[_png(tmp_path / "boundary.png")])

    client = MlflowClient(tracking_uri=uri)
    stored = client.get_run(logger.run_id)
    assert stored.info.status == "FINISHED" and stored.info.run_name == "tiny"
    assert stored.data.params == {key: str(value) for key, value in flatten_config(config).items()}
    for key, points in _expected(run.history).items():
        history = sorted((metric.step, metric.value) for metric in client.get_metric_history(logger.run_id, key))
        assert history == points, key
    assert stored.data.metrics["final/test_accuracy"] == run.metrics["test"]["accuracy"]
    assert stored.data.metrics["final/train_loss"] == run.metrics["train"]["loss"]
    assert [item.path for item in client.list_artifacts(logger.run_id, "figures")] == ["figures/boundary.png"]
    assert (tmp_path / "mlartifacts").is_dir()  # beside the database, not in the current folder

    # Logged after the fact (no callback): the history comes from the run itself, into a new run.
    later = make_experiment_logger("mlflow", str(tmp_path / "mlflow.db"))
    log_run_result(later, run)
    again = client.get_metric_history(later.run_id, "val_loss")
    assert sorted((metric.step, metric.value) for metric in again) == _expected(run.history)["val_loss"]
    assert client.get_run(later.run_id).data.params["seed"] == "3"


def test_refusals_are_one_clear_line(tmp_path, monkeypatch):
    with pytest.raises(MlplabError, match=r"--log takes tensorboard or mlflow, got 'wandb'"):
        make_experiment_logger("wandb", None)
    with pytest.raises(MlplabError, match=r"--log tensorboard needs a folder"):
        make_experiment_logger("tensorboard", None)
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *args: None if name in ("mlflow", "tensorboard") else real(name, *args))
    with pytest.raises(MlplabError, match=r"^--log mlflow needs mlflow: pip install 'mlplab\[mlflow\]'$"):
        make_experiment_logger("mlflow", str(tmp_path / "x.db"))
    with pytest.raises(MlplabError, match=r"^--log tensorboard needs tensorboard: pip install 'mlplab\[tensorboard\]"):
        make_experiment_logger("tensorboard", str(tmp_path / "tb"))


def test_importing_explog_imports_no_backend():
    code = ("import sys, mlplab.explog; "
            "print([name for name in ('torch', 'mlflow', 'tensorboard') if name in sys.modules])")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert result.stdout.strip() == "[]"


def test_cli_log_option_writes_what_the_run_recorded(cli, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    code, out, err = cli("train", "--epochs", "30", "--val-fraction", "0.25", "--out", tmp_path / "run",
                         "--log", "tensorboard", tmp_path / "tb")
    assert code == 0, err
    assert f"Logged to tensorboard: {tmp_path / 'tb'}" in out
    history = mlplab.load(tmp_path / "run").meta  # the run folder is written as without --log
    assert history["epoch"] == 30
    events = EventAccumulator(str(tmp_path / "tb"), size_guidance={"scalars": 0})
    events.Reload()
    saved = [record["val_loss"] for record in
             __import__("json").loads((tmp_path / "run" / "history.json").read_text()) if "val_loss" in record]
    logged = [event.value for event in events.Scalars("val_loss")]
    np.testing.assert_allclose(logged, saved, rtol=1e-6)
    code, _, err = cli("train", "--epochs", "3", "--out", tmp_path / "r2", "--log", "nope")
    assert code == 2 and err.startswith("mlplab: error: --log takes tensorboard or mlflow") and \
        not (tmp_path / "r2").exists()
    code, _, err = cli("train", "--epochs", "3", "--out", tmp_path / "r3", "--log", "mlflow", "a", "b")
    assert code == 2 and "--log takes a kind and at most one place" in err


def test_estimator_log_parameter(tmp_path):
    pytest.importorskip("mlflow")
    pytest.importorskip("sklearn")
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    rs = np.random.RandomState(0)
    X, y = rs.normal(size=(80, 3)), rs.randint(0, 2, 80)
    clf = mlplab.NeuralNetClassifier(hidden_layer_sizes=(4,), max_iter=12, random_state=0, log=("mlflow", uri))
    clf.fit(X, y)
    client = MlflowClient(tracking_uri=uri)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert len(runs) == 1 and runs[0].info.run_name == "NeuralNetClassifier"
    logged = [m.value for m in sorted(client.get_metric_history(runs[0].info.run_id, "train_loss"),
                                      key=lambda m: m.step)]
    np.testing.assert_allclose(logged, clf.loss_curve_, rtol=1e-6)
    with pytest.raises(ValueError, match="'log' parameter of NeuralNetClassifier: --log takes tensorboard or mlflow"):
        mlplab.NeuralNetClassifier(max_iter=2, log="nope").fit(X, y)
