"""A user's own table: missing values, column types, kept columns, integer targets, the file defaults."""

from __future__ import annotations

import csv

import numpy as np
import pytest

import mlplab
from mlplab.config import FILE_DATA_DEFAULTS, Config

FAST = {"training": {"epochs": 30, "patience": 5}}


def write_table(path, n=120, seed=0, gaps=True):
    """id, a numeric feature with gaps, a text feature with gaps, a binary text target."""
    rs = np.random.RandomState(seed)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "size", "colour", "label"])
        for i in range(n):
            size = rs.uniform(0, 10)
            colour = rs.choice(["red", "blue"])
            label = "big" if size + (colour == "red") * 2 > 6 else "small"
            writer.writerow([f"r{i}", "" if gaps and i % 10 == 3 else f"{size:.3f}",
                             "NA" if gaps and i % 10 == 5 else colour, label])
    return path


def config(path, test=None, **sections):
    values = {"data": {"path": str(path), "target": "label", "drop": ["id"], **sections.pop("data", {})},
              **FAST}
    if test is not None:
        values["data"]["test_path"] = str(test)
    for name, section in sections.items():
        values.setdefault(name, {}).update(section)
    return Config.from_dict(values)


def test_missing_values_are_imputed_from_training_rows_and_again_at_predict(tmp_path):
    train, test = write_table(tmp_path / "train.csv"), write_table(tmp_path / "test.csv", 40, seed=1)
    run = mlplab.train(config(train, test, data={"val_fraction": 0.0}), save=False)
    size, colour = run.model.preprocessor.features
    column = mlplab.read_table(train)["size"]
    assert size["fill"] == pytest.approx(np.nanmedian(column))  # the training median, not the test file's
    assert colour["categories"] == ["(missing)", "blue", "red"]
    gaps = run.model.predict_proba({"size": [np.nan, None], "colour": [None, "red"]})
    filled = run.model.predict_proba({"size": [size["fill"]] * 2, "colour": ["(missing)", "red"]})
    np.testing.assert_array_equal(gaps, filled)


def test_impute_none_refuses_missing_values_with_column_and_row(tmp_path):
    with pytest.raises(mlplab.DataError, match="column 'size' has a missing value \\(row \\d+\\)"):
        mlplab.train(config(write_table(tmp_path / "t.csv"), data={"impute": "none"}), save=False)


def test_rows_without_a_target_are_dropped_and_counted(tmp_path, capsys):
    path = tmp_path / "t.csv"
    lines = write_table(path, gaps=False).read_text().splitlines()
    lines[5] = lines[5].rsplit(",", 1)[0] + ","
    lines[9] = lines[9].rsplit(",", 1)[0] + ",NA"
    path.write_text("\n".join(lines) + "\n")
    run = mlplab.train(config(path), save=False, verbose=True)
    assert run.model.meta["data"]["dropped_rows"] == 2
    assert "(2 rows without a target value dropped)" in capsys.readouterr().out


def test_column_types_and_drop(tmp_path):
    path = tmp_path / "t.csv"
    rows = ["code,zip,score,label"] + [f"{i % 3},0{1000 + i % 4},{i * 0.5},{'ab'[i % 2]}" for i in range(60)]
    path.write_text("\n".join(rows) + "\n")
    values = {"data": {"path": str(path), "target": "label", "categorical": ["code", "zip"], "drop": ["score"]},
              **FAST}
    run = mlplab.train(Config.from_dict(values), save=False)
    features = {f["name"]: f for f in run.model.preprocessor.features}
    assert list(features) == ["code", "zip"]
    assert features["code"]["categories"] == ["0", "1", "2"]
    assert features["zip"]["categories"] == ["01000", "01001", "01002", "01003"]  # leading zero kept
    values["data"].update(categorical=None, numeric=["label"], drop=None)
    values["data"]["target"] = "code"
    with pytest.raises(mlplab.DataError, match="column 'label' must hold numbers but has 'a' at line 2"):
        mlplab.train(Config.from_dict(values), save=False)
    values["data"].update(numeric=None, drop=["nope"])
    with pytest.raises(mlplab.DataError, match="--drop names no column nope"):
        mlplab.train(Config.from_dict(values), save=False)


