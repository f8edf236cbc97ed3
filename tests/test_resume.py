"""Periodic checkpoints and --resume: a run killed with SIGKILL and resumed ends bit-identical."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import mlplab

ENV = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
# Mini-batches, dropout, Adam and a step schedule: every piece of state a resume must restore.
ARGS = ["--dataset", "moons", "--n-train", "2000", "--n-test", "100", "--hidden", "32", "32", "--dropout", "0.1",
        "--optimizer", "adam", "--lr", "0.01", "--batch-size", "32", "--schedule", "step", "--step-size", "4",
        "--gamma", "0.8", "--val-fraction", "0.2", "--epochs", "40", "--checkpoint-every", "2", "--quiet"]


def mlplab_cli(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "mlplab", *map(str, args)], env=ENV, capture_output=True,
                          text=True, timeout=300, **kwargs)


@pytest.mark.slow
def test_sigkill_then_resume_equals_an_uninterrupted_run(tmp_path):
    killed = tmp_path / "killed"
    process = subprocess.Popen([sys.executable, "-m", "mlplab", "train", "--out", str(killed), *ARGS], env=ENV,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not (killed / "run.json").exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    process.kill()  # SIGKILL: no clean-up code runs
    process.wait()
    meta = json.loads((killed / "run.json").read_text())
    assert not meta["complete"], "the run finished before it could be killed; make it longer"
    stopped_at = torch.load(killed / "checkpoint.pt", weights_only=True)["training_state"]["epoch"]
    assert 0 < stopped_at < 40

    resumed = mlplab_cli("train", "--resume", killed, "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    straight = mlplab_cli("train", "--out", tmp_path / "straight", *ARGS)
    assert straight.returncode == 0, straight.stderr

    ours, reference = torch.load(killed / "model.pt"), torch.load(tmp_path / "straight" / "model.pt")
    assert all(torch.equal(ours[name], reference[name]) for name in reference)
    assert json.loads((killed / "history.json").read_text()) == json.loads(
        (tmp_path / "straight" / "history.json").read_text())
    assert json.loads((killed / "run.json").read_text())["complete"]


def test_resume_in_process_with_early_stopping_state(tmp_path):
    config = mlplab.Config.from_dict({
        "data": {"dataset": "moons", "n_train": 120, "noise": 0.35, "val_fraction": 0.3},
        "model": {"hidden_sizes": [64]},
        "training": {"optimizer": "adam", "learning_rate": 0.02, "epochs": 60, "early_stopping": True,
                     "patience": 100, "checkpoint_every": 10}})
    full = mlplab.train(config, out=tmp_path / "full")
    config.training.epochs = 30
    mlplab.train(config, out=tmp_path / "part")
    resumed = mlplab.resume(tmp_path / "part", epochs=60)
    assert resumed.history == full.history
    assert resumed.model.meta["best_epoch"] == full.model.meta["best_epoch"]
    for name, tensor in full.model.module.state_dict().items():
        assert torch.equal(tensor, resumed.model.module.state_dict()[name])


def test_resume_refuses_other_flags_and_non_runs(cli, tmp_path):
    assert cli("train", "--out", tmp_path / "r", "--epochs", "10", "--quiet")[0] == 0
    code, _, err = cli("train", "--resume", tmp_path / "r", "--lr", "0.5")
    assert code == 2 and "only --epochs may change (drop --lr)" in err
    code, _, err = cli("train", "--resume", tmp_path / "nothing")
    assert code == 2 and ("does not exist" in err or "no checkpoint.pt" in err)
    code, out, err = cli("train", "--resume", tmp_path / "r", "--epochs", "15")
    assert code == 0, err
    assert len(json.loads((tmp_path / "r" / "history.json").read_text())) == 15


def test_divergence_keeps_the_last_good_checkpoint(cli, tmp_path):
    # Regression with lr 2 on this net overflows after a few epochs; the checkpoint from before stays,
    # with every file of the run as it was committed then (the diverged epochs are not written over it).
    code, out, err = cli("train", "--out", tmp_path / "r", "--dataset", "linear", "--lr", "2", "--hidden", "32",
                         "32", "--epochs", "400", "--checkpoint-every", "1", "--quiet")
    assert code == 2 and "diverged at epoch" in err and "learning rate 2 is probably too high; try 0.2" in err
    model = mlplab.load(tmp_path / "r", allow_incomplete=True)
    assert 0 < model.meta["epoch"] < 400 and not model.meta["complete"]
    assert all(torch.isfinite(t).all() for t in model.module.state_dict().values())
    history = json.loads((tmp_path / "r" / "history.json").read_text())
    assert len(history) == model.meta["epoch"] and history[-1]["train_loss"] is not None


def test_resume_keeps_the_snapshots_taken_before(tmp_path):
    config = mlplab.Config.from_dict({"training": {"epochs": 40, "snapshot_every": 10, "checkpoint_every": 20}})
    mlplab.train(config, out=tmp_path / "full")
    config.training.epochs = 20
    mlplab.train(config, out=tmp_path / "part")
    mlplab.resume(tmp_path / "part", epochs=40)
    resumed = torch.load(tmp_path / "part" / "snapshots.pt", weights_only=True)
    full = torch.load(tmp_path / "full" / "snapshots.pt", weights_only=True)
    assert [s["epoch"] for s in resumed] == [s["epoch"] for s in full] == [10, 20, 30, 40]
    for ours, theirs in zip(resumed, full):
        assert all(torch.equal(ours["weights"][name], theirs["weights"][name]) for name in theirs["weights"])
