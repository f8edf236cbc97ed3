"""The playground's HTTP and WebSocket endpoints, and its static page, on the one mlplab app.

    GET    /playground/                          the page (static files: no build step, no CDN)
    GET    /api/playground/datasets              built-in data sets and the caps
    POST   /api/playground/uploads?name=F        a CSV/Parquet file as the request body
    POST   /api/playground/sessions              settings -> a new session (one per tab)
    PUT    /api/playground/sessions/{id}         new settings: the session starts over
    DELETE /api/playground/sessions/{id}         end it (closing the tab's WebSocket does too)
    WS     /api/playground/sessions/{id}/stream  frames out; play/pause/step/speed/ack in
    POST   /api/playground/sessions/{id}/explain a point of the view, forward and backward (mlplab explain)
    GET    /api/playground/sessions/{id}/run.zip the run folder (checkpoint.pt, model.pt, history.json, ...)
    GET    /api/playground/sessions/{id}/export.py  a plain-PyTorch script reproducing the run
"""

from __future__ import annotations

import io
import json
import tempfile
import zipfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import APIRouter, FastAPI, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field

from ..config import MlplabError
from ..data import GENERATORS
from .errors import HTTPError
from .sessions import Build, SessionManager, build_session
from .settings import MAX_HIDDEN_LAYERS, MAX_POINTS, MAX_UNITS, TOGGLES, PlaygroundSettings
from .uploads import Uploads

__all__ = ["install", "router"]

STATIC = Path(__file__).parent / "static"
router = APIRouter(prefix="/api/playground", tags=["playground"])


def _manager(request: Request | WebSocket) -> SessionManager:
    return request.app.state.playground


def install(app: FastAPI, max_sessions: int = 8) -> None:
    """Add the playground's routes, static files and session manager to ``app``."""
    app.state.playground = SessionManager(max_sessions, Uploads())
    app.include_router(router)
    app.mount("/playground/static", StaticFiles(directory=STATIC), name="playground-static")

    @app.get("/playground", include_in_schema=False)
    def playground_redirect() -> RedirectResponse:
        return RedirectResponse("/playground/")

    @app.get("/playground/", include_in_schema=False)
    def playground_page() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    @app.on_event("shutdown")
    def _stop_sessions() -> None:
        app.state.playground.close_all()
        app.state.playground.uploads.remove_all()


def configure(app: FastAPI, max_sessions: int) -> None:
    """Change the cap on concurrent sessions (``mlplab playground --max-sessions``)."""
    app.state.playground.max_sessions = max_sessions


@router.get("/datasets")
def datasets() -> dict[str, Any]:
    return {"datasets": [{"name": name, "noise": gen.noise, "classes": gen.n_classes, "summary": gen.summary,
                          "regression": name == "linear"} for name, gen in GENERATORS.items()],
            "limits": {"hidden_layers": MAX_HIDDEN_LAYERS, "units": MAX_UNITS, "points": MAX_POINTS},
            "inputs": list(TOGGLES)}


@router.post("/uploads")
async def upload(request: Request, name: str = Query(..., min_length=1, max_length=200)) -> dict[str, Any]:
    uploads = _manager(request).uploads
    declared = int(request.headers.get("content-length") or 0)
    if declared > uploads.max_bytes:  # refused before reading the body
        raise HTTPError(413, f"{name!r} is {declared / 1e6:.1f} MB; the playground takes files up to "
                             f"{uploads.max_bytes / 1e6:.0f} MB")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > uploads.max_bytes:
            raise HTTPError(413, f"{name!r} is over {uploads.max_bytes / 1e6:.0f} MB, the playground's limit")
    stored = uploads.add(name, bytes(body))
    return {"id": stored.id, "name": stored.name, "rows": stored.rows, "columns": stored.summary}


@router.get("/uploads/{upload_id}")
def upload_info(upload_id: str, request: Request) -> dict[str, Any]:
    stored = _manager(request).uploads.get(upload_id)
    return {"id": stored.id, "name": stored.name, "rows": stored.rows, "columns": stored.summary}


@router.post("/sessions", status_code=201)
def create_session(settings: PlaygroundSettings, request: Request) -> dict[str, Any]:
    session = _manager(request).create(settings)
    return {"id": session.id}


@router.put("/sessions/{session_id}")
def update_session(session_id: str, settings: PlaygroundSettings, request: Request) -> dict[str, Any]:
    manager = _manager(request)
    session = manager.get(session_id)
    session.rebuild(build_session(settings, manager.uploads))
    return {"id": session.id}


@router.delete("/sessions/{session_id}", status_code=204)
def delete_session(session_id: str, request: Request) -> Response:
    manager = _manager(request)
    manager.get(session_id)
    manager.close(session_id)
    return Response(status_code=204)


