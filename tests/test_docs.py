"""Every example in the README runs as written, and what the README says it prints is what it prints.

The harness reads README.md's fenced blocks in order and follows them like a reader would, in one temporary
folder holding the small data files the examples name (see ``DATA_FILES``):

- a ``sh`` block: each line starting with ``mlplab `` is run (in-process, through ``mlplab.cli.main``) and
  must exit 0. A comment holding ``-> TEXT`` is a promise: TEXT must appear in what the command printed.
  Any other line (``make``, ``pip`` ...) fails the test unless the block is marked ``docs: skip``.
- a ``python`` block is exec'd; a ``# ... -> TEXT`` comment on a line promises TEXT in the block's output.
- a block marked ``<!-- docs: file NAME -->`` (the line before the fence) is written to NAME, for the
  examples after it to read (e.g. a ``--config`` TOML).
- a block marked ``<!-- docs: output COMMAND -->`` shows COMMAND's output: the command is run and each
  part of the block between ``...`` lines must appear, in order, as consecutive lines of what it printed
  (run folders' time stamps aside).
- a block marked ``<!-- docs: skip REASON -->`` is not run (set-up such as ``make``, long benchmarks, servers).

Any other block fails the test, so a new example cannot go unchecked.
"""

from __future__ import annotations

import contextlib
import doctest
import io
import re
import shlex
import signal
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

import mlplab
from mlplab import config, data, estimator, inference, model, run
from mlplab.cli import main

README = Path(__file__).parents[1] / "README.md"
COMMAND_SECONDS = 600  # a README command still running after this is stuck (a server not marked skip)
MARKER = re.compile(r"<!--\s*docs:\s*(skip|file|output)\b\s*(.*?)\s*-->")
FENCE = re.compile(r"^```([\w-]*)\n(.*?)^```", re.M | re.S)


@dataclass
class Block:
    line: int  # where the fence opens in README.md, for messages
    language: str
    text: str
    marker: str | None
    argument: str


def readme_blocks(text: str) -> list[Block]:
    blocks = []
    for match in FENCE.finditer(text):
        before = text[:match.start()].rstrip().rsplit("\n", 1)[-1]
        marker = MARKER.search(before)
        blocks.append(Block(text.count("\n", 0, match.start()) + 1, match.group(1), match.group(2),
                            marker.group(1) if marker else None, marker.group(2) if marker else ""))
    return blocks


def promise_of(line: str) -> str | None:
    """The TEXT of a ``# ... -> TEXT`` comment: what the line's command promises to print."""
    comment = line.partition("#")[2]
    return comment.partition("->")[2].strip() or None


def commands_of(block: Block) -> list[tuple[str, str | None]]:
    """(command line, promised output or None) per command, continuation lines joined."""
    joined = re.sub(r"\\\n\s*", " ", block.text)
    result = []
    for line in joined.splitlines():
        if not line.strip():
            continue
        command = " ".join(line.partition("#")[0].split())
        if command:
            result.append((command, promise_of(line)))
    return result


def make_data_files(folder: Path) -> None:
    """The user's own files the README's examples name: small, seeded, with a learnable signal."""
    rs = np.random.RandomState(0)

    def houses(path: Path, n: int) -> None:
        area = rs.uniform(40, 200, n)
        rooms = rs.randint(1, 7, n)
        town = rs.choice(["north", "south", "east"], n)
        price = 1500 * area + 8000 * rooms + np.where(town == "north", 40000, 0) + rs.normal(0, 5000, n)
        lines = ["area,rooms,town,price"] + [f"{a:.1f},{r},{t},{p:.1f}" for a, r, t, p in zip(area, rooms, town, price)]
        path.write_text("\n".join(lines) + "\n")

    houses(folder / "houses.csv", 300)
    houses(folder / "new-houses.csv", 60)
    points = rs.uniform(-1.5, 1.5, size=(5, 2))
    (folder / "rows.csv").write_text("x1,x2\n" + "".join(f"{u:.3f},{v:.3f}\n" for u, v in points))


class Stuck(Exception):
    pass


def run_command(command: str) -> str:
    """``mlplab ARGS`` through the CLI's own entry, in-process; returns stdout, fails on a non-zero exit."""
    args = shlex.split(command)
    assert args[0] == "mlplab", command
    stdout, stderr = io.StringIO(), io.StringIO()

    def stuck(signum, frame):
        raise Stuck(f"README command still running after {COMMAND_SECONDS} s: {command} "
                    "(a server? mark its block <!-- docs: skip ... -->)")

    previous = signal.signal(signal.SIGALRM, stuck)
    signal.alarm(COMMAND_SECONDS)
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            try:
                main(args[1:])
                code = 0
            except SystemExit as exit_:
                code = exit_.code or 0
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert code == 0, f"README command failed ({code}): {command}\n{stderr.getvalue()}"
    return stdout.getvalue()


