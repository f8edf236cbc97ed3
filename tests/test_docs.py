"""The README's Python example and the docstring examples run as written."""

import doctest
import re
from pathlib import Path

import pytest

import mlplab
from mlplab import config, data, estimator, model, run

README = Path(__file__).parents[1] / "README.md"


def test_readme_python_examples_run(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    first, *others = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    exec(compile(first, "README.md", "exec"), {})
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == "1.0"
    assert printed[-1] == "[1 0]"
    for block in others:
        exec(compile(block, "README.md", "exec"), {})
    assert (tmp_path / "wine.pt").is_file()


@pytest.mark.parametrize("module", [mlplab, config, data, estimator, model, run], ids=lambda m: m.__name__)
def test_docstring_examples(module, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    failures, tried = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert tried > 0 and failures == 0


def test_public_api_is_explicit():
    assert sorted(mlplab.__all__) == sorted(set(mlplab.__all__))
    for name in mlplab.__all__:
        assert getattr(mlplab, name) is not None
    assert callable(mlplab.train) and callable(mlplab.load)
