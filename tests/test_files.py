"""Your own data: CSV, Parquet, .npz; categorical columns, string labels, splits, scaling, bad files."""

import json

import numpy as np
import pytest

import mlplab
from mlplab.data import read_table, split_indices

FAST = ["--epochs", "200", "--optimizer", "adam", "--lr", "0.05", "--hidden", "16", "--quiet"]


def write_mixed_csv(path, n=300, seed=0, colours=("red", "green", "blue")):
    """Label 'yes' when size + (colour bonus) > 1: needs the numeric and the categorical column."""
    rs = np.random.RandomState(seed)
    bonus = {"red": 1.0, "green": 0.0, "blue": -1.0}
    lines = ["size,colour,weight,label"]
    for _ in range(n):
        size, colour, weight = rs.uniform(-1, 2), colours[rs.randint(len(colours))], rs.randint(0, 5)
        label = "yes" if size + bonus.get(colour, 0) > 1 else "no"
        lines.append(f"{size:.4f},{colour},{weight},{label}")
    path.write_text("\n".join(lines) + "\n")


def test_mixed_csv_round_trips_with_string_labels(cli, tmp_path):
    write_mixed_csv(tmp_path / "train.csv")
    code, out, err = cli("train", "--data", tmp_path / "train.csv", "--target", "label", "--scale", "standard",
                         "--out", tmp_path / "run", *FAST)
    assert code == 0, err
    meta = json.loads((tmp_path / "run" / "run.json").read_text())
    assert meta["classes"] == ["no", "yes"] and meta["task"] == "binary"
    features = meta["preprocessor"]["features"]
    assert features[1] == {"name": "colour", "kind": "categorical", "categories": ["blue", "green", "red"]}
    assert meta["architecture"]["n_inputs"] == 5  # size + 3 one-hot + weight
    assert meta["metrics"]["test"]["accuracy"] >= 0.9
    (tmp_path / "rows.csv").write_text("size,colour,weight\n1.5,red,1\n-0.5,blue,3\n")
    code, out, err = cli("predict", tmp_path / "run", "--input", tmp_path / "rows.csv")
    assert code == 0, err
    rows = [line.split(",") for line in out.strip().splitlines()]
    assert rows[0] == ["size", "colour", "weight", "prediction", "p_no", "p_yes"]
    assert [row[3] for row in rows[1:]] == ["yes", "no"]
    model = mlplab.load(tmp_path / "run")
    assert model.predict({"size": [1.5], "colour": ["red"], "weight": [1]}).tolist() == ["yes"]


def test_unseen_categories_error_or_all_zero(cli, tmp_path):
    write_mixed_csv(tmp_path / "train.csv")
    (tmp_path / "rows.csv").write_text("size,colour,weight\n1.5,purple,1\n")
    assert cli("train", "--data", tmp_path / "train.csv", "--target", "label", "--out", tmp_path / "strict",
               *FAST)[0] == 0
    code, out, err = cli("predict", tmp_path / "strict", "--input", tmp_path / "rows.csv")
    assert code == 2 and "unseen in training: 'purple'" in err and out == ""
    assert cli("train", "--data", tmp_path / "train.csv", "--target", "label", "--out", tmp_path / "lenient",
               "--unknown-categories", "ignore", *FAST)[0] == 0
    code, out, err = cli("predict", tmp_path / "lenient", "--input", tmp_path / "rows.csv")
    assert code == 0, err
    model = mlplab.load(tmp_path / "lenient")
    encoded = model.preprocessor.transform({"size": np.array([1.5]), "colour": np.array(["purple"], dtype=object),
                                            "weight": np.array([1.0])})
    assert encoded[0, 1:4].tolist() == [0, 0, 0]


