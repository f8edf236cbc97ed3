"""mlplab datasets, runs, show, evaluate."""

import numpy as np
from test_files import FAST, write_mixed_csv

from mlplab.data import GENERATORS


def test_datasets_lists_every_generator(cli):
    code, out, _ = cli("datasets")
    assert code == 0
    assert [line.split()[0] for line in out.strip().splitlines()] == list(GENERATORS)


def test_runs_lists_runs_as_a_table(cli, tmp_path):
    assert cli("train", "--out", tmp_path / "runs" / "first", "--epochs", "20", "--quiet")[0] == 0
    assert cli("train", "--out", tmp_path / "runs" / "second", "--dataset", "moons", "--hidden", "8", "8",
               "--val-fraction", "0.25", "--epochs", "20", "--quiet")[0] == 0
    code, out, err = cli("runs", tmp_path / "runs")
    assert code == 0, err
    lines = out.strip().splitlines()
    assert lines[0].split() == ["name", "date", "data", "architecture", "epochs", "best", "val", "test", "train",
                                "time"]
    first, second = (line.split() for line in lines[1:])
    assert first[0] == str(tmp_path / "runs" / "first") and first[3:6] == ["xor-blobs", "2-5-1", "20"]
    assert second[0] == str(tmp_path / "runs" / "second") and second[3:6] == ["moons", "2-8-8-1", "20"]
    assert first[6] == "-" and second[6] != "-"  # best val only with a val split
    code, out, _ = cli("runs", tmp_path / "empty")
    assert code == 2


def test_show_prints_config_and_metrics(cli, tutorial_run):
    code, out, err = cli("show", tutorial_run.path)
    assert code == 0, err
    assert "architecture: 2 -> [5] -> 1 (relu, output sigmoid)" in out
    assert "test: loss" in out and "accuracy 1.0000" in out
    assert "learning_rate = 0.03" in out
    code, _, err = cli("show", tutorial_run.path / "nope")
    assert code == 2 and "not a run folder" in err


def test_evaluate_on_new_labelled_data(cli, tmp_path):
    write_mixed_csv(tmp_path / "train.csv")
    write_mixed_csv(tmp_path / "new.csv", n=100, seed=5)
    assert cli("train", "--data", tmp_path / "train.csv", "--target", "label", "--out", tmp_path / "run",
               *FAST)[0] == 0
    code, out, err = cli("evaluate", tmp_path / "run", "--data", tmp_path / "new.csv")
    assert code == 0, err
    accuracy = float(next(line for line in out.splitlines() if "accuracy" in line).split()[1])
    assert accuracy >= 0.85
    matrix = [list(map(int, line.split())) for line in out.strip().splitlines()[-2:]]
    assert np.array(matrix).sum() == 100
    code, _, err = cli("evaluate", tmp_path / "run", "--data", tmp_path / "new.csv", "--target", "nope")
    assert code == 2 and "no target column 'nope'" in err
