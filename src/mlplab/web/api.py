"""The prediction API: ``/v1/models``, ``/v1/models/{name}``, ``/v1/models/{name}/predict``, ``/healthz``.

A thin layer: the models are loaded once when the app is made (:class:`ModelRegistry`, handed to the
handlers by dependency injection), rows are checked against the model's features
(:class:`~mlplab.web.rows.RowChecker`) and predictions come from
:meth:`~mlplab.inference.TrainedModel.outputs` / :meth:`~mlplab.inference.TrainedModel.predictions`, the
library's one inference path, so the server answers exactly what ``mlplab predict`` prints.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
from fastapi import APIRouter, Depends, Request, Response
from fastapi import Path as PathParam
from starlette.concurrency import run_in_threadpool

from .app import Limits
from .errors import HTTPError
from .rows import RowChecker
from .schemas import ErrorResponse, Feature, Health, ModelInfo, ModelList, Prediction, PredictRequest

if TYPE_CHECKING:
    from ..inference import TrainedModel

__all__ = ["ModelRegistry", "ServedModel", "router"]

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
INLINE_BYTES = 16 * 1024
"""Prediction requests with a body up to this size are answered on the event loop, bigger ones on a
worker thread: ~100 rows of 20 numbers, well under a millisecond of work."""


@dataclass
class ServedModel:
    """A loaded model with what the API needs: its description and its row checker, made once."""

    name: str
    model: TrainedModel
    info: ModelInfo
    rows: RowChecker

    @classmethod
    def build(cls, name: str, model: TrainedModel) -> ServedModel:
        meta = model.meta
        features = [Feature(name=f["name"], type=f["kind"], categories=f.get("categories"))
                    for f in model.preprocessor.features]
        info = ModelInfo(name=name, task=model.task, features=features, classes=model.classes,
                         architecture=dict(meta.get("architecture") or {}), metrics=dict(meta.get("metrics") or {}),
                         config=dict(meta.get("config") or {}), created=meta.get("created"),
                         mlplab_version=meta.get("mlplab_version"))
        return cls(name, model, info, RowChecker(model.preprocessor))

    def predict(self, table: dict[str, np.ndarray] | np.ndarray) -> Prediction:
        """One forward pass through the library's inference path; labels as the training data had them."""
        model = self.model
        outputs = model.outputs(table)
        labels = model.predictions(outputs)
        if model.task == "regression":
            return Prediction(model=self.name, task="regression", predictions=labels.tolist())
        return Prediction(model=self.name, task=model.task, predictions=labels.tolist(), classes=model.classes,
                          probabilities=outputs.class_probabilities.tolist())


class ModelRegistry:
    """The served models by name. A name is only ever a key here: it never becomes a path."""

    def __init__(self, models: dict[str, ServedModel]):
        self.models = models

    @classmethod
    def from_models(cls, models: dict[str, TrainedModel]) -> ModelRegistry:
        for name in models:
            check_name(name)
        return cls({name: ServedModel.build(name, model) for name, model in models.items()})

    def get(self, name: str) -> ServedModel:
        served = self.models.get(name)
        if served is None:
            shown = name if len(name) <= 64 else name[:61] + "..."
            raise HTTPError(404, f"no model named {shown!r} is served; served: {', '.join(self.models) or 'none'}")
        return served


def check_name(name: str) -> str:
    """A model name: letters, digits, '.', '_' and '-', at most 64, starting with a letter or digit."""
    from ..config import MlplabError

    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise MlplabError(f"model name {name!r} is not allowed: use letters, digits, '.', '_' and '-' "
                          "(at most 64, starting with a letter or digit)")
    return name


# --- dependencies ---------------------------------------------------------------------------------------

# Every dependency is ``async``: FastAPI runs a plain ``def`` one on a worker thread, and each hop to a
# thread cost more than the whole forward pass of a small request (see mlplab.bench.serve).

async def get_registry(request: Request) -> ModelRegistry:
    return request.app.state.models


async def get_limits(request: Request) -> Limits:
    return request.app.state.limits


Registry = Annotated[ModelRegistry, Depends(get_registry)]
RequestLimits = Annotated[Limits, Depends(get_limits)]
ModelName = Annotated[str, PathParam(description="the model's name (see GET /v1/models)")]


