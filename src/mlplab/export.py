"""``mlplab export``: a trained run as a file other tools run without mlplab.

Formats
-------
onnx
    The whole pipeline in one ONNX graph (:mod:`mlplab.onnx_graph`): one input per feature, named after
    it (numbers, or strings for categorical features), scaling and one-hot encoding *inside* the graph,
    outputs ``logits``, ``probabilities`` and ``label`` (regression: ``value``). Preprocessing in the
    graph means a consumer cannot apply it wrongly or twice; the sidecar JSON still documents it.
torchscript / pt2
    A torch module for ``torch.jit.load`` (TorchScript; C++ LibTorch loads it too) or
    ``torch.export.load`` (``.pt2``, what torch 2.x recommends now that ``torch.jit`` is deprecated). It
    takes one matrix ``x`` of shape (batch, n_features), columns in feature order, a categorical column
    holding the category's index (see the sidecar); it returns ``(logits, probabilities)`` or
    ``(logits, values)``. Scaling and one-hot encoding happen inside.

Every export writes the model file and a sidecar ``<file>.json`` (features, categories, scaling,
classes, inputs, outputs). Both are built in memory first, then each is written atomically; an
existing file is replaced only if mlplab wrote it.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import __version__
from .config import MlplabError

if TYPE_CHECKING:
    import torch

    from .run import TrainedModel

__all__ = ["FORMATS", "SIDECAR_FORMAT", "export", "export_run"]

FORMATS = {"onnx": "model.onnx", "torchscript": "model.torchscript.pt", "pt2": "model.pt2"}
SIDECAR_FORMAT = "mlplab-export"


def export_run(run: str | Path, format: str, output: str | Path | None = None) -> list[Path]:
    """Export the run in folder (or checkpoint file) ``run``; returns the files written.

    ``output`` defaults to ``model.onnx``, ``model.torchscript.pt`` or ``model.pt2`` in the run folder.
    """
    if format not in FORMATS:
        raise MlplabError(f"--format must be one of {', '.join(FORMATS)}; got {format!r}")
    from .run import load

    run_path = Path(run)
    model = load(run_path)
    if output is None:
        output = (run_path if run_path.is_dir() else run_path.parent) / FORMATS[format]
    return export(model, format, output, source=str(run_path))


def export(model: TrainedModel, format: str, output: str | Path, *, source: str | None = None) -> list[Path]:
    """Write ``model`` as ``format`` to ``output`` plus the sidecar ``output + '.json'``."""
    if format not in FORMATS:
        raise MlplabError(f"format must be one of {', '.join(FORMATS)}; got {format!r}")
    output = Path(output)
    if output.is_dir():
        raise MlplabError(f"--output {output} is a folder; give a file name")
    sidecar = output.with_name(output.name + ".json")
    _check_writable(output, format)
    _check_writable(sidecar, "sidecar")
    if format == "onnx":
        payload, details = _onnx_bytes(model)
    else:
        payload, details = _torch_bytes(model, format)
    description = describe(model, format, output.name, source, details)
    if format == "torchscript":  # the description travels inside the archive too (how we know it is ours)
        payload = _torchscript_bytes(model, json.dumps(description))
    from .checkpoint import atomic_write, atomic_write_text

    try:
        atomic_write(output, lambda handle: handle.write(payload))
        atomic_write_text(sidecar, json.dumps(description, indent=2) + "\n")
    except OSError as error:
        raise MlplabError(f"--output {output}: cannot write there ({error.strerror or error})") from None
    return [output, sidecar]


def describe(model: TrainedModel, format: str, filename: str, source: str | None,
             details: dict[str, Any]) -> dict[str, Any]:
    """The sidecar: everything a consumer in any language needs to feed the file and read its answer."""
    preprocessor = model.preprocessor
    encoded = []
    for feature in preprocessor.features:
        if feature["kind"] == "numeric":
            encoded.append(feature["name"])
        else:
            encoded += [f"{feature['name']}={category}" for category in feature["categories"]]
    return {
        "format": SIDECAR_FORMAT, "version": 1, "file": filename, "model_format": format,
        "mlplab_version": __version__, "source_run": source, "task": model.task, "classes": model.classes,
        "dtype": str(next(model.module.parameters()).dtype).replace("torch.", ""),
        "features": [{"name": f["name"], "type": f["kind"], **({"categories": f["categories"]}
                                                                if f["kind"] == "categorical" else {})}
                     for f in preprocessor.features],
        "preprocessing": {"applied_in_model": True, "scale": preprocessor.scale, "encoded_columns": encoded,
                          "offset": preprocessor.offset, "divisor": preprocessor.divisor,
                          "formula": "(encoded - offset) / divisor, one-hot columns are 0/1"},
        "architecture": model.meta.get("architecture"),
        **details,
    }


# --- checks ---------------------------------------------------------------------------------------------

def _check_writable(path: Path, format: str) -> None:
    if path.is_dir():
        raise MlplabError(f"--output {path} is a folder; give a file name")
    if not path.parent.is_dir():
        raise MlplabError(f"--output {path}: the folder {path.parent} does not exist")
    if path.exists() and not _written_by_mlplab(path, format):
        raise MlplabError(f"--output {path} exists and was not written by mlplab export; "
                          "choose another path or remove it")


def _written_by_mlplab(path: Path, format: str) -> bool:
    """Whether an existing file is one of ours (safe to replace), read without executing anything."""
    try:
        if format == "sidecar":
            values = json.loads(path.read_text(encoding="utf-8"))
            return isinstance(values, dict) and values.get("format") == SIDECAR_FORMAT
        if format == "onnx":
            import onnx

            return onnx.load(str(path), load_external_data=False).producer_name == "mlplab"
        with zipfile.ZipFile(path) as archive:  # .pt / .pt2 files are zip archives
            return any(name.endswith("extra/mlplab.json") or name.endswith("/mlplab.json")
                       for name in archive.namelist())
    except Exception:  # unreadable, another format, damaged: not ours, so not replaced
        return False


# --- formats --------------------------------------------------------------------------------------------

def _onnx_bytes(model: TrainedModel) -> tuple[bytes, dict[str, Any]]:
    from .onnx_graph import build_graph, choose_opset

    try:
        import onnx  # noqa: F401
    except ImportError:
        raise MlplabError("ONNX export needs onnx: pip install 'mlplab[export]'") from None
    opset = choose_opset()
    graph = build_graph(model, opset)
    outputs = {"logits": "[batch, n_outputs] the network's raw outputs"}
    if model.task == "regression":
        outputs["value"] = "[batch] the prediction"
    else:
        outputs["probabilities"] = "[batch, n_classes] class probabilities, columns in the order of classes"
        if any(output.name == "label" for output in graph.graph.output):
            outputs["label"] = "[batch] the predicted class label"
    inputs = {f["name"]: "[batch] " + ("string" if f["kind"] == "categorical" else "float")
              for f in model.preprocessor.features}
    return graph.SerializeToString(), {"opset": opset, "inputs": inputs, "outputs": outputs}


class _Pipeline:
    """Factory for the exported torch module (defined lazily: torch is imported only when needed)."""

    @staticmethod
    def build(model: TrainedModel) -> torch.nn.Module:
        import torch
        from torch import nn

        from .model import ACTIVATIONS

        module = model.module
        layers: list[nn.Module] = []
        for number, linear in enumerate(module.linears, start=1):
            copy = nn.Linear(linear.in_features, linear.out_features, dtype=linear.weight.dtype)
            copy.load_state_dict(linear.state_dict())
            layers.append(copy)
            if number < len(module.linears):
                layers.append(ACTIVATIONS[module.activation_name]())
        dtype = module.linears[0].weight.dtype
        source, category = [], []
        for index, feature in enumerate(model.preprocessor.features):
            if feature["kind"] == "numeric":
                source.append(index)
                category.append(-1.0)
            else:
                source += [index] * len(feature["categories"])
                category += [float(code) for code in range(len(feature["categories"]))]
        preprocessor = model.preprocessor

        class Pipeline(nn.Module):
            """x (batch, n_features) -> (logits, probabilities | values); see mlplab.export."""

            def __init__(self) -> None:
                super().__init__()
                self.network = nn.Sequential(*layers).eval()
                self.register_buffer("source", torch.tensor(source, dtype=torch.long))
                self.register_buffer("category", torch.tensor(category, dtype=dtype))
                self.register_buffer("is_category", torch.tensor([c >= 0 for c in category]))
                self.register_buffer("offset", torch.tensor(preprocessor.offset, dtype=dtype))
                self.register_buffer("divisor", torch.tensor(preprocessor.divisor, dtype=dtype))
                self.task = model.task
                scaling = model.meta.get("target_scaling") or [0.0, 1.0]  # regression: back to the target's units
                self.register_buffer("target_scaling", torch.tensor(scaling, dtype=dtype))

            def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
                columns = x.to(self.offset.dtype)[:, self.source]
                encoded = torch.where(self.is_category, (columns == self.category).to(columns.dtype), columns)
                logits = self.network((encoded - self.offset) / self.divisor)
                if self.task == "binary":
                    positive = torch.sigmoid(logits)
                    return logits, torch.cat([1.0 - positive, positive], dim=1)
                if self.task == "multiclass":
                    return logits, torch.softmax(logits, dim=1)
                return logits, logits[:, 0] * self.target_scaling[1] + self.target_scaling[0]

        return Pipeline().eval()


def _torch_details(model: TrainedModel, format: str) -> dict[str, Any]:
    second = "values: [batch] the predictions" if model.task == "regression" else \
        "probabilities: [batch, n_classes], columns in the order of classes"
    loader = "torch.jit.load(path)" if format == "torchscript" else "torch.export.load(path).module()"
    return {"load": loader,
            "inputs": {"x": "[batch, n_features] in the order of features; a categorical column holds the "
                            "index of its category in that feature's categories (-1 or unknown: all zeros)"},
            "outputs": {"logits": "[batch, n_outputs] the network's raw outputs", "second": second}}


def _torch_bytes(model: TrainedModel, format: str) -> tuple[bytes, dict[str, Any]]:
    details = _torch_details(model, format)
    if format == "torchscript":
        return b"", details  # written once the description is known (it goes inside the archive)
    import torch

    pipeline = _Pipeline.build(model)
    example = torch.zeros(2, len(model.preprocessor.features), dtype=pipeline.offset.dtype)
    program = torch.export.export(pipeline, (example,), dynamic_shapes={"x": {0: torch.export.Dim("batch")}})
    buffer = io.BytesIO()
    torch.export.save(program, buffer, extra_files={"mlplab.json": json.dumps({"format": SIDECAR_FORMAT})})
    return buffer.getvalue(), details


def _torchscript_bytes(model: TrainedModel, description: str) -> bytes:
    import warnings

    import torch

    with warnings.catch_warnings():  # torch 2.13 deprecates torch.jit; TorchScript is still what LibTorch loads
        warnings.simplefilter("ignore", (DeprecationWarning, FutureWarning, UserWarning))
        scripted = torch.jit.script(_Pipeline.build(model))
        buffer = io.BytesIO()
        torch.jit.save(scripted, buffer, _extra_files={"mlplab.json": description})
    return buffer.getvalue()
