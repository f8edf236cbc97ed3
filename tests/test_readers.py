"""The file readers: pyarrow's CSV reader checked against pandas, and one clear error per bad file."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import mlplab
from mlplab.readers import read_header, read_table


def write(tmp_path, name, content, encoding="utf-8"):
    path = tmp_path / name
    path.write_bytes(content.encode(encoding) if isinstance(content, str) else content)
    return path


def test_values_and_types_match_pandas(tmp_path):
    content = ("id,height,colour,count,flag,when\n"
               "1,1.5,red,3,true,2020-01-01\n"
               "2, 2.25 ,blue,,false,2020-01-02\n"
               "3,NA, green ,7,true,2020-01-03\n"
               "\n"
               "4,-1e3,,9,false,2020-01-04\n")
    path = write(tmp_path, "mixed.csv", content)
    ours = read_table(path)
    theirs = pd.read_csv(path, skipinitialspace=True)
    assert list(ours) == list(theirs.columns)
    for name in ("id", "height", "count"):
        np.testing.assert_array_equal(ours[name], theirs[name].to_numpy(dtype=float))
    assert ours["id"].dtype == np.int64 and ours["count"].dtype == np.float64  # a gap makes it float, as pandas
    assert ours["colour"].tolist() == ["red", "blue", "green", None]  # trimmed; missing is None
    assert ours["flag"].tolist() == ["true", "false", "true", "false"]  # text as written
    assert ours["when"].tolist() == ["2020-01-01", "2020-01-02", "2020-01-03", "2020-01-04"]


def test_text_columns_keep_their_digits_and_numeric_columns_insist(tmp_path):
    path = write(tmp_path, "codes.csv", "zip,y\n01234,a\n98765,b\n")
    assert read_table(path, text_columns=["zip"])["zip"].tolist() == ["01234", "98765"]
    assert read_table(path)["zip"].tolist() == [1234, 98765]
    with pytest.raises(mlplab.DataError, match="column 'y' must hold numbers but has 'a' at line 2"):
        read_table(path, numeric_columns=["y"])


def test_stray_word_in_a_numeric_column_names_value_and_line(tmp_path):
    rows = "".join(f"{i},{i % 2}\n" for i in range(10))
    path = write(tmp_path, "typo.csv", "age,y\n" + rows + "\n" + "abc,1\n" + rows)
    with pytest.raises(mlplab.DataError, match=r"column 'age' holds numbers but has 'abc' at line 13; .*"
                                               r"--categorical age"):
        read_table(path)
    assert read_table(path, text_columns=["age"])["age"][10] == "abc"


@pytest.mark.parametrize("header", ["a,a,y", "a,b,a", "y, y,b"])
def test_duplicate_column_names_are_refused(tmp_path, header):
    path = write(tmp_path, "dup.csv", header + "\n1,2,3\n4,5,6\n")
    with pytest.raises(mlplab.DataError, match="appears twice"):
        read_table(path)


def test_latin1_is_refused_with_the_option_to_use_then_read_with_it(tmp_path):
    path = write(tmp_path, "latin.csv", "city,y\nZürich,1\nGenève,0\n", encoding="latin-1")
    with pytest.raises(mlplab.DataError, match="not valid utf-8 in .*line 2.*--encoding latin-1"):
        read_table(path)
    assert read_table(path, encoding="latin-1")["city"].tolist() == ["Zürich", "Genève"]
    with pytest.raises(mlplab.DataError, match="--encoding 'klingon' is not an encoding"):
        read_table(path, encoding="klingon")


def test_integers_beyond_int64_are_read_as_floats(tmp_path):
    path = write(tmp_path, "big.csv", "a,y\n99999999999999999999,1\n2,0\n")
    np.testing.assert_array_equal(read_table(path)["a"], [1e20, 2.0])


def test_missing_values_and_na_tokens(tmp_path):
    path = write(tmp_path, "na.csv", "a,b\n1,x\n,NA\nnull,\" null \"\nNaN,y\n5,N/A\n")
    table = read_table(path)
    np.testing.assert_array_equal(table["a"], [1.0, np.nan, np.nan, np.nan, 5.0])
    assert table["b"].tolist() == ["x", None, None, "y", None]


@pytest.mark.parametrize(("arrays", "message"), [
    ({"X": np.ones((4, 2)), "y": np.ones((4, 2))}, r"y must be 1-D .* got shape \(4, 2\)"),
    ({"X": np.ones((4, 2)) * 1j, "y": np.ones(4)}, "X holds complex numbers"),
    ({"X": np.ones(4), "y": np.ones(4)}, "X must be 2-D"),
    ({"X": np.ones((4, 2))}, "expected a .npz with arrays X and y; it holds X"),
])
def test_bad_npz_files(tmp_path, arrays, message):
    np.savez(tmp_path / "d.npz", **arrays)
    with pytest.raises(mlplab.DataError, match=message):
        read_table(tmp_path / "d.npz")
    if "2-D" in message or "holds X" in message:  # the header alone cannot say: the full read does
        with pytest.raises(mlplab.DataError, match=message):
            read_header(tmp_path / "d.npz")


@pytest.mark.parametrize("save", [np.savez, np.savez_compressed])
def test_npz_header_comes_from_the_x_header_alone(tmp_path, save, monkeypatch):
    save(tmp_path / "d.npz", x=np.ones((3, 4), np.float32), y=np.arange(3))
    expected = list(read_table(tmp_path / "d.npz"))
    monkeypatch.setattr("mlplab.readers.read_table", lambda *args, **kwargs: pytest.fail("read the whole file"))
    assert read_header(tmp_path / "d.npz") == expected == ["x0", "x1", "x2", "x3", "y"]


def test_parquet_duplicates_and_missing(tmp_path):
    pd.DataFrame({"a": [1.0, None, 3.0], "b": ["x", None, "z"]}).to_parquet(tmp_path / "d.parquet")
    table = read_table(tmp_path / "d.parquet")
    np.testing.assert_array_equal(table["a"], [1.0, np.nan, 3.0])
    assert table["b"].tolist() == ["x", None, "z"]


@pytest.mark.parametrize(("name", "content", "message"), [
    ("dup.csv", "a,a,y\n" + "1,2,0\n2,1,1\n" * 5, "the column name 'a' appears twice (columns 1 and 2)"),
    ("latin.csv", ("a,b,y\n" + "1,é,0\n2,ü,1\n" * 5).encode("latin-1"), "--encoding latin-1"),
    ("typo.csv", "a,b,y\n" + "1,2,0\n2,1,1\n" * 5 + "3,x,1\n", "column 'b' holds numbers but has 'x' at line 12"),
    ("big.npz", None, "y must be 1-D"),
])
def test_cli_reports_each_bad_file_in_one_line(cli, tmp_path, monkeypatch, name, content, message):
    monkeypatch.chdir(tmp_path)
    if content is None:
        np.savez(tmp_path / name, X=np.ones((10, 2)), y=np.ones((10, 2)))
    else:
        write(tmp_path, name, content)
    code, _, err = cli("train", "--data", name, "--target", "y", "--epochs", "2")
    assert code == 2 and message in err, err
    assert err.count("\n") == 1 and err.startswith("mlplab: error:")
    assert not (tmp_path / "runs").exists()


def test_encoding_option_reads_latin1(cli, tmp_path):
    write(tmp_path, "latin.csv", "city,n,y\n" + "Zürich,1,0\nGenève,2,1\n" * 10, encoding="latin-1")
    code, out, err = cli("train", "--data", tmp_path / "latin.csv", "--target", "y", "--encoding", "latin-1",
                         "--epochs", "2", "--out", tmp_path / "run")
    assert code == 0, err
    categories = mlplab.load(tmp_path / "run").preprocessor.features[0]["categories"]
    assert categories == ["Genève", "Zürich"]
