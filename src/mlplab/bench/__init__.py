"""Benchmarks: mlplab beside its peers, measured in the same run, printed as a table of ratios.

Each task module has ``run(size) -> list[Row]`` with ``size`` one of ``tiny`` (the test suite's smoke
run), ``quick`` (``mlplab bench --quick``, about a minute) or ``full`` (``make bench``). Timings are
medians of several repetitions after a warm-up. Speed is checked here, never by timed assertions in
tests. scikit-learn is needed for its peers (``pip install 'mlplab[sklearn]'``).
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from importlib import import_module
from pathlib import Path

__all__ = ["TASKS", "Row", "format_table", "median_time", "run"]

TASKS = ("train", "predict", "bigdata", "startup", "threads", "tutorial", "large", "sweep", "distributed", "reader",
         "serve")
SPAWNING = ("distributed", "serve")
"""Tasks that start other processes even at the ``tiny`` size (worker ranks, servers): the test suite's
smoke run leaves them to their own tests (test_distributed.py, test_serve_load.py), which run the same code."""
USER_PATHS = ("train", "predict", "bigdata", "startup", "threads", "reader", "serve")
"""Tasks measured on whole processes, the way users run mlplab: the headline figures. The others
(``tutorial``: ``fit()`` without an evaluation split; ``large``: in-process throughput) time internal
paths and are footnotes."""


@dataclass
class Row:
    """One peer against mlplab on one task. ``better`` says whether a larger value wins (throughput)."""

    task: str
    peer: str
    unit: str
    peer_value: float | None
    mlplab_value: float
    better: str = "lower"
    target: str = ""
    note: str = ""

    @property
    def ratio(self) -> float | None:
        """How many times better mlplab is than the peer (> 1: mlplab wins)."""
        if not self.peer_value:
            return None
        if self.better == "lower":
            return self.peer_value / self.mlplab_value
        return self.mlplab_value / self.peer_value


def median_time(function: Callable[[], object], repeats: int, warmup: int = 1) -> float:
    """Median wall time of ``function()`` in seconds, after ``warmup`` untimed calls."""
    for _ in range(warmup):
        function()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def format_table(rows: list[Row]) -> str:
    header = ["task", "peer", "peer median", "mlplab median", "ratio", "target", "note"]
    lines = [[row.task, row.peer, _fmt(row.peer_value, row.unit), _fmt(row.mlplab_value, row.unit),
              "-" if row.ratio is None else f"{row.ratio:.2f}x", row.target, row.note] for row in rows]
    widths = [max(len(str(line[i])) for line in [header, *lines]) for i in range(len(header))]
    return "\n".join("  ".join(str(cell).ljust(width) for cell, width in zip(line, widths)).rstrip()
                     for line in [header, *lines])


def _fmt(value: float | None, unit: str) -> str:
    return "-" if value is None else f"{value:.3g} {unit}"


def run(size: str = "full", tasks: tuple[str, ...] = TASKS, output: str | Path | None = None,
        echo: Callable[[str], None] = print) -> list[Row]:
    """Run the tasks, print the table (``ratio`` > 1 means mlplab is better) and write JSON if asked."""
    rows: list[Row] = []
    footnotes: list[Row] = []
    from ..threads import thread_limit

    # The smoke run checks that every benchmark works, in one thread: on a busy machine the peers'
    # default threads would make it many times slower (see threads.py).
    with thread_limit(1 if size == "tiny" else None):
        for task in tasks:
            echo(f"running {task} ({size}) ...")
            (rows if task in USER_PATHS else footnotes).extend(import_module(f".{task}", __name__).run(size))
    if rows:
        echo("User paths (fresh processes, medians of interleaved repeats):")
        echo(format_table(rows))
    if footnotes:
        echo("Internal paths (footnotes; not what a user's command costs):")
        echo(format_table(footnotes))
    rows += footnotes
    if output is not None:
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        Path(output).write_text(json.dumps([{**asdict(row), "ratio": row.ratio} for row in rows], indent=2))
        echo(f"results written to {output}")
    return rows
