"""The one FastAPI application: the prediction API, and the playground when asked for.

``create_app`` is the only constructor; ``mlplab serve`` and ``mlplab playground`` both call it, and
tests call it with in-memory models. Every :class:`~mlplab.config.MlplabError` raised by the library
while serving a request becomes one JSON error with a 4xx status (one handler, as the CLI has one line
on stderr), so a client sees the same clear message a CLI user would.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from .. import __version__
from ..config import MlplabError
from .errors import HTTPError, error_status

if TYPE_CHECKING:
    from ..run import TrainedModel

__all__ = ["HTTPError", "Limits", "create_app"]


@dataclass(frozen=True)
class Limits:
    """What one request may ask for; bigger requests get a 413 before any work is done."""

    max_rows: int = 10_000
    max_body_bytes: int = 10 * 1024 * 1024


async def _mlplab_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, MlplabError)
    return JSONResponse({"detail": str(error)}, status_code=error_status(error))


async def _validation_error(request: Request, error: Exception) -> JSONResponse:
    """FastAPI's own validation errors (a path or query parameter, a JSON body) in the same shape as
    ours: one readable ``detail`` line, and the itemised ``errors`` for programs."""
    assert isinstance(error, RequestValidationError)
    items = [{"loc": [str(part) for part in item.get("loc", ())], "msg": str(item.get("msg", ""))}
             for item in error.errors()]
    detail = "; ".join(f"{'.'.join(item['loc'])}: {item['msg']}" for item in items[:5]) or "invalid request"
    return JSONResponse({"detail": detail, "errors": items}, status_code=422)


def create_app(models: dict[str, TrainedModel] | None = None, playground: bool = False,
               limits: Limits | None = None) -> FastAPI:
    """Build the web application.

    Parameters
    ----------
    models : dict of str to TrainedModel, optional
        The models to serve, by name (the name in ``/v1/models/{name}``). Loaded once by the caller;
        a request never loads a file.
    playground : bool
        Also mount the browser playground (``mlplab playground``).
    limits : Limits, optional
        Request size limits (rows per request, body bytes).

    Returns
    -------
    fastapi.FastAPI
    """
    from . import api

    app = FastAPI(title="mlplab", version=__version__,
                  description="Predictions from trained mlplab networks, and the mlplab playground.")
    app.state.models = api.ModelRegistry.from_models(models or {})
    app.state.limits = limits or Limits()
    app.add_exception_handler(MlplabError, _mlplab_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.include_router(api.router)
    if playground:
        from . import playground as playground_module

        playground_module.install(app)  # the playground's router and static files, on this same app
    return app