@router.websocket("/sessions/{session_id}/stream")
async def stream(websocket: WebSocket, session_id: str) -> None:
    manager = _manager(websocket)
    session = manager.sessions.get(session_id)
    await websocket.accept()
    if session is None or session.closed:
        await websocket.send_json({"type": "error", "key": "no_session",
                                   "message": f"no playground session {session_id!r}; reload the page"})
        await websocket.close(code=4404)
        return
    session.connected = True
    import asyncio

    async def receive() -> None:
        while True:
            text = await websocket.receive_text()
            try:
                message = json.loads(text)
                if not isinstance(message, dict):
                    raise MlplabError("a command is a JSON object such as {\"type\": \"play\"}")
                session.command(message)
            except (ValueError, MlplabError) as error:
                session.post({"type": "error", "key": "command", "message": str(error)})

    async def send() -> None:
        async for message in session.messages():
            await websocket.send_text(json.dumps(message))

    tasks = [asyncio.create_task(receive()), asyncio.create_task(send())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    except WebSocketDisconnect:
        pass
    finally:
        for task in tasks:
            task.cancel()
        manager.close(session_id)  # the tab closed: its training stops within one epoch


class ExplainRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    u: float = Field(ge=-1e6, le=1e6, description="first plane coordinate of the point")
    v: float = Field(ge=-1e6, le=1e6, description="second plane coordinate")
    label: str | None = Field(None, max_length=100, description="true label (default: the model's prediction)")


@router.post("/sessions/{session_id}/explain")
def explain_point(session_id: str, request_body: ExplainRequest, request: Request) -> dict[str, Any]:
    session = _manager(request).get(session_id)
    return session.call(lambda build: explanation(build, request_body.u, request_body.v, request_body.label))


def trained_model(build: Build):
    from ..inference import TrainedModel

    dataset = build.dataset
    return TrainedModel(build.state.model, dataset.task, dataset.classes, dataset.preprocessor,
                        {"config": build.config.to_dict()})


def explanation(build: Build, u: float, v: float, label: str | None) -> dict[str, Any]:
    """:func:`mlplab.explain.explain` for the point (u, v) of the view, as JSON-able numbers."""
    from ..explain import explain

    model = trained_model(build)
    table = build.plane.lift(np.array([[u, v]]))
    numeric = model.preprocessor.all_numeric and all(
        np.asarray(table[name]).dtype.kind == "f" for name in model.feature_names)
    row = [float(table[name][0]) for name in model.feature_names] if numeric else \
        {name: table[name] for name in model.feature_names}
    e = explain(model, row, label)
    listed = lambda values: np.asarray(values, dtype=np.float64).tolist()  # noqa: E731
    z = e.sums[-1][0]
    if e.task == "binary":
        output = [float(1 / (1 + np.exp(-z[0])))]
    elif e.task == "multiclass":
        shifted = np.exp(z - z.max())
        output = listed(shifted / shifted.sum())
    else:
        output = [float(z[0])]
    return {"input": {name: (float(table[name][0]) if np.asarray(table[name]).dtype.kind == "f"
                             else str(table[name][0])) for name in model.feature_names},
            "inputs": model.preprocessor.column_names, "encoded": listed(e.encoded_input),
            "task": e.task, "activation": e.activation, "label": str(e.label), "label_given": e.label_given,
            "classes": [str(c) for c in model.classes] if model.classes else None,
            "layers": [{"W": listed(w), "b": listed(b), "a_in": listed(a[0]), "z": listed(s[0])}
                       for (w, b), a, s in zip(e.layers, e.inputs, e.sums)],
            "hidden_outputs": [listed(a[0]) for a in e.inputs[1:]],
            "output": output, "loss": e.loss, "output_error": listed(e.output_error[0] if e.output_error.ndim > 1
                                                                      else e.output_error),
            "gradients": [{"W": listed(dw), "b": listed(db)} for dw, db in e.gradients],
            "autograd_difference": e.autograd_difference, "learning_rate": e.learning_rate,
            "epoch": build.state.epoch}


@router.get("/sessions/{session_id}/run.zip")
def download_run(session_id: str, request: Request) -> Response:
    return _download(request, session_id, run_zip, "application/zip", "zip")


def _download(request: Request, session_id: str, make: Any, media_type: str, suffix: str) -> Response:
    """What ``make(build)`` returns for the session, on its training thread, as a file named after the run."""
    session = _manager(request).get(session_id)
    content = session.call(make)
    return Response(content, media_type=media_type,
                    headers={"Content-Disposition": f'attachment; filename="{_run_name(session.build)}.{suffix}"'})


def _run_name(build: Build) -> str:
    base = build.settings.dataset if build.settings.dataset != "upload" else "upload"
    return f"playground-{base}-epoch{build.state.epoch}"


def run_zip(build: Build) -> bytes:
    """The session's run folder, written by the library's own run writer, as zip bytes."""
    from ..run import RunFolderWriter

    config = build.config
    config = replace(config, training=replace(config.training, epochs=max(build.state.epoch, 1)))
    metrics = build.scores()
    with tempfile.TemporaryDirectory(prefix="mlplab-run-") as folder:
        writer = RunFolderWriter(Path(folder), config, build.dataset, None, build.initial_test_loss)
        writer.save(build.state, metrics)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(Path(folder).iterdir()):
                archive.write(path, f"{_run_name(build)}/{path.name}")
    return buffer.getvalue()


@router.get("/sessions/{session_id}/export.py")
def export_script(session_id: str, request: Request) -> Response:
    from .script import python_script

    return _download(request, session_id, python_script, "text/x-python; charset=utf-8", "py")
