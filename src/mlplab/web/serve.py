"""``mlplab serve``: load run folders once, then serve them with uvicorn.

Models are loaded from the paths given on the command line before the server starts (a bad run is a
one-line error, not a server that answers 500s). Each is served under a name: the run folder's name,
or ``NAME=RUN`` to choose one. With ``--workers N`` uvicorn starts N processes; each rebuilds the app
through :func:`app_from_environment` from the same list of runs, passed in an environment variable.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from ..config import MlplabError
from . import require_web

if TYPE_CHECKING:
    from fastapi import FastAPI

    from ..run import TrainedModel
    from .app import Limits

__all__ = ["app_from_environment", "inference_threads", "load_models", "parse_runs", "serve"]

ENVIRONMENT = "MLPLAB_SERVE"


def parse_runs(specs: list[str]) -> dict[str, Path]:
    """``RUN`` or ``NAME=RUN`` -> {name: path}. An existing path is always a path (it may hold '=')."""
    from .api import check_name

    runs: dict[str, Path] = {}
    for spec in specs:
        if "=" in spec and not Path(spec).exists():
            name, _, path = spec.partition("=")
        else:
            path = spec
            folder = Path(spec) if Path(spec).is_dir() else Path(spec).resolve().parent
            name = folder.resolve().name
        check_name(name)
        if name in runs:
            raise MlplabError(f"two runs would be served as {name!r}; name them: mlplab serve NAME=RUN ...")
        runs[name] = Path(path)
    if not runs:
        raise MlplabError("give at least one run folder to serve")
    return runs


def load_models(runs: dict[str, Path]) -> dict[str, TrainedModel]:
    """Load every run once (each may raise a CheckpointError naming its path)."""
    from ..run import load

    return {name: load(path) for name, path in runs.items()}


def inference_threads(models: dict[str, TrainedModel], max_rows: int) -> int | None:
    """torch's threads for the server, by mlplab's rule (:mod:`mlplab.threads`) for the largest request
    any served model may get. A tiny network's forward pass is far too small to split: with torch's
    default of one thread per core, each request waited for threads a busy machine had not scheduled
    (a 1,000-row request of a 20-64-64-1 network: 0.3 ms with one thread, 13 ms with two on 2 shared
    cores). Requests run side by side on the server's own threads instead. None: the environment
    (``OMP_NUM_THREADS``) chose, and torch's setting is left alone."""
    from ..threads import choose_threads

    chosen = [choose_threads(model.module.sizes, max_rows, backward=False) for model in models.values()]
    return None if not chosen or None in chosen else max(chosen)


def _set_threads(models: dict[str, TrainedModel], max_rows: int) -> None:
    threads = inference_threads(models, max_rows)
    if threads is not None:
        import torch

        torch.set_num_threads(threads)


def app_from_environment() -> FastAPI:
    """The app for one uvicorn worker process (``--workers``), built from :data:`ENVIRONMENT`."""
    from .app import Limits, create_app

    settings = json.loads(os.environ[ENVIRONMENT])
    runs = {name: Path(path) for name, path in settings["runs"].items()}
    models, limits = load_models(runs), Limits(**settings["limits"])
    _set_threads(models, limits.max_rows)
    return create_app(models, limits=limits)


def serve(specs: list[str], *, host: str = "127.0.0.1", port: int = 8000, workers: int = 1,
          limits: Limits | None = None, log_level: str = "info") -> None:
    """Load the runs, then serve them until interrupted (blocking)."""
    require_web()
    import uvicorn

    from .app import Limits, create_app

    if not 0 <= port <= 65535:
        raise MlplabError(f"--port must be 0 to 65535, got {port}")
    if workers < 1:
        raise MlplabError(f"--workers must be >= 1, got {workers}")
    limits = limits or Limits()
    if limits.max_rows < 1 or limits.max_body_bytes < 1:
        raise MlplabError("--max-rows and --max-body must be >= 1")
    runs = parse_runs(specs)
    models = load_models(runs)  # fail here, once, with a clear message: before any port is opened
    if workers == 1:
        _set_threads(models, limits.max_rows)
        uvicorn.run(create_app(models, limits=limits), host=host, port=port, log_level=log_level)
        return
    os.environ[ENVIRONMENT] = json.dumps({"runs": {name: str(path.resolve()) for name, path in runs.items()},
                                          "limits": {"max_rows": limits.max_rows,
                                                     "max_body_bytes": limits.max_body_bytes}})
    uvicorn.run("mlplab.web.serve:app_from_environment", factory=True, host=host, port=port, workers=workers,
                log_level=log_level)