def test_parquet_npz_and_explicit_test_file(tmp_path):
    pd = pytest.importorskip("pandas")
    write_mixed_csv(tmp_path / "train.csv", seed=1)
    write_mixed_csv(tmp_path / "test.csv", n=50, seed=2)
    frame = pd.read_csv(tmp_path / "train.csv")
    frame.to_parquet(tmp_path / "train.parquet")
    from_csv = read_table(tmp_path / "train.csv")
    from_parquet = read_table(tmp_path / "train.parquet")
    assert list(from_csv) == list(from_parquet)
    np.testing.assert_allclose(from_csv["size"], from_parquet["size"])
    assert from_csv["colour"].tolist() == from_parquet["colour"].tolist()
    config = mlplab.Config.from_dict({"data": {"path": str(tmp_path / "train.parquet"), "target": "label",
                                               "test_path": str(tmp_path / "test.csv"),
                                               "features": ["size", "colour"]},
                                      "training": {"epochs": 50, "optimizer": "adam"}})
    run = mlplab.train(config, save=False)
    assert len(run.model.preprocessor.features) == 2 and len(run.history) == 50
    assert run.model.meta["data"]["test_path"].endswith("test.csv")


def test_splits_are_seeded_stratified_and_disjoint():
    labels = np.array([0] * 80 + [1] * 20)
    keep, held = split_indices(100, 0.25, labels, np.random.RandomState(0))
    assert len(set(keep) & set(held)) == 0 and len(keep) + len(held) == 100
    assert np.bincount(labels[held]).tolist() == [20, 5]
    again = split_indices(100, 0.25, labels, np.random.RandomState(0))
    assert np.array_equal(held, again[1])


def class_by_class_split(n, fraction, labels, rs):
    """The split as first written: each class's rows scanned one class at a time, np.setdiff1d."""
    held_parts = []
    for label in np.unique(labels):
        members = rs.permutation(np.flatnonzero(labels == label))
        held_parts.append(members[: min(int(round(fraction * len(members))), len(members) - 1)])
    held_out = np.sort(np.concatenate(held_parts))
    return np.setdiff1d(np.arange(n), held_out), held_out


@pytest.mark.parametrize("labels", [np.random.RandomState(1).randint(0, 7, 500), np.array(list("abcab") * 40),
                                    np.random.RandomState(2).randint(0, 2, 33).astype(float)],
                         ids=["int", "str", "float"])
@pytest.mark.parametrize("fraction", [0.2, 0.5])
def test_the_fast_stratified_split_is_the_class_by_class_one(labels, fraction):
    """One stable argsort of the class codes gives the same rows, in the same order, as scanning each
    class (the same permutations are drawn), so a seed splits a file as it always did."""
    fast = split_indices(len(labels), fraction, labels, np.random.RandomState(3))
    reference = class_by_class_split(len(labels), fraction, labels, np.random.RandomState(3))
    for ours, theirs in zip(fast, reference):
        assert np.array_equal(ours, theirs) and ours.dtype == theirs.dtype


def test_scaling_is_fitted_on_training_rows_only(tmp_path):
    rs = np.random.RandomState(0)
    x = rs.normal(loc=[100.0, -5.0], scale=[10.0, 0.1], size=(200, 2))
    np.savez(tmp_path / "d.npz", X=x, y=(x[:, 0] > 100).astype(int))
    config = mlplab.Config.from_dict({"data": {"path": str(tmp_path / "d.npz"), "scale": "standard",
                                               "val_fraction": 0.2}, "training": {"epochs": 5}})
    dataset = mlplab.data.load_dataset(config.validate())
    assert np.abs(dataset.x_train.mean(axis=0)).max() < 1e-5
    assert np.abs(dataset.x_train.std(axis=0) - 1).max() < 1e-4
    assert np.abs(dataset.x_test.mean(axis=0)).max() > 1e-3  # test rows were not used to fit
    run = mlplab.train(config, save=False)
    manual = (x[:3] - run.model.preprocessor.offset) / run.model.preprocessor.divisor
    import torch

    with torch.no_grad():
        expected = torch.sigmoid(run.model.module(torch.tensor(manual, dtype=torch.float32))).squeeze(-1).numpy()
    np.testing.assert_allclose(run.model.predict_proba(x[:3])[:, 1], expected, rtol=1e-6)


def test_integer_and_float_targets():
    from mlplab.preprocess import infer_task

    assert infer_task(np.array([1, 2, 3, 1])) == "multiclass"
    assert infer_task(np.array(["a", "b", "a"], dtype=object)) == "binary"
    assert infer_task(np.array([0.5, 1.25, 3.0])) == "regression"
    assert infer_task(np.array([0.0, 1.0]), "binary") == "binary"


