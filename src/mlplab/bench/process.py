"""Fresh processes, as users run them: wall time and peak resident memory of one command.

Every user-path benchmark is a script run in its own interpreter (``python -c SOURCE ARGS``): mlplab's
CLI, the estimator's ``fit``, and each peer (the tutorial's script, scikit-learn, a plain pyarrow + torch
script). Peak memory is the child's own ``ru_maxrss`` from ``os.wait4``, not the sum over children.

In the ``tiny`` size (the test suite's smoke run) the same scripts run in this process instead
(``exec`` with ``sys.argv`` set), so checking that every benchmark works costs no interpreter starts.

``MLPLAB_BENCH_SUBJECT=/path/to/src`` makes the mlplab scripts import mlplab from another checkout's
``src`` (the peers are unaffected): that is how the README's "before" figures were measured with this
same benchmark code.
"""

from __future__ import annotations

import contextlib
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Result", "Script", "interleaved", "run_script"]

CLI = "import sys\nfrom mlplab.cli import entry\nsys.argv[0] = 'mlplab'\nentry()\n"


@dataclass
class Script:
    """Python source run as ``python -c source *args`` in ``folder``; ``mlplab`` marks scripts that
    import mlplab (they get ``MLPLAB_BENCH_SUBJECT``); ``env`` adds environment variables."""

    source: str
    args: Sequence[str] = ()
    mlplab: bool = False
    env: dict[str, str] = field(default_factory=dict)


def cli(*args: str, env: dict[str, str] | None = None) -> Script:
    """``mlplab ARGS`` as the console script runs it."""
    return Script(CLI, [str(arg) for arg in args], mlplab=True, env=env or {})


@dataclass
class Result:
    seconds: float
    peak_bytes: int | None  # None in-process: the test process's peak says nothing about the script
    stdout: str


def _environment(script: Script) -> dict[str, str]:
    env = {**os.environ, **script.env}
    subject = os.environ.get("MLPLAB_BENCH_SUBJECT")
    if script.mlplab and subject:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [subject, env.get("PYTHONPATH")]))
    return env


def run_script(script: Script, folder: str | Path, in_process: bool = False) -> Result:
    """Run ``script`` in ``folder``; a failure raises with the script's stderr."""
    if in_process:
        return _in_process(script, Path(folder))
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        process = subprocess.Popen([sys.executable, "-c", script.source, *script.args], cwd=folder,
                                   env=_environment(script), stdout=out, stderr=err)
        _, status, usage = os.wait4(process.pid, 0)  # this child's own peak, not all children's
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if process.returncode:
            raise RuntimeError(f"benchmark script failed ({' '.join(script.args)}): "
                               f"{err.read().decode(errors='replace')[-2000:]}")
        return Result(seconds, usage.ru_maxrss * 1024, out.read().decode(errors="replace"))


def _in_process(script: Script, folder: Path) -> Result:
    saved_argv, saved_cwd = sys.argv, os.getcwd()
    buffer = io.StringIO()
    sys.argv = ["script", *script.args]
    os.chdir(folder)
    started = time.perf_counter()
    try:
        with contextlib.redirect_stdout(buffer):
            source = script.source.replace("entry()", "main()").replace("import entry", "import main")
            exec(compile(source, "<benchmark script>", "exec"), {"__name__": "__main__"})
    except SystemExit as exit_:
        if exit_.code:
            raise RuntimeError(f"benchmark script exited with {exit_.code}") from None
    finally:
        sys.argv = saved_argv
        os.chdir(saved_cwd)
    return Result(time.perf_counter() - started, None, buffer.getvalue())


def interleaved(scripts: dict[str, Script], folder: str | Path, repeats: int, in_process: bool = False,
                warmup: bool = True) -> dict[str, list[Result]]:
    """Run every script ``repeats`` times, round-robin (one of each, then again), so that a change in
    the shared machine's load hits every script alike. One untimed round first warms the file cache."""
    if warmup and not in_process:
        for script in scripts.values():
            run_script(script, folder)
    results: dict[str, list[Result]] = {name: [] for name in scripts}
    for _ in range(repeats):
        for name, script in scripts.items():
            results[name].append(run_script(script, folder, in_process))
    return results


def median_seconds(results: list[Result]) -> float:
    return statistics.median(result.seconds for result in results)


def median_peak(results: list[Result]) -> float | None:
    peaks = [result.peak_bytes for result in results if result.peak_bytes is not None]
    return statistics.median(peaks) if peaks else None
