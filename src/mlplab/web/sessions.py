"""Playground sessions: one per browser tab, each training in its own thread through mlplab's ``fit``.

A session's thread runs :func:`mlplab.training.fit` (the NumPy fast path included) with one callback,
:class:`Stream`, that after every ``speed`` epochs renders a frame and hands it to the tab's WebSocket,
then waits for the page to say it has drawn it (so frames never pile up and training never runs ahead
of what is shown). The same callback parks the loop while paused, runs the requests that need the
model (explain, download, export) between two epochs, and ends ``fit`` when the tab closes or the
settings change, within one epoch.

Everything that touches the model happens on the session's own thread, so nothing races with training.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from ..backprop import forward
from ..config import Config, MlplabError
from ..data import Dataset, build_dataset, generate
from ..data import _read_files as read_split_files
from ..metrics import task_loss
from ..model import MLP
from ..preprocess import TargetEncoder, infer_task
from ..training import Callback, TrainingDiverged, TrainingState, fit, score_split
from .errors import HTTPError
from .frames import Plane, Renderer, extent_of
from .settings import PlaygroundSettings
from .uploads import Uploads

__all__ = ["Build", "Session", "SessionManager", "build_session"]

_SEEDING = threading.Lock()  # torch's global RNG draws the initial weights: one session at a time
CONNECT_WITHIN_S = 30.0  # a session no page connects to in this time is dropped


@dataclass
class Build:
    """Everything one settings object makes: data, plane, model, training state."""

    settings: PlaygroundSettings
    config: Config
    dataset: Dataset
    raw: dict[str, Any]  # raw train/test tables and targets, for the points drawn on the view
    plane: Plane
    extent: list[float]
    renderer: Renderer
    state: TrainingState
    tensors: dict[str, tuple[torch.Tensor, torch.Tensor]]
    initial_test_loss: float

    @property
    def n_classes(self) -> int | None:
        return len(self.dataset.classes) if self.dataset.classes else None

    def layers(self) -> list[tuple[np.ndarray, np.ndarray]]:
        return [(layer.weight.detach().double().numpy().copy(), layer.bias.detach().double().numpy().copy())
                for layer in self.state.model.linears]

    def watch_weights(self) -> None:
        """NumPy views of the current weight tensors, taken once ``fit`` has set its step up (the fast
        path moves the parameters into one buffer then; both paths update them in place afterwards)."""
        self.views = [(layer.weight.detach().numpy(), layer.bias.detach().numpy())
                      for layer in self.state.model.linears]
        x, y = self.tensors["test"]
        self.test_arrays = (x.numpy(), y.numpy(), y.numpy() >= 0.5)

    def record_test(self, record: dict[str, Any]) -> None:
        """Add the test loss and accuracy (R² for regression) to one epoch's record: a NumPy forward pass
        over the few test rows (no dropout, as in eval mode), cheap enough for every epoch; torch's
        per-call overhead would cost more than the fast path's whole epoch. The full metrics of
        ``score_split`` are computed for the frames only."""
        x, target, positive = self.test_arrays
        logits = forward(self.views, x, self.state.model.activation_name).sums[-1]
        task = self.dataset.task
        record["test_loss"] = task_loss(logits, target, task)
        if task == "binary":
            record["test_accuracy"] = np.count_nonzero((logits[:, 0] >= 0) == positive) / len(target)
        elif task == "multiclass":
            record["test_accuracy"] = np.count_nonzero(logits.argmax(axis=1) == target) / len(target)
        else:
            spread = float(((target - target.mean()) ** 2).sum()) or 1.0
            record["test_r2"] = 1.0 - float(((logits[:, 0] - target) ** 2).sum()) / spread

    def scores(self) -> dict[str, dict[str, float]]:
        return {name: score_split(self.state.model, x, y, self.dataset.task, self.n_classes)
                for name, (x, y) in self.tensors.items()}


def _generated(settings: PlaygroundSettings, config: Config):
    """A built-in data set with the page's removed points taken out and drawn points added to training."""
    data = config.data
    x_train, y_train, x_test, y_test = generate(data.dataset, data.n_train, data.n_test, data.noise,
                                                data.n_classes, config.seed)
    source: dict[str, Any] = {"name": data.dataset, "target": "y"}
    # where each point came from (the page removes points by it): generated index, or -1 - k for drawn point k
    index_train, index_test = np.arange(len(x_train)), np.arange(len(x_test)) + len(x_train)
    if settings.removed or settings.added:
        removed = set(settings.removed)
        n_train = len(x_train)
        keep_train = [i for i in range(n_train) if i not in removed]
        keep_test = [i for i in range(len(x_test)) if i + n_train not in removed]
        x_train, y_train = x_train[keep_train], y_train[keep_train]
        x_test, y_test = x_test[keep_test], y_test[keep_test]
        index_train, index_test = index_train[keep_train], index_test[keep_test]
        if settings.added:
            if y_train.dtype.kind == "f":
                raise HTTPError(400, "points can be drawn on classification data only; this data set is regression")
            x_train = np.concatenate([x_train, [[p.u, p.v] for p in settings.added]])
            y_train = np.concatenate([y_train, [p.label for p in settings.added]])
            index_train = np.concatenate([index_train, -1 - np.arange(len(settings.added))])
        source.update(removed=len(removed), drawn=len(settings.added),
                      name=f"{data.dataset} (edited: {len(removed)} removed, {len(settings.added)} drawn)")
        if len(y_train) < 2 or len(y_test) < 1:
            raise HTTPError(400, "too few points are left to train and test on; regenerate the data")
    columns = ("x1", "x2")
    table = lambda x: {name: x[:, i].copy() for i, name in enumerate(columns)}  # noqa: E731
    return table(x_train), y_train, table(x_test), y_test, source, (index_train, index_test)


