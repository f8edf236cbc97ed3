"""The command line, in-process and once as a real subprocess; every kind of bad input."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

FAST = ["--epochs", "30", "--log-every", "10"]


def test_train_defaults_print_the_tutorials_lines(tutorial_run, cli, tmp_path):
    code, out, err = cli("train", "--out", tmp_path / "run", "--epochs", "300")
    assert code == 0, err
    lines = out.splitlines()
    assert any(line.startswith("Before training, test loss is ") for line in lines)
    logged = [line for line in lines if line.startswith("epoch")]
    assert [line.split()[1] for line in logged] == ["1/300", "100/300", "200/300", "300/300"]
    assert "Final: train loss" in out and "test loss" in out and "accuracy" in out
    assert "The probability that [-1, 1] has label 1 is" in out
    for name in ("checkpoint.pt", "model.pt", "history.json", "config.toml", "run.json"):
        assert (tmp_path / "run" / name).is_file()


def test_flags_reach_the_config(cli, tmp_path):
    code, _, err = cli("train", "--out", tmp_path / "r", "--hidden", "8", "4", "--activation", "tanh",
                       "--lr", "0.1", "--n-train", "40", "--n-test", "12", "--noise", "0.2", "--seed", "3",
                       "--quiet", *FAST)
    assert code == 0, err
    meta = json.loads((tmp_path / "r" / "run.json").read_text())
    assert meta["architecture"]["hidden_sizes"] == [8, 4]
    assert meta["architecture"]["activation"] == "tanh"
    config = meta["config"]
    assert config["seed"] == 3 and config["training"]["learning_rate"] == 0.1
    assert config["data"]["n_train"] == 40 and config["data"]["noise"] == 0.2
    state = torch.load(tmp_path / "r" / "model.pt")
    assert list(state) == [f"linear_{i}.{p}" for i in (1, 2, 3) for p in ("weight", "bias")]


def test_toml_config_and_flags_override_it(cli, tmp_path):
    (tmp_path / "run.toml").write_text('seed = 5\n[model]\nhidden_sizes = [7]\n[training]\nepochs = 20\n'
                                       'learning_rate = 0.5\n')
    code, out, err = cli("train", "--config", tmp_path / "run.toml", "--lr", "0.2", "--out", tmp_path / "r",
                         "--quiet")
    assert code == 0, err
    assert out.strip() == str(tmp_path / "r")
    resolved = (tmp_path / "r" / "config.toml").read_text()
    assert "seed = 5" in resolved and "hidden_sizes = [7]" in resolved and "learning_rate = 0.2" in resolved
    # the saved config is a valid config file that reproduces the run exactly
    code, _, err = cli("train", "--config", tmp_path / "r" / "config.toml", "--out", tmp_path / "again", "--quiet")
    assert code == 0, err
    first = torch.load(tmp_path / "r" / "model.pt")
    second = torch.load(tmp_path / "again" / "model.pt")
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert (tmp_path / "r" / "history.json").read_text() == (tmp_path / "again" / "history.json").read_text()


@pytest.mark.parametrize(("args", "message"), [
    (["--lr", "0"], "--lr must be a number > 0, got 0"),
    (["--lr", "-1"], "--lr must be a number > 0"),
    (["--lr", "abc"], "argument --lr"),
    (["--hidden", "0"], "--hidden must be whole numbers >= 1"),
    (["--hidden", "5", "0"], "--hidden must be whole numbers >= 1"),
    (["--activation", "swishy"], "--activation must be one of relu"),
    (["--epochs", "0"], "--epochs must be a whole number >= 1"),
    (["--n-train", "0"], "--n-train must be a whole number >= 1"),
    (["--noise", "-0.1"], "--noise must be a number >= 0"),
    (["--dataset", "nope"], "--dataset must be one of xor-blobs"),
    (["--config", "missing.toml"], "config file 'missing.toml' does not exist"),
    (["--bogus"], "unrecognized arguments"),
])
def test_bad_train_options_one_line_exit_2_nothing_written(cli, tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    code, out, err = cli("train", "--out", "run", *args)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("mlplab: error: ")
    assert message in err
    assert "Traceback" not in err + out
    assert list(tmp_path.iterdir()) == []


def test_bad_toml_files(cli, tmp_path):
    (tmp_path / "bad.toml").write_text("seed = [")
    code, _, err = cli("train", "--config", tmp_path / "bad.toml")
    assert code == 2 and "not valid TOML" in err
    (tmp_path / "unknown.toml").write_text("[training]\nlearnin_rate = 0.1\n")
    code, _, err = cli("train", "--config", tmp_path / "unknown.toml")
    assert code == 2 and "training.learnin_rate is not a setting" in err and "learning_rate" in err
    (tmp_path / "table.toml").write_text("[trainng]\nepochs = 3\n")
    code, _, err = cli("train", "--config", tmp_path / "table.toml")
    assert code == 2 and "trainng is not a setting" in err and "[training]" in err


def test_an_existing_run_is_not_overwritten_without_force(cli, tmp_path):
    assert cli("train", "--out", tmp_path / "r", "--quiet", *FAST)[0] == 0
    before = (tmp_path / "r" / "checkpoint.pt").read_bytes()
    code, _, err = cli("train", "--out", tmp_path / "r", "--seed", "9", *FAST)
    assert code == 2 and "already holds a run" in err and "--force" in err
    assert (tmp_path / "r" / "checkpoint.pt").read_bytes() == before
    assert cli("train", "--out", tmp_path / "r", "--seed", "9", "--force", "--quiet", *FAST)[0] == 0


def test_bad_predict_inputs(tutorial_run, cli, tmp_path):
    cases = [
        (["predict", tmp_path / "nothing"], "does not exist"),
        (["predict", tutorial_run.path, "--", "1"], "expected 2 feature(s) per row"),
        (["predict", tutorial_run.path, "--", "1", "2", "3"], "expected 2 feature(s) per row"),
        (["predict", tutorial_run.path], "give one row of feature values"),
        (["predict"], "predict needs a run folder"),
        (["predict", tutorial_run.path / "history.json", "--", "1", "2"], "not a readable"),
        (["predict", "--state-dict", tutorial_run.path / "history.json", "--", "1", "2"], "not a readable"),
        (["predict", "--state-dict", tutorial_run.path / "model.pt", "--activation", "nope", "--", "1", "2"],
         "--activation must be one of"),
        (["predict", tutorial_run.path, "--input", tmp_path / "none.csv"], "does not exist"),
    ]
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes((tutorial_run.path / "checkpoint.pt").read_bytes()[:500])
    cases.append((["predict", truncated, "--", "1", "2"], "truncated, corrupt"))
    for args, message in cases:
        code, out, err = cli(*args)
        assert code == 2, (args, err)
        assert message in err, (args, err)
        assert err.count("\n") == 1 and "Traceback" not in err


def test_predict_many_rows_from_csv(tutorial_run, cli, tmp_path):
    (tmp_path / "rows.csv").write_text("x1,x2\n-1,1\n1,1\n1,-1\n")
    code, out, err = cli("predict", tutorial_run.path, "--input", tmp_path / "rows.csv")
    assert code == 0, err
    lines = out.strip().splitlines()
    assert lines[0] == "x1,x2,prediction,p_0,p_1"
    assert [line.split(",")[2] for line in lines[1:]] == ["1", "0", "1"]
    code, _, err = cli("predict", tutorial_run.path, "--input", tmp_path / "rows.csv", "--output",
                       tmp_path / "out.csv")
    assert code == 0, err
    assert (tmp_path / "out.csv").read_text().strip() == out.strip()


def test_real_subprocess_and_python_dash_m(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "mlplab", "train", "--out",
                             str(tmp_path / "r"), *FAST], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "Before training, test loss is" in result.stdout
    assert "\r" not in result.stdout  # not a terminal: plain lines, no live bar
    assert "| rich" not in result.stderr  # and the bar's library is not even imported
    result = subprocess.run([sys.executable, "-m", "mlplab", "train", "--lr", "-3"], capture_output=True,
                            text=True, env=env, timeout=60, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == "mlplab: error: --lr must be a number > 0, got -3\n"
    assert not (tmp_path / "runs").exists()


def test_live_progress_bar_on_a_terminal():
    import io

    import mlplab
    from mlplab.progress import Progress

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    stream = Terminal()
    config = mlplab.Config.from_dict({"data": {"val_fraction": 0.25}, "training": {"epochs": 50}})
    mlplab.train(config, save=False, callbacks=[Progress(50, 25, stream=stream, refresh_seconds=0)])
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", stream.getvalue())  # without the colours
    bars = [part for part in re.split(r"[\r\n]", text) if "epochs, ETA" in part]  # each redraw of the bar
    assert "50/50 epochs" in bars[-1] and "epochs/s" in bars[-1], bars[-1]
    assert "val accuracy" in bars[-1]
    assert "epoch 25/50  train loss" in text  # the printed lines scroll above the bar


def test_early_stopping_says_why_the_run_ended(cli, tmp_path):
    code, out, err = cli("train", "--out", tmp_path / "r", "--dataset", "moons", "--n-train", "60", "--noise", "0.3",
                         "--hidden", "64", "64", "--optimizer", "adam", "--lr", "0.05", "--epochs", "400",
                         "--val-fraction", "0.3", "--early-stopping", "--patience", "5")
    assert code == 0, err
    lines = out.splitlines()
    stop = next(line for line in lines if line.startswith("early stopping:"))
    assert "restored the best weights, from epoch" in stop
    assert lines.index(stop) < next(i for i, line in enumerate(lines) if line.startswith("Final:"))