def normalised(text: str) -> list[str]:
    text = re.sub(r"\d{8}-\d{6}(-\d+)?", "<time>", text)  # run folders: runs/xor-blobs-<time>
    return [line.rstrip() for line in text.strip("\n").splitlines()]


def assert_shown(shown: str, printed: str, where: str) -> None:
    lines = normalised(printed)
    position = 0
    chunks: list[list[str]] = [[]]
    for line in normalised(shown):
        if line.strip() == "...":
            chunks.append([])
        else:
            chunks[-1].append(line)
    for chunk in filter(None, chunks):
        for start in range(position, len(lines) - len(chunk) + 1):
            if lines[start:start + len(chunk)] == chunk:
                position = start + len(chunk)
                break
        else:
            raise AssertionError(f"{where}: the README shows\n" + "\n".join(chunk) + "\nbut the command printed\n"
                                 + "\n".join(lines))


def assert_promise(promise: str, printed: str, where: str) -> None:
    squeeze = " ".join
    assert squeeze(promise.split()) in squeeze(printed.split()), \
        f"{where}: the README says it prints {promise!r}; it printed:\n{printed}"


def test_every_readme_example_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "100")  # help text wraps the same everywhere
    make_data_files(tmp_path)
    blocks = readme_blocks(README.read_text())
    checked = 0
    for block in blocks:
        where = f"README.md line {block.line}"
        if block.marker == "skip":
            assert block.argument, f"{where}: say why the example is not run: <!-- docs: skip REASON -->"
            continue
        if block.marker == "file":
            (tmp_path / block.argument).write_text(block.text)
        elif block.marker == "output":
            assert_shown(block.text, run_command(block.argument), where)
        elif block.language == "python":
            printed = io.StringIO()
            with contextlib.redirect_stdout(printed):
                exec(compile(block.text, f"README.md:{block.line}", "exec"), {})
            for promise in filter(None, map(promise_of, block.text.splitlines())):
                assert_promise(promise, printed.getvalue(), where)
        elif block.language == "sh":
            for command, promise in commands_of(block):
                assert command.startswith("mlplab "), (
                    f"{where}: `{command}` is not an mlplab command; run it from the README test or mark the "
                    "block <!-- docs: skip REASON -->")
                printed = run_command(command)
                if promise:
                    assert_promise(promise, printed, f"{where} `{command}`")
        else:
            raise AssertionError(f"{where}: a ```{block.language} block the README test does not run; mark it "
                                 "<!-- docs: file NAME -->, <!-- docs: output COMMAND --> or "
                                 "<!-- docs: skip REASON -->")
        checked += 1
    assert checked >= 8


def test_the_harness_refuses_unchecked_examples(tmp_path):
    text = "Intro\n\n```sh\nmake run\n```\n\n<!-- docs: skip set-up -->\n```sh\nmake test\n```\n\n```\nplain\n```\n"
    blocks = readme_blocks(text)
    assert [(b.language, b.marker) for b in blocks] == [("sh", None), ("sh", "skip"), ("", None)]
    assert commands_of(Block(1, "sh", "mlplab train \\\n   --epochs 5   # note -> Final: x\n# a note\n", None, "")) \
        == [("mlplab train --epochs 5", "Final: x")]
    with pytest.raises(AssertionError, match="the README shows"):
        assert_shown("a\nc", "a\nb\nc\n", "here")
    assert_shown("a\n...\nc", "a\nb\nc\n", "here")


@pytest.mark.parametrize("module", [mlplab, config, data, estimator, inference, model, run], ids=lambda m: m.__name__)
def test_docstring_examples(module, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    failures, tried = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert tried > 0 and failures == 0


def test_public_api_is_explicit():
    """Every public name is listed once, documented, and resolves (lazily) to the object its module
    defines; nothing else is exported by accident."""
    import importlib

    assert len(mlplab.__all__) == len(set(mlplab.__all__))
    assert sorted(dir(mlplab)) == sorted(mlplab.__all__)
    for name in mlplab.__all__:
        value = getattr(mlplab, name)
        if name == "__version__":
            assert isinstance(value, str)
            continue
        assert value.__doc__ and value.__doc__.strip(), f"mlplab.{name} has no docstring"
        home = importlib.import_module(f"mlplab.{mlplab._LOCATIONS[name]}")
        assert getattr(home, name) is value, name
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        mlplab.nope  # noqa: B018