def test_predict_input_keeps_columns_to_join_back(cli, tmp_path):
    train = write_table(tmp_path / "train.csv")
    code, _, err = cli("train", "--data", train, "--target", "label", "--epochs", "20", "--out", tmp_path / "run")
    assert code == 0, err
    new = write_table(tmp_path / "new.csv", 5, seed=3)
    code, out, err = cli("predict", tmp_path / "run", "--input", new)
    assert code == 0, err
    header, *rows = list(csv.reader(out.splitlines()))
    assert header[:4] == ["id", "size", "colour", "label"] and header[4] == "prediction"
    assert [row[0] for row in rows] == [f"r{i}" for i in range(5)]
    assert rows[3][1] == "" and rows[0][1] != ""  # a missing value stays an empty cell


def test_integer_target_with_many_values_is_regression_and_says_so(tmp_path, capsys):
    rs = np.random.RandomState(0)
    x = rs.uniform(0, 10, 200)
    rows = ["x,price"] + [f"{a:.3f},{int(1000 + 100 * a)}" for a in x]
    (tmp_path / "p.csv").write_text("\n".join(rows) + "\n")
    values = {"data": {"path": str(tmp_path / "p.csv"), "target": "price"}, **FAST}
    run = mlplab.train(Config.from_dict(values), save=False, verbose=True)
    assert run.model.task == "regression"
    assert "integer target with" in capsys.readouterr().out and "--task multiclass" in run.model.meta["data"][
        "task_note"]
    prediction = run.model.predict([[5.0]])[0]
    assert 1200 < prediction < 1800  # back in the target's units (1500 is right)
    from mlplab.preprocess import infer_task

    y = mlplab.read_table(tmp_path / "p.csv")["price"]
    assert infer_task(y) == "regression" and infer_task(y, "multiclass") == "multiclass"
    assert infer_task(y[:40] % 7) == "multiclass"  # few distinct values: classes


def test_file_data_gets_the_tabular_defaults_and_flags_still_win(tmp_path):
    path = str(write_table(tmp_path / "t.csv"))
    plain = Config.from_dict({"data": {"path": path, "target": "label"}})
    for key, value in FILE_DATA_DEFAULTS.items():
        section, name = key.split(".")
        assert getattr(getattr(plain, section), name) == value
    chosen = Config.from_dict({"data": {"path": path, "target": "label", "val_fraction": 0.0},
                               "training": {"optimizer": "sgd", "learning_rate": 0.1}})
    assert chosen.training.optimizer == "sgd" and chosen.training.learning_rate == 0.1
    assert chosen.training.early_stopping is False and chosen.data.scale == "standard"
    assert Config.from_dict({}).training.optimizer == "sgd"  # built-in data: the tutorial's settings
    assert Config().data.scale == "none"


def test_regression_target_is_standardised_and_predictions_come_back_in_its_units(tmp_path):
    rs = np.random.RandomState(0)
    x = rs.uniform(-1, 1, (300, 2))
    y = 5000 + 800 * x[:, 0] - 300 * x[:, 1]
    rows = ["a,b,y"] + [f"{a:.4f},{b:.4f},{t:.2f}" for (a, b), t in zip(x, y)]
    (tmp_path / "r.csv").write_text("\n".join(rows) + "\n")
    run = mlplab.train(Config.from_dict({"data": {"path": str(tmp_path / "r.csv"), "target": "y"}}), save=False)
    mean, std = run.model.meta["target_scaling"]
    assert mean == pytest.approx(5000, abs=100) and std == pytest.approx(y.std(), rel=0.2)
    assert run.metrics["test"]["r2"] > 0.95
    np.testing.assert_allclose(run.model.predict([[0.5, 0.0], [0.0, 0.5]]), [5400, 4850], rtol=0.02)
