"""Start-up of the common commands, fresh processes: ``mlplab --help``, ``mlplab predict RUN -- -1 1``,
``mlplab train --epochs 1`` (SGD and Adam), ``mlplab plot history RUN``.

Each is compared with the floor it cannot beat: the interpreter alone for ``--help``, ``import torch``
for the commands that need the network, and ``import torch, matplotlib.pyplot`` for plots. The note
lists the heavy optional modules the command imported (``python -X importtime``): none of
``torch._dynamo``, scikit-learn, pandas or SciPy is needed on these paths.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile

from . import Row
from .process import CLI, Script, _environment, cli, interleaved, median_seconds

REPEATS = {"tiny": 1, "quick": 3, "full": 5}
HEAVY = ("torch._dynamo", "sklearn", "pandas", "scipy", "pyarrow", "matplotlib")


def imported(script: Script, folder: str) -> list[str]:
    """The HEAVY modules (top of their package) that ``script`` imports, from ``-X importtime``."""
    result = subprocess.run([sys.executable, "-X", "importtime", "-c", script.source, *script.args], cwd=folder,
                            env=_environment(script), capture_output=True, text=True, check=True)
    names = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")}
    return [name for name in HEAVY if name in names]


def run(size: str) -> list[Row]:
    in_process = size == "tiny"
    with tempfile.TemporaryDirectory() as folder:
        interleaved({"run": cli("train", "--epochs", "5", "--out", "run", "--quiet")}, folder, 1, in_process,
                    warmup=False)
        commands = {
            "--help": cli("--help"),
            "predict": cli("predict", "run", "--", "-1", "1"),
            "train": cli("train", "--epochs", "1", "--out", "one", "--force"),
            "train adam": cli("train", "--epochs", "1", "--out", "one", "--force", "--optimizer", "adam"),
        }
        if not in_process:  # matplotlib's import alone would be most of the test suite's smoke run
            commands["plot"] = cli("plot", "history", "run", "--out", "history.png")
        floors = {"pass": Script("pass"), "torch": Script("import torch")}
        if not in_process:
            floors["plots"] = Script("import torch, matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot")
        results = interleaved({**commands, **floors}, folder, REPEATS[size], in_process)
        notes = {name: "" for name in commands}
        if not in_process:
            for name, script in commands.items():
                heavy = imported(script, folder)
                notes[name] = "imports " + ", ".join(heavy) if heavy else "no heavy optional imports"
    seconds = {name: median_seconds(values) for name, values in results.items()}
    rows = [Row("`mlplab --help`", "python -c pass", "s", seconds["pass"], seconds["--help"], note=notes["--help"]),
            Row("`mlplab predict RUN -- -1 1`", "python -c 'import torch'", "s", seconds["torch"], seconds["predict"],
                note=notes["predict"]),
            Row("`mlplab train --epochs 1`", "python -c 'import torch'", "s", seconds["torch"], seconds["train"],
                note=notes["train"]),
            Row("`mlplab train --epochs 1 --optimizer adam`", "python -c 'import torch'", "s", seconds["torch"],
                seconds["train adam"], note=notes["train adam"])]
    if "plot" in seconds:
        rows.append(Row("`mlplab plot history RUN`", "import torch, matplotlib.pyplot", "s", seconds["plots"],
                        seconds["plot"], note=notes["plot"]))
    return rows


__all__ = ["CLI", "imported", "run"]