def build_session(settings: PlaygroundSettings, uploads: Uploads) -> Build:
    """Validate ``settings`` and make the data, model and training state they describe."""
    if settings.dataset == "upload":
        upload = uploads.get(settings.upload)
        if settings.target is None or settings.draw is None:
            raise HTTPError(400, "an uploaded file needs a target column and two columns to draw")
        features = [name for name in upload.columns if name != settings.target]
        config = settings.to_config(str(upload.path), features)
        train, y_train, test, y_test, source = read_split_files(config.data, config.seed, config.model.task)
        source["name"] = upload.name
        indices = (np.arange(len(y_train)), np.arange(len(y_test)) + len(y_train))
        axes = tuple(settings.draw)
    else:
        config = settings.to_config()
        train, y_train, test, y_test, source, indices = _generated(settings, config)
        axes = ("x1", "x2")
    task = infer_task(y_train, config.model.task)
    dataset = build_dataset(config, train, y_train, test, y_test, source, TargetEncoder.fit(y_train, task))
    plane = Plane(train, axes, pca=settings.view == "pca" and settings.use_all)
    extent = extent_of(np.concatenate([plane.project(train), plane.project(test)]))
    n_outputs = len(dataset.classes) if dataset.task == "multiclass" else 1
    with _SEEDING, torch.random.fork_rng():
        torch.manual_seed(config.seed)  # as `mlplab train` does: the same seed, the same initial weights
        module = MLP(dataset.preprocessor.n_inputs, config.model.hidden_sizes, n_outputs,
                     config.model.activation, config.model.dropout, config.model.init, config.model.dtype)
    from ..run import new_training_state

    state = new_training_state(module, config)
    state.generator.manual_seed(config.seed)
    tensors = {"train": _tensors(dataset.x_train, dataset.y_train), "test": _tensors(dataset.x_test, dataset.y_test)}
    renderer = Renderer(plane, extent, dataset.preprocessor, dataset.task, config.model.activation, module.sizes)
    initial = score_split(module, *tensors["test"], dataset.task, len(dataset.classes or []) or None)["loss"]
    raw = {"train": train, "y_train": y_train, "test": test, "y_test": y_test, "index_train": indices[0],
           "index_test": indices[1]}
    return Build(settings, config, dataset, raw, plane, extent, renderer, state, tensors, initial)


