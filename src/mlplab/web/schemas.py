"""The prediction API's request and response bodies, as typed pydantic models.

They are the contract a client codes against: FastAPI turns them into ``/openapi.json`` and checks
every response against them. What a request's rows must hold depends on the model served, so rows are
checked a second time against that model's own features (:mod:`mlplab.web.rows`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, WithJsonSchema

__all__ = ["ErrorResponse", "Feature", "Health", "ModelInfo", "ModelList", "PredictRequest", "Prediction"]

# A class label as it was in the training data: a string, or a number (a bool for True/False labels).
# Strict members first, so 1 stays 1 and "1" stays "1" when a response is checked.
Label = StrictBool | StrictInt | float | StrictStr
# A cell as sent. Checked per feature afterwards (RowChecker), so that a bad cell is reported by row
# and feature name rather than as a union mismatch; the schema still says number or string.
Value = Annotated[Any, WithJsonSchema({"anyOf": [{"type": "number"}, {"type": "string"}]})]
Task = Literal["binary", "multiclass", "regression"]


class ErrorResponse(BaseModel):
    """Every error: one readable line, and for request validation the itemised errors."""

    detail: str = Field(description="what is wrong and what is allowed")
    errors: list[dict[str, Any]] | None = Field(None, description="one entry per problem (validation errors)")


class PredictRequest(BaseModel):
    """Rows to predict: objects keyed by feature name, or lists of values in the model's feature order
    (see ``GET /v1/models/{name}`` for the features, their order and types)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "examples": [{"rows": [{"x1": -1.0, "x2": 1.0}]}, {"rows": [[-1.0, 1.0], [1.0, 1.0]]}]})

    rows: list[dict[str, Value]] | list[list[Value]] = Field(
        min_length=1, description="the rows: numbers for numeric features, strings for categorical ones")


class Prediction(BaseModel):
    """One prediction per row, in the order given."""

    model: str = Field(description="the model's name")
    task: Task
    predictions: list[Label] = Field(description="class labels as in the training data; values for regression")
    classes: list[Label] | None = Field(None, description="the class labels, the order of the probability columns")
    probabilities: list[list[float]] | None = Field(
        None, description="per row, one probability per class in the order of `classes` (absent for regression)")


class Feature(BaseModel):
    name: str
    type: Literal["numeric", "categorical"]
    categories: list[str] | None = Field(None, description="the categories seen in training (categorical only)")


class ModelInfo(BaseModel):
    """A served model: what it takes, what it gives, how it was trained and how well it did."""

    name: str
    task: Task
    features: list[Feature] = Field(description="the inputs, in the order list rows must use")
    classes: list[Label] | None = None
    architecture: dict[str, Any] = Field(description="layer sizes, activation, output function")
    metrics: dict[str, dict[str, float | None]] = Field(description="final metrics per split (train, val, test)")
    config: dict[str, Any] = Field(description="the training config (as `mlplab train --config` reads it)")
    created: str | None = None
    mlplab_version: str | None = None


class ModelList(BaseModel):
    models: list[ModelInfo]


class Health(BaseModel):
    status: Literal["ok"] = "ok"
    models: list[str] = Field(description="the names of the models served")