async def get_model(name: ModelName, registry: Registry) -> ServedModel:
    return registry.get(name)


Served = Annotated[ServedModel, Depends(get_model)]


async def read_body(request: Request, limits: RequestLimits) -> bytes:
    """The request body, refused with a 413 as soon as it is over the limit (before it is all read)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limits.max_body_bytes:
        raise HTTPError(413, f"the body is {int(declared)} bytes; the limit is {limits.max_body_bytes} "
                             "(mlplab serve --max-body)")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limits.max_body_bytes:
            raise HTTPError(413, f"the body is over the limit of {limits.max_body_bytes} bytes "
                                 "(mlplab serve --max-body)")
        chunks.append(chunk)
    return b"".join(chunks)


def content_kind(request: Request) -> str:
    """The body's media type, refused with a 415 unless it is JSON or CSV."""
    kind = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if kind not in ("application/json", "text/csv", "application/csv"):
        raise HTTPError(415, f"content type {kind[:60]!r} is not understood; send application/json or text/csv")
    return kind


def read_rows(kind: str, body: bytes, served: ServedModel, limits: Limits) -> dict[str, np.ndarray] | np.ndarray:
    """The rows of a JSON or CSV body, checked against the model's features (see RowChecker.table)."""
    if kind == "application/json":
        return served.rows.from_json(body, limits.max_rows)
    return served.rows.from_csv(body, limits.max_rows)


def answer(kind: str, body: bytes, served: ServedModel, limits: Limits) -> Response:
    """Check the rows, predict, and write the JSON answer (checked against :class:`Prediction` as it is
    built, so FastAPI need not check it a second time)."""
    prediction = served.predict(read_rows(kind, body, served, limits))
    return Response(prediction.model_dump_json(), media_type="application/json")


# --- routes ---------------------------------------------------------------------------------------------

ERRORS: dict[int | str, dict[str, Any]] = {status: {"model": ErrorResponse, "description": text} for status, text in (
    (404, "no model of that name is served"), (413, "too many rows, or a body over the size limit"),
    (415, "a body that is neither JSON nor CSV"), (422, "rows that do not fit the model's features"))}

_REQUEST_BODY = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": PredictRequest.model_json_schema()},
    "text/csv": {"schema": {"type": "string"},
                 "example": "x1,x2\n-1.0,1.0\n1.0,1.0\n"}}}}

router = APIRouter()


@router.get("/healthz", response_model=Health, tags=["health"])
def healthz(registry: Registry) -> Health:
    """The server is up and its models are loaded."""
    return Health(models=list(registry.models))


@router.get("/v1/models", response_model=ModelList, tags=["models"])
def list_models(registry: Registry) -> ModelList:
    """Every served model, described as ``GET /v1/models/{name}`` does."""
    return ModelList(models=[served.info for served in registry.models.values()])


@router.get("/v1/models/{name}", response_model=ModelInfo, responses={404: ERRORS[404], 422: ERRORS[422]},
            tags=["models"])
def describe_model(served: Served) -> ModelInfo:
    """The model's features (names, types, categories, in order), task, classes, metrics and config."""
    return served.info


@router.post("/v1/models/{name}/predict", response_model=Prediction, responses=ERRORS, tags=["models"],
             openapi_extra=_REQUEST_BODY)
async def predict(request: Request, name: ModelName) -> Response:
    """Predict rows sent as JSON (``{"rows": [...]}``) or as CSV with a header of feature names
    (``Content-Type: text/csv``). Classification answers each row's label and class probabilities;
    regression its value."""
    # The lookups the other routes get by dependency injection, done here directly: solving a tree of
    # dependencies per request cost about as much as a single-row prediction itself.
    served, limits = request.app.state.models.get(name), request.app.state.limits
    body = await read_body(request, limits)
    kind = content_kind(request)
    # A small request is answered on the event loop: a hop to a worker thread would cost more than the
    # work. A big one goes to a thread (torch and NumPy release the GIL), so other requests go on.
    if len(body) <= INLINE_BYTES:
        return answer(kind, body, served, limits)
    return await run_in_threadpool(answer, kind, body, served, limits)