def _tensors(x: np.ndarray, y: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    x_tensor, y_tensor = torch.from_numpy(x.copy()), torch.from_numpy(y.copy())
    return x_tensor, y_tensor.to(x_tensor.dtype) if y_tensor.is_floating_point() else y_tensor


class Stream(Callback):
    """The callback that connects ``fit`` to the page (see the module docstring)."""

    reads_scores_every_epoch = False

    def __init__(self, session: Session):
        self.session, self.since_frame, self.watching = session, 0, False

    def on_train_begin(self, state: TrainingState) -> None:
        self.since_frame, self.watching = 0, False
        self.session.park(state)

    def on_epoch_end(self, state: TrainingState) -> None:
        session = self.session
        if not self.watching:  # fit chooses its step after on_train_begin; the fast path moves the weights then
            session.build.watch_weights()
            self.watching = True
        session.build.record_test(state.history[-1])
        self.since_frame += 1
        session.run_tasks()
        # a frame every `speed` epochs, after a step, and at once when paused mid-frame (so the page
        # shows the weights that explain and download will use)
        if session.stepping or self.since_frame >= session.speed or not session.playing:
            session.stepping = False
            self.since_frame = 0
            session.send_frame()
        session.park(state)


class Session:
    """One tab's training. Commands arrive from the WebSocket (:meth:`command`) and HTTP requests
    (:meth:`call`); frames leave through :meth:`messages`."""

    def __init__(self, build: Build):
        self.id = secrets.token_hex(8)
        self.build = build
        self.created = time.monotonic()
        self.connected = False
        self.closed = False
        self.playing = False
        self.stepping = False
        self.speed = 1
        self.acked = True
        self.next_build: Build | None = None
        self.condition = threading.Condition()
        self.tasks: collections.deque[tuple[Callable[[Build], Any], Future]] = collections.deque()
        self.outbox: collections.deque[dict[str, Any]] = collections.deque()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.wake: asyncio.Event | None = None
        self.frames_sent = 0
        self.thread = threading.Thread(target=self._train, name=f"playground-{self.id}", daemon=True)
        self.thread.start()

    # --- the training thread ------------------------------------------------------------------------

    def _train(self) -> None:
        from ..run import training_step

        self.send_data()
        while not self.closed:
            build = self.build
            training = replace(build.config.training, epochs=10**9)  # until paused, reset or closed
            try:
                # The test scores are added by the callback (see Build.record_test), not by fit's eval_set.
                fit(build.state, *build.tensors["train"], training, build.dataset.task, n_classes=build.n_classes,
                    callbacks=[Stream(self)],
                    step=training_step(build.state, build.config, build.dataset.task, *build.tensors["train"]))
            except TrainingDiverged as error:
                self.playing = False
                self.post({"type": "error", "key": "diverged", "message": str(error)})
                build.state.stop_reason = None
                self.park(build.state, wait_for_reset=True)
            except Exception as error:  # a bug must not kill the server: say it on the page
                self.playing = False
                self.post({"type": "error", "key": "internal", "message": f"training failed: {error}"})
                self.park(build.state, wait_for_reset=True)
            with self.condition:
                if self.next_build is not None:
                    self.build, self.next_build = self.next_build, None
                    self.playing = self.stepping = False
                    self.send_data()

    def park(self, state: TrainingState, wait_for_reset: bool = False) -> None:
        """Wait (running requested tasks) until there is something to train, or end ``fit``."""
        with self.condition:
            while True:
                self.run_tasks()
                if self.closed or self.next_build is not None:
                    state.stop_reason = "stopped by the page"
                    return
                if not wait_for_reset and (self.stepping or (self.playing and self.acked)):
                    return
                self.condition.wait(0.25)

    def run_tasks(self) -> None:
        while self.tasks:
            task, future = self.tasks.popleft()
            model = self.build.state.model
            was_training = model.training
            try:
                future.set_result(task(self.build))
            except BaseException as error:  # handed to the waiting request
                future.set_exception(error)
            finally:
                model.train(was_training)

    def send_data(self) -> None:
        """The data points and what they mean, then the first frame: sent after every (re)build."""
        build = self.build
        points = {}
        for split in ("train", "test"):
            xy = build.plane.project(build.raw[split])
            labels = build.raw["y_" + split]
            codes = build.dataset.target.encode(labels) if build.dataset.task != "regression" else labels
            points[split] = {"u": np.round(xy[:, 0], 5).tolist(), "v": np.round(xy[:, 1], 5).tolist(),
                             "label": np.asarray(codes, dtype=np.float64).round(5).tolist(),
                             "index": build.raw["index_" + split].tolist()}
        model = build.state.model
        self.post({"type": "data", "task": build.dataset.task,
                   "classes": [str(c) for c in build.dataset.classes] if build.dataset.classes else None,
                   "axes": build.plane.names, "extent": build.extent, "points": points,
                   "inputs": build.dataset.preprocessor.column_names, "sizes": model.sizes,
                   "activation": model.activation_name, "source": build.dataset.source.get("name"),
                   "initial_test_loss": build.initial_test_loss})
        self.send_frame()

    def send_frame(self) -> None:
        build = self.build
        state = build.state
        if state.history:
            record = dict(state.history[-1])
        else:
            scores = build.scores()
            record = {"epoch": 0, **{f"{split}_{key}": value for split, values in scores.items()
                                     for key, value in values.items()}}
        message = {"type": "frame", "epoch": state.epoch, "metrics": _finite(record),
                   "playing": self.playing, **build.renderer.frame(build.layers())}
        self.acked = False
        self.frames_sent += 1
        self.post(message)

    # --- talking to the page ------------------------------------------------------------------------

    def post(self, message: dict[str, Any]) -> None:
        self.outbox.append(message)
        loop, wake = self.loop, self.wake
        if loop is not None and wake is not None:
            with contextlib.suppress(RuntimeError):  # the loop has closed: the tab is gone
                loop.call_soon_threadsafe(wake.set)

    async def messages(self):
        """Yield the messages for the page as they come (the WebSocket handler's loop)."""
        self.loop, self.wake = asyncio.get_running_loop(), asyncio.Event()
        while not self.closed:
            while self.outbox:
                yield self.outbox.popleft()
            self.wake.clear()
            if not self.outbox:
                await self.wake.wait()

    def command(self, message: dict[str, Any]) -> None:
        """play, pause, step, speed, ack: from the page's WebSocket."""
        kind = message.get("type")
        with self.condition:
            if kind == "ack":
                self.acked = True
            elif kind == "play":  # pressing play is also a go-ahead: a lost ack must not stall training
                self.playing = self.acked = True
            elif kind == "pause":
                self.playing = False
            elif kind == "step":
                self.playing, self.stepping = False, True
            elif kind == "speed":
                speed = message.get("value")
                if not isinstance(speed, int) or not 1 <= speed <= 10_000:
                    raise MlplabError("speed must be a whole number of epochs per frame from 1 to 10000")
                self.speed = speed
            else:
                raise MlplabError(f"unknown command {kind!r}; known: play, pause, step, speed, ack")
            self.condition.notify_all()

    def rebuild(self, build: Build) -> None:
        """New settings (or reset): the training thread ends ``fit`` and starts over with ``build``."""
        with self.condition:
            self.next_build = build
            self.condition.notify_all()

    def call(self, task: Callable[[Build], Any], timeout: float = 30.0) -> Any:
        """Run ``task(build)`` on the training thread between two epochs; return its result."""
        future: Future = Future()
        with self.condition:
            if self.closed:
                raise HTTPError(410, "this playground session has ended; reload the page")
            self.tasks.append((task, future))
            self.condition.notify_all()
        return future.result(timeout)

    def close(self) -> None:
        with self.condition:
            self.closed = True
            self.condition.notify_all()
        if self.wake is not None and self.loop is not None:
            with contextlib.suppress(RuntimeError):
                self.loop.call_soon_threadsafe(self.wake.set)


def _finite(values: dict[str, Any]) -> dict[str, Any]:
    return {key: (value if not isinstance(value, float) or np.isfinite(value) else None)
            for key, value in values.items()}


class SessionManager:
    """The open sessions, capped at ``max_sessions`` (a clear 429 beyond)."""

    def __init__(self, max_sessions: int = 8, uploads: Uploads | None = None):
        self.max_sessions = max_sessions
        self.uploads = uploads or Uploads()
        self.sessions: dict[str, Session] = {}
        self.lock = threading.Lock()

    def create(self, settings: PlaygroundSettings) -> Session:
        self._drop_unconnected()
        with self.lock:
            if len(self.sessions) >= self.max_sessions:
                raise HTTPError(429, f"{len(self.sessions)} playground sessions are open, the most this server "
                                     "allows; close another tab (or wait a moment) and reload")
        session = Session(build_session(settings, self.uploads))
        with self.lock:
            self.sessions[session.id] = session
        return session

    def get(self, session_id: str) -> Session:
        session = self.sessions.get(session_id)
        if session is None or session.closed:
            raise HTTPError(404, f"no playground session {session_id!r} (it ended when its tab closed); "
                                 "reload the page")
        return session

    def close(self, session_id: str) -> None:
        with self.lock:
            session = self.sessions.pop(session_id, None)
        if session is not None:
            session.close()

    def close_all(self) -> None:
        for session_id in list(self.sessions):
            self.close(session_id)

    def _drop_unconnected(self) -> None:
        now = time.monotonic()
        for session_id, session in list(self.sessions.items()):
            if not session.connected and now - session.created > CONNECT_WITHIN_S:
                self.close(session_id)
