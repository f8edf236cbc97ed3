"""Trainings and their run folders: exclusive, atomic at every save, replaced only when complete,
stopped cleanly by signals, and incomplete runs shown and refused as such."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from conftest import quick_config

import mlplab
from mlplab.checkpoint import load_checkpoint, load_state_dict
from mlplab.interrupt import TrainingInterrupted
from mlplab.runfolder import read_json, resolve
from mlplab.training import Callback

MLPLAB = [sys.executable, "-m", "mlplab"]


def assert_consistent(folder, epochs):
    """Every file of the run, as a reader sees it, describes the same epoch, one of ``epochs``."""
    checkpoint = load_checkpoint(folder)
    epoch = checkpoint.meta["epoch"]
    assert epoch in epochs
    assert read_json(resolve(folder / "run.json"))["epoch"] == epoch
    assert len(read_json(resolve(folder / "history.json"))) == epoch
    plain = load_state_dict(folder / "model.pt")
    assert all(torch.equal(plain[name], tensor) for name, tensor in checkpoint.weights.items())
    return epoch


def test_sigkill_during_a_periodic_save_of_a_real_training(tmp_path):
    # The first save (epoch 5) has ~15 kill points; these fall in the second one (epoch 10): in its
    # staging writes, at its commit rename, and among the moves into place.
    for point in (19, 23, 26):
        out = tmp_path / f"run{point}"
        result = subprocess.run([*MLPLAB, "train", "--epochs", "12", "--checkpoint-every", "5", "--out", out,
                                 "--quiet"], env={**os.environ, "MLPLAB_FAULT_AT": str(point)}, capture_output=True)
        assert result.returncode == -signal.SIGKILL, result.stderr.decode()
        assert assert_consistent(out, {5, 10}) == (5 if point <= 22 else 10)
        assert not mlplab.load(out, allow_incomplete=True).meta["complete"]


def test_two_trainings_into_one_folder_exactly_one_wins(tmp_path):
    out = tmp_path / "run"
    command = [*MLPLAB, "train", "--epochs", "400", "--out", str(out), "--quiet"]
    first, second = (subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2))
    results = [(p.wait(), p.stderr.read().decode()) for p in (first, second)]
    assert sorted(code for code, _ in results) == [0, 2], results
    err = next(err for code, err in results if code == 2)
    assert err.count("\n") == 1 and ("another mlplab process is writing" in err or "already holds a run" in err)
    assert assert_consistent(out, {400}) == 400


def test_force_keeps_the_old_run_until_the_new_one_completes(cli, tmp_path):
    out = tmp_path / "run"
    assert cli("train", "--epochs", "30", "--snapshot-every", "10", "--out", out, "--quiet")[0] == 0
    (out / "boundary.png").write_bytes(b"an old figure")
    (out / "notes.txt").write_text("mine")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    # A diverging replacement never touches the old run, even with periodic checkpoints of its own.
    code, _, err = cli("train", "--dataset", "linear", "--lr", "2", "--hidden", "32", "32", "--epochs", "400",
                       "--checkpoint-every", "1", "--out", out, "--force", "--quiet")
    assert code == 2 and "diverged" in err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    # A complete replacement removes every file of the old run (but not the user's notes).
    assert cli("train", "--epochs", "20", "--out", out, "--force", "--quiet")[0] == 0
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.pt", "config.toml", "history.json", "model.pt",
                                                      "notes.txt", "run.json"]
    assert assert_consistent(out, {20}) == 20


def test_out_that_is_not_a_run_folder_is_refused(cli, tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "model.pt").write_bytes(b"my own model")
    for args in (["--out", tmp_path / "mine"], ["--out", tmp_path / "mine", "--force"], ["--out", ""],
                 ["--out", "/"], ["--out", tmp_path / "mine" / "model.pt" / "run"]):
        code, _, err = cli("train", "--epochs", "5", *args)
        assert code == 2 and err.count("\n") == 1, (args, err)
    assert [p.name for p in (tmp_path / "mine").iterdir()] == ["model.pt"]
    assert (tmp_path / "mine" / "model.pt").read_bytes() == b"my own model"


def test_a_diverged_run_without_checkpoints_leaves_nothing(cli, tmp_path):
    code, _, err = cli("train", "--dataset", "linear", "--lr", "2", "--hidden", "32", "32", "--epochs", "400",
                       "--out", tmp_path / "run", "--quiet")
    assert code == 2 and "diverged" in err and not (tmp_path / "run").exists()


class SendSignal(Callback):
    reads_scores_every_epoch = False  # so the run scores the test split exactly as the uninterrupted one does

    def __init__(self, epoch, number):
        self.epoch, self.number = epoch, number

    def on_epoch_end(self, state):
        if state.epoch == self.epoch:
            os.kill(os.getpid(), self.number)


def test_sigterm_saves_a_checkpoint_that_resumes_to_the_uninterrupted_run(tmp_path):
    config = quick_config(epochs=40, **{"training.optimizer": "adam", "training.learning_rate": 0.01})
    full = mlplab.train(config, out=tmp_path / "full")
    with pytest.raises(TrainingInterrupted, match=r"after epoch 7 of 40; saved a resumable checkpoint") as caught:
        mlplab.train(config, out=tmp_path / "part", callbacks=[SendSignal(7, signal.SIGTERM)], handle_signals=True)
    assert caught.value.exit_code == 143
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # the handlers are put back
    assert assert_consistent(tmp_path / "part", {7}) == 7
    resumed = mlplab.resume(tmp_path / "part")
    assert resumed.history == full.history


def test_sigint_from_outside_stops_saves_and_says_how_to_resume(cli, tmp_path):
    out = tmp_path / "run"
    process = subprocess.Popen([*MLPLAB, "train", "--epochs", "1000000", "--log-every", "1", "--out", str(out)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while not process.stdout.readline().startswith("epoch"):  # training has started
        time.sleep(0.01)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130
    assert err.startswith("mlplab: interrupted (SIGINT) after epoch ") and err.count("\n") == 1
    assert f"resume with: mlplab train --resume {out}" in err
    done = assert_consistent(out, set(range(1, 1000000)))
    # shown and refused as incomplete
    code, listing, _ = cli("runs", tmp_path)
    assert code == 0 and listing.splitlines()[1].split()[-1] == "incomplete"
    code, shown, _ = cli("show", out)
    assert f"stopped: incomplete: epoch {done} of 1000000; resume with: mlplab train --resume {out}" in shown
    code, _, err = cli("predict", out, "--", "-1", "1")
    assert code == 2 and "is an incomplete run (incomplete: epoch" in err and "--allow-incomplete" in err
    assert cli("predict", out, "--allow-incomplete", "--", "-1", "1")[0] == 0
    # resumed with fewer epochs than done: refused, nothing rewritten
    config_before = (out / "config.toml").read_bytes()
    code, _, err = cli("train", "--resume", out, "--epochs", str(done))
    assert code == 2 and f"must be more than the {done} epochs" in err
    assert (out / "config.toml").read_bytes() == config_before
    code, _, err = cli("train", "--resume", out, "--epochs", str(done + 3), "--quiet")
    assert code == 0, err
    assert json.loads((out / "run.json").read_text())["complete"]
