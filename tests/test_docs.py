"""The README's Python example and the docstring examples run as written."""

import doctest
import re
from pathlib import Path

import pytest

import mlplab
from mlplab import config, data, estimator, inference, model, run

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


@pytest.mark.parametrize("module", [mlplab, config, data, estimator, inference, model, run], ids=lambda m: m.__name__)
def test_docstring_examples(module, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    failures, tried = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert tried > 0 and failures == 0


def test_public_api_is_explicit():
    """Each public name is listed once, resolves to the object its module defines and lists in that
    module's own __all__; dir() shows exactly the public names, and an unknown name is an AttributeError."""
    import importlib

    names = [name for name in mlplab.__all__ if name != "__version__"]
    assert len(set(mlplab.__all__)) == len(mlplab.__all__)
    assert dir(mlplab) == sorted(mlplab.__all__)
    for name in names:
        module = importlib.import_module(f"mlplab.{mlplab._LOCATIONS[name]}")
        assert getattr(mlplab, name) is getattr(module, name), name
        assert name in module.__all__, f"{name} is not in {module.__name__}.__all__"
    with pytest.raises(AttributeError, match="no_such_name"):
        mlplab.no_such_name  # noqa: B018


def test_layering_config_needs_no_torch_and_commands_do_not_import_the_cli():
    """Validating a config (activation names included) imports no torch, and commands.py (what each
    command does) does not import cli.py (the parser): the library sits below both."""
    import subprocess
    import sys

    code = ("import sys; from mlplab.config import Config; "
            "Config.from_dict({'model': {'activation': 'tanh'}}).validate(); import mlplab.commands; "
            "print('torch' in sys.modules, 'mlplab.cli' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.split() == ["False", "False"], result.stderr


def test_activation_names_are_listed_once():
    from mlplab.backprop import ACTIVATION_FUNCTIONS

    assert tuple(model.ACTIVATIONS) == config.ACTIVATION_NAMES
    assert tuple(ACTIVATION_FUNCTIONS) == config.ACTIVATION_NAMES
