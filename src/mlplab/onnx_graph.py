"""A trained model as one ONNX graph: the preprocessing, the network and the output function.

The graph is built node by node with ``onnx.helper`` rather than traced by ``torch.onnx.export``:
an MLP is a chain of ``Gemm`` and activation nodes, and building it directly lets the graph take one
input per feature, *strings* for categorical features (one-hot encoded in the graph with ``Equal``,
which a torch trace cannot express), without depending on which exporter a torch release ships.

Graph contract (also written to the sidecar JSON)::

    inputs   one per feature, named after it, shape [batch]: numeric -> the model's float type,
             categorical -> string (an unseen category encodes as all zeros)
    outputs  logits         [batch, n_outputs]  the network's raw outputs
             probabilities  [batch, n_classes]  binary (1-p, p), multiclass softmax   (classification)
             label          [batch]             the predicted class label              (classification)
             value          [batch]             the prediction                         (regression)
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from .config import MlplabError

if TYPE_CHECKING:
    import onnx

    from .run import TrainedModel

__all__ = ["MIN_OPSET", "build_graph", "choose_opset"]

MIN_OPSET = 19  # Equal on strings (the in-graph one-hot) needs opset 19
# The newest ai.onnx opset each onnxruntime release runs (from its release notes); newer releases
# run at least the last one listed.
ORT_MAX_OPSET = [((1, 16), 19), ((1, 17), 20), ((1, 18), 21), ((1, 20), 22), ((1, 22), 23)]

# torch's constants for the activations that have them (torch.nn defaults).
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def choose_opset() -> int:
    """The newest opset both the installed onnx and the installed onnxruntime support."""
    import onnx

    newest = onnx.defs.onnx_opset_version()
    try:
        import onnxruntime
    except ImportError:
        return max(MIN_OPSET, min(newest, ORT_MAX_OPSET[0][1]))
    version = tuple(int(part) for part in onnxruntime.__version__.split(".")[:2] if part.isdigit())
    supported = [opset for release, opset in ORT_MAX_OPSET if version >= release]
    if not supported:
        raise MlplabError(f"onnxruntime {onnxruntime.__version__} is too old for mlplab's ONNX export "
                          f"(opset {MIN_OPSET} needs onnxruntime >= 1.16): pip install -U onnxruntime")
    return min(newest, supported[-1])


class _Builder:
    """Collects nodes and initializers under unique names."""

    def __init__(self, dtype: np.dtype):
        from onnx import helper, numpy_helper

        self.helper, self.numpy_helper = helper, numpy_helper
        self.dtype = dtype
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self.count = 0

    def name(self, hint: str) -> str:
        self.count += 1
        return f"{hint}_{self.count}"

    def constant(self, value: Any, hint: str, dtype: Any = None) -> str:
        name = self.name(hint)
        array = np.asarray(value, dtype=dtype if dtype is not None else self.dtype)
        self.initializers.append(self.numpy_helper.from_array(array, name))
        return name

    def node(self, op: str, inputs: list[str], hint: str, output: str | None = None, **attributes: Any) -> str:
        output = output or self.name(hint)
        self.nodes.append(self.helper.make_node(op, inputs, [output], name=self.name(op), **attributes))
        return output


def _activation(builder: _Builder, name: str, x: str) -> str:
    if name == "identity":
        return x
    simple = {"relu": "Relu", "tanh": "Tanh", "sigmoid": "Sigmoid", "softplus": "Softplus"}
    if name in simple:
        return builder.node(simple[name], [x], name)
    if name == "leaky_relu":
        return builder.node("LeakyRelu", [x], name, alpha=0.01)
    if name == "elu":
        return builder.node("Elu", [x], name, alpha=1.0)
    if name == "selu":
        return builder.node("Selu", [x], name, alpha=SELU_ALPHA, gamma=SELU_SCALE)
    if name == "silu":
        return builder.node("Mul", [x, builder.node("Sigmoid", [x], "sigmoid")], name)
    if name == "gelu":  # torch's exact GELU: x * (1 + erf(x / sqrt 2)) / 2
        scaled = builder.node("Div", [x, builder.constant(math.sqrt(2.0), "sqrt2")], "scaled")
        one_plus = builder.node("Add", [builder.node("Erf", [scaled], "erf"), builder.constant(1.0, "one")], "erf1")
        return builder.node("Mul", [builder.node("Mul", [x, one_plus], "x_erf"), builder.constant(0.5, "half")], name)
    raise MlplabError(f"activation {name!r} has no ONNX translation")


def build_graph(model: TrainedModel, opset: int | None = None) -> onnx.ModelProto:
    """The whole pipeline of ``model`` (preprocessing, network, output function) as an ONNX model."""
    import onnx
    from onnx import TensorProto, helper

    opset = opset or choose_opset()
    module = model.module
    weights = [(layer.weight.detach().cpu().numpy(), layer.bias.detach().cpu().numpy()) for layer in module.linears]
    dtype = weights[0][0].dtype
    float_type = helper.np_dtype_to_tensor_dtype(dtype)
    builder = _Builder(dtype)
    preprocessor = model.preprocessor
    inputs, columns = [], []
    axis_one = builder.constant([1], "axis1", np.int64)
    for feature in preprocessor.features:
        name = feature["name"]
        if feature["kind"] == "numeric":
            inputs.append(helper.make_tensor_value_info(name, float_type, ["batch"]))
            columns.append(builder.node("Unsqueeze", [name, axis_one], "column"))
        else:
            inputs.append(helper.make_tensor_value_info(name, TensorProto.STRING, ["batch"]))
            column = builder.node("Unsqueeze", [name, axis_one], "column")
            categories = builder.constant([feature["categories"]], "categories", object)
            matches = builder.node("Equal", [column, categories], "matches")
            columns.append(builder.node("Cast", [matches], "one_hot", to=float_type))
    x = builder.node("Concat", columns, "encoded", axis=1) if len(columns) > 1 else columns[0]
    if preprocessor.scale != "none":
        x = builder.node("Sub", [x, builder.constant(preprocessor.offset, "offset")], "centred")
        x = builder.node("Div", [x, builder.constant(preprocessor.divisor, "divisor")], "scaled")
    for number, (weight, bias) in enumerate(weights, start=1):
        last = number == len(weights)
        x = builder.node("Gemm", [x, builder.constant(weight, f"linear_{number}.weight"),
                                  builder.constant(bias, f"linear_{number}.bias")],
                         "linear", output="logits" if last else None, transB=1)
        if not last:
            x = _activation(builder, module.activation_name, x)
    n_outputs = module.sizes[-1]
    outputs = [helper.make_tensor_value_info("logits", float_type, ["batch", n_outputs])]
    if model.task == "regression":
        scaling = model.meta.get("target_scaling")  # trained on the standardised target: back to its units
        if scaling:
            raw = builder.node("Squeeze", ["logits", axis_one], "raw_value")
            scaled = builder.node("Mul", [raw, builder.constant(scaling[1], "target_std")], "scaled")
            builder.node("Add", [scaled, builder.constant(scaling[0], "target_mean")], "value", output="value")
        else:
            builder.node("Squeeze", ["logits", axis_one], "value", output="value")
        outputs.append(helper.make_tensor_value_info("value", float_type, ["batch"]))
    else:
        outputs += _classification_outputs(builder, model, float_type)
    graph = helper.make_graph(builder.nodes, "mlplab", inputs, outputs, builder.initializers)
    onnx_model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                                   producer_name="mlplab", producer_version=model.meta.get("mlplab_version", ""))
    onnx_model.ir_version = min(onnx_model.ir_version, _ir_version_for(opset))
    onnx.checker.check_model(onnx_model, full_check=True)
    return onnx_model


def _classification_outputs(builder: _Builder, model: TrainedModel, float_type: int) -> list[Any]:
    from onnx import TensorProto, helper

    classes = list(model.classes or [])
    if model.task == "binary":
        positive = builder.node("Sigmoid", ["logits"], "positive")
        negative = builder.node("Sub", [builder.constant(1.0, "one"), positive], "negative")
        builder.node("Concat", [negative, positive], "probabilities", output="probabilities", axis=1)
        index = builder.node("Cast", [builder.node("GreaterOrEqual", ["logits", builder.constant(0.0, "zero")],
                                                   "at_least_half")], "index", to=TensorProto.INT64)
        index = builder.node("Squeeze", [index, builder.constant([1], "axis1", np.int64)], "index")
    else:
        builder.node("Softmax", ["logits"], "probabilities", output="probabilities", axis=1)
        index = builder.node("ArgMax", ["logits"], "index", axis=1, keepdims=0)
    outputs = [helper.make_tensor_value_info("probabilities", float_type, ["batch", len(classes)])]
    label_type = _label_type(classes)
    if label_type is not None:
        labels = builder.constant(classes, "classes", object if label_type == TensorProto.STRING else np.int64)
        builder.node("Gather", [labels, index], "label", output="label", axis=0)
        outputs.append(helper.make_tensor_value_info("label", label_type, ["batch"]))
    return outputs


def _label_type(classes: list[Any]) -> int | None:
    """The ONNX type of the label output: int64 or string labels; None (no label output) otherwise."""
    from onnx import TensorProto

    if all(isinstance(label, str) for label in classes):
        return TensorProto.STRING
    if all(isinstance(label, int) and not isinstance(label, bool) for label in classes):
        return TensorProto.INT64
    return None


def _ir_version_for(opset: int) -> int:
    """The IR version of the first onnx release with ``opset`` (onnx's own table), so that a runtime
    which runs the opset also reads the file."""
    from onnx import helper

    for _release, ir_version, ai_onnx, *_ in helper.VERSION_TABLE:
        if ai_onnx >= opset:
            return ir_version
    return helper.VERSION_TABLE[-1][1]