BAD_FILES = {
    "ragged.csv": ("a,b,y\n1,2,0\n3,4\n", "line 3: 2 values but the header names 3 columns"),
    "empty.csv": ("", "the file is empty"),
    "header-only.csv": ("a,b,y\n", "holds no data rows"),
    "inf.csv": ("a,b,y\n1,2,0\n1,inf,1\n3,3,0\n", "column 'b' has an infinite value (line 3)"),
    "stray.csv": ("a,b,y\n1,2,0\n2,4,1\nx,3,0\n", "column 'a' holds numbers but has 'x' at line 4"),
    "all-missing.csv": ("a,b,y\n" + "NA,1,0\nNA,2,1\n" * 5, "column 'a' has no values at all; leave it out "
                        "with --drop a"),
    "one-class.csv": ("a,b,y\n1,2,0\n2,4,0\n3,3,0\n4,1,0\n5,5,0\n", "single class"),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_data_files_one_line_exit_2_nothing_written(cli, tmp_path, monkeypatch, name):
    content, message = BAD_FILES[name]
    monkeypatch.chdir(tmp_path)
    (tmp_path / name).write_text(content)
    code, out, err = cli("train", "--data", name, "--target", "y", "--epochs", "5")
    assert code == 2 and message in err, err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(("args", "message"), [
    (["--target", "nope"], "no target column 'nope'; columns are a, b, y"),
    (["--target", "y", "--features", "a,zzz"], "no column(s) zzz"),
    (["--target", "y", "--task", "regression", "--data", "text.csv"], "target holds text"),
    ([], "--target must name the target column"),
    (["--target", "y", "--data", "missing.csv"], "missing.csv' does not exist"),
])
def test_bad_columns_and_targets(cli, tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d.csv").write_text("a,b,y\n" + "".join(f"{i},{i % 3},{i % 2}\n" for i in range(20)))
    (tmp_path / "text.csv").write_text("a,b,y\n" + "".join(f"{i},{i % 3},{'ab'[i % 2]}\n" for i in range(20)))
    code, _, err = cli("train", "--data", "d.csv", *args, "--epochs", "5")
    assert code == 2 and message in err, err
    assert not (tmp_path / "runs").exists()


def test_predict_features_that_do_not_match_training(cli, tmp_path):
    write_mixed_csv(tmp_path / "train.csv")
    assert cli("train", "--data", tmp_path / "train.csv", "--target", "label", "--out", tmp_path / "run",
               *FAST)[0] == 0
    cases = {
        "names.csv": ("size,color,weight\n1,red,1\n", "lacks the feature column(s) colour"),
        "types.csv": ("size,colour,weight\nbig,red,1\n", "column 'size' must hold numbers but has 'big' at line 2"),
    }
    for name, (content, message) in cases.items():
        (tmp_path / name).write_text(content)
        code, out, err = cli("predict", tmp_path / "run", "--input", tmp_path / name, "--output",
                             tmp_path / "out.csv")
        assert code == 2 and message in err, err
        assert not (tmp_path / "out.csv").exists()
    code, _, err = cli("predict", tmp_path / "run", "--", "1", "2", "3")
    assert code == 2 and "text (categorical) features" in err
    with pytest.raises(mlplab.DataError, match="expected 3 feature"):
        mlplab.load(tmp_path / "run").predict([[1.0, 2.0]])


def test_infinity_at_predict_is_refused_and_nan_imputed(tutorial_run):
    rows = np.array([[0.0, 1.0], [1.0, np.inf], [2.0, 2.0]])
    with pytest.raises(mlplab.DataError, match="column 'x2' has an infinite value \\(row 2\\)"):
        tutorial_run.model.predict(rows)
    median = tutorial_run.model.preprocessor.features[0]["fill"]
    np.testing.assert_array_equal(tutorial_run.model.predict_proba({"x1": [np.nan], "x2": [1.0]}),
                                  tutorial_run.model.predict_proba({"x1": [median], "x2": [1.0]}))
    from mlplab.preprocess import all_finite

    assert all_finite(np.full(4, 1e308))  # the sum overflows although every value is finite
    assert not all_finite(np.array([1.0, np.nan])) and all_finite(np.arange(5))
