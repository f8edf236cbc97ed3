"""The fast path's optimisers: SGD (with momentum, Nesterov), Adam and AdamW in NumPy, on one flat buffer.

They do what ``torch.optim.SGD``/``Adam``/``AdamW`` do (the same formulas, in the same order, checked
against them in the tests), but on every parameter at once: the fast path keeps all weights and biases in
one flat array (see ``fastpath.py``), so an Adam step is about a dozen NumPy calls whatever the number of
layers, where ``torch.optim`` makes several per tensor. Their ``state_dict`` has ``torch.optim``'s layout
(per-parameter ``momentum_buffer``, or ``step``/``exp_avg``/``exp_avg_sq`` tensors, and the param
groups), so checkpoints, ``--resume`` and the autograd path read each other's optimiser state.

Building a ``torch.optim`` optimiser also imports ``torch._dynamo`` (about a second at start-up); these
do not.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

__all__ = ["NumpyAdam", "NumpyOptimizer", "PlainSGD"]


class NumpyOptimizer:
    """Base class: torch-like ``param_groups`` (one group), bound to the flat parameter buffer by the
    fast path's step. A ``load_state_dict`` before binding is kept and applied at binding."""

    slots: tuple[str, ...] = ()  # per-parameter state arrays, in torch's names

    def __init__(self, params: Any, **group: Any):
        self.param_groups = [{"params": list(params), **group}]
        self.flat: np.ndarray | None = None
        self.views: Any = None
        self.buffers: dict[str, np.ndarray] = {}
        self.step_count = 0
        self._pending: dict[str, Any] | None = None

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Nothing to do: the fast path keeps no .grad."""

    def bind(self, flat: np.ndarray, views) -> None:
        """Attach to the flat parameter buffer; ``views(array)`` splits a flat-shaped array into one
        view per parameter, in the order of ``model.parameters()``."""
        previous = self.buffers  # bound before (warm start, partial_fit): the state carries over
        self.flat, self.views = flat, views
        self.buffers = {slot: previous[slot].copy() if slot in previous and previous[slot].shape == flat.shape
                        else np.zeros_like(flat) for slot in self.slots}
        self.scratch = np.empty_like(flat)
        if self._pending is not None:
            self._load(self._pending)
            self._pending = None

    def hyperparameters(self) -> dict[str, Any]:
        group = self.param_groups[0]
        return {key: value for key, value in group.items() if key != "params"}

    def state_dict(self) -> dict[str, Any]:
        if self._pending is not None or self.flat is None:  # not bound yet: what was loaded, or nothing
            return self._pending or {"state": {}, "param_groups": [self._group_entry()]}
        state: dict[int, dict[str, Any]] = {}
        if self.step_count and self.slots:
            per_slot = {slot: self.views(self.buffers[slot]) for slot in self.slots}
            for index in range(len(self.param_groups[0]["params"])):
                entry = {slot: torch.from_numpy(np.ascontiguousarray(per_slot[slot][index]).copy())
                         for slot in self.slots}
                state[index] = self._extra_state(entry)
        return {"state": state, "param_groups": [self._group_entry()]}

    def _group_entry(self) -> dict[str, Any]:
        return {**self.hyperparameters(), "params": list(range(len(self.param_groups[0]["params"])))}

    def _extra_state(self, entry: dict[str, Any]) -> dict[str, Any]:
        return entry

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        saved = state_dict["param_groups"][0]
        for key in self.hyperparameters():
            if key in saved:
                value = saved[key]
                self.param_groups[0][key] = tuple(value) if isinstance(value, list) else value
        if self.flat is None:
            self._pending = state_dict
        else:
            self._load(state_dict)

    def _load(self, state_dict: dict[str, Any]) -> None:
        state = state_dict.get("state") or {}
        self.step_count = 0
        for slot in self.slots:
            self.buffers[slot][...] = 0
        if not state:
            return
        for slot in self.slots:
            views = self.views(self.buffers[slot])
            for index, entry in state.items():
                views[int(index)][...] = entry[slot].numpy()
        self.step_count = self._steps_of(next(iter(state.values())))

    def _steps_of(self, entry: dict[str, Any]) -> int:
        return 1

    def update(self, gradient: np.ndarray, scale: float) -> None:
        """Apply one step for ``gradient * scale`` (dL/dp, laid out like the flat buffer); may overwrite
        ``gradient``."""
        raise NotImplementedError


class PlainSGD(NumpyOptimizer):
    """``torch.optim.SGD``: p <- p - lr g with g = dL/dp + weight_decay p; with momentum, the buffer
    b <- momentum b + g (b = g at the first step) and g <- b, or g + momentum b for Nesterov."""

    def __init__(self, params: Any, lr: float, weight_decay: float = 0.0, momentum: float = 0.0,
                 nesterov: bool = False):
        super().__init__(params, lr=lr, momentum=momentum, dampening=0.0, weight_decay=weight_decay,
                         nesterov=nesterov)
        self.slots = ("momentum_buffer",) if momentum else ()

    def update(self, gradient: np.ndarray, scale: float) -> None:
        group, flat = self.param_groups[0], self.flat
        lr, decay, momentum = group["lr"], group["weight_decay"], group["momentum"]
        if not momentum:  # the tutorial's update, in two calls: p <- p - (lr scale) g (- lr decay p)
            np.multiply(gradient, lr * scale, out=gradient)
            if decay:
                np.add(gradient, (lr * decay) * flat, out=gradient)
            np.subtract(flat, gradient, out=flat)
            self.step_count += 1
            return
        if scale != 1.0:
            np.multiply(gradient, scale, out=gradient)
        if decay:
            np.add(gradient, np.multiply(flat, decay, out=self.scratch), out=gradient)
        buffer = self.buffers["momentum_buffer"]
        if self.step_count == 0:
            buffer[...] = gradient
        else:
            np.multiply(buffer, momentum, out=buffer)
            np.add(buffer, gradient, out=buffer)
        if group["nesterov"]:
            np.add(gradient, np.multiply(buffer, momentum, out=self.scratch), out=gradient)
            direction = gradient
        else:
            direction = buffer
        np.subtract(flat, np.multiply(direction, lr, out=self.scratch), out=flat)
        self.step_count += 1


class NumpyAdam(NumpyOptimizer):
    """``torch.optim.Adam`` (``decoupled=False``) or ``AdamW`` (``decoupled=True``)::

        m <- b1 m + (1 - b1) g,  v <- b2 v + (1 - b2) g^2
        p <- p - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)

    with g = dL/dp + weight_decay p (Adam), or p <- p (1 - lr weight_decay) first (AdamW)."""

    slots = ("exp_avg", "exp_avg_sq")

    def __init__(self, params: Any, lr: float, weight_decay: float = 0.0, decoupled: bool = False,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        super().__init__(params, lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, amsgrad=False,
                         maximize=False)
        self.decoupled = decoupled

    def _extra_state(self, entry: dict[str, Any]) -> dict[str, Any]:
        return {"step": torch.tensor(float(self.step_count)), **entry}

    def _steps_of(self, entry: dict[str, Any]) -> int:
        return int(float(entry["step"]))

    def update(self, gradient: np.ndarray, scale: float) -> None:
        # Twelve NumPy calls, each about a microsecond at the tutorial's size whatever it computes (the
        # arithmetic is nothing): ``scale`` goes into the moment coefficients, not a pass over the
        # gradient, and the bias corrections into eps and the step size (the same values up to rounding).
        group, flat, scratch = self.param_groups[0], self.flat, self.scratch
        lr, decay, eps = group["lr"], group["weight_decay"], group["eps"]
        beta1, beta2 = group["betas"]
        self.step_count += 1
        m, v = self.buffers["exp_avg"], self.buffers["exp_avg_sq"]
        if decay and self.decoupled:
            np.multiply(flat, 1.0 - lr * decay, out=flat)
        elif decay:  # g + decay p, with g = scale * gradient
            np.add(gradient, np.multiply(flat, decay / scale, out=scratch), out=gradient)
        np.multiply(m, beta1, out=m)  # m <- b1 m + (1 - b1) g
        np.add(m, np.multiply(gradient, (1.0 - beta1) * scale, out=scratch), out=m)
        np.multiply(v, beta2, out=v)  # v <- b2 v + (1 - b2) g^2
        np.multiply(gradient, gradient, out=gradient)
        np.add(v, np.multiply(gradient, (1.0 - beta2) * scale * scale, out=gradient), out=v)
        # p <- p - lr / c1 * m / (sqrt(v) / sqrt(c2) + eps) = p - (lr sqrt(c2) / c1) m / (sqrt(v) + eps sqrt(c2))
        root_correction2 = math.sqrt(1.0 - beta2 ** self.step_count)
        np.add(np.sqrt(v, out=scratch), eps * root_correction2, out=scratch)
        np.divide(m, scratch, out=scratch)
        step_size = lr * root_correction2 / (1.0 - beta1 ** self.step_count)
        np.subtract(flat, np.multiply(scratch, step_size, out=scratch), out=flat)
