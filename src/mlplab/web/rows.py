"""Rows from a request body (JSON or CSV) to the table a :class:`~mlplab.inference.TrainedModel` takes,
checked against that model's own features.

Each served model gets a pydantic row type built from its preprocessor: a finite number for each
numeric feature, one of the training categories for each categorical one, nothing else. Every problem
becomes a :class:`~mlplab.preprocess.DataError` naming the row, the feature and what is allowed, which
the app answers with a 422. Parsing is all in memory: nothing a client sends names a file.
"""

from __future__ import annotations

import csv
import io
import math
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import AllowInfNan, ConfigDict, Strict, StrictStr, TypeAdapter, ValidationError
from typing_extensions import TypedDict

from ..preprocess import DataError, Preprocessor
from .errors import HTTPError
from .schemas import PredictRequest

__all__ = ["RowChecker"]

FiniteNumber = Annotated[float, Strict(), AllowInfNan(False)]


class RowChecker:
    """Validates rows for one model and turns them into columns (``{feature: 1-D array}``)."""

    def __init__(self, preprocessor: Preprocessor):
        self.features = preprocessor.features
        self.names = [feature["name"] for feature in self.features]
        self.numeric = {f["name"] for f in self.features if f["kind"] == "numeric"}
        open_categories = preprocessor.unknown_categories == "ignore"
        fields: dict[str, Any] = {}
        for feature in self.features:
            if feature["kind"] == "numeric":
                fields[feature["name"]] = FiniteNumber
            elif open_categories:  # the model encodes an unseen category as all zeros
                fields[feature["name"]] = StrictStr
            else:
                fields[feature["name"]] = Literal[tuple(feature["categories"])]
        # TypedDict's functional form: feature names need not be Python identifiers.
        row_type = TypedDict("Row", fields)  # type: ignore[misc]
        row_type.__pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[attr-defined]
        self.adapter = TypeAdapter(list[row_type])
        # Rows of numbers only, no derived input features: the model takes them as one matrix in feature
        # order (TrainedModel's array path), and a request of lists of numbers needs no per-cell pydantic.
        self.as_matrix = preprocessor.all_numeric and not preprocessor.input_features

    def from_json(self, body: bytes, max_rows: int) -> dict[str, np.ndarray] | np.ndarray:
        try:
            request = PredictRequest.model_validate_json(body)
        except ValidationError as error:
            raise DataError(f"the body is not a valid prediction request: {_first_problem(error)}; "
                            'send {"rows": [{"feature": value, ...}, ...]} or {"rows": [[value, ...], ...]}') from None
        rows = request.rows
        _check_count(len(rows), max_rows)
        if rows and isinstance(rows[0], list):
            for number, values in enumerate(rows, start=1):
                if len(values) != len(self.names):
                    raise DataError(f"row {number} has {len(values)} value(s); the model takes "
                                    f"{len(self.names)} feature(s), in this order: {', '.join(self.names)}")
            matrix = self._numbers(rows)
            if matrix is not None:
                return matrix
            rows = [dict(zip(self.names, values)) for values in rows]
        return self.columns(rows)

    def _numbers(self, rows: list[list[Any]]) -> np.ndarray | None:
        """Lists of finite numbers as a float64 matrix (what :meth:`columns` would accept, in one NumPy
        step); None when the model takes other values or any cell is not a finite number, so that
        :meth:`columns` names the problem."""
        if not self.as_matrix or any(type(value) not in (int, float) for values in rows for value in values):
            return None  # bool is not int here, as in the strict check: True is not a number
        try:
            matrix = np.array(rows, dtype=np.float64)
        except OverflowError:  # an integer beyond float64
            return None
        return matrix if np.isfinite(matrix).all() else None

    def from_csv(self, body: bytes, max_rows: int) -> dict[str, np.ndarray] | np.ndarray:
        try:
            text = body.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise DataError("the CSV body is not UTF-8 text") from None
        try:
            records = list(csv.reader(io.StringIO(text, newline="")))
        except csv.Error as error:
            raise DataError(f"the CSV body cannot be read: {error}") from None
        records = [record for record in records if record]  # blank lines, the trailing newline
        if not records:
            raise DataError("the CSV body is empty; send a header of feature names, then one line per row")
        header, lines = [name.strip() for name in records[0]], records[1:]
        if len(set(header)) != len(header):
            raise DataError("the CSV header names a column twice")
        _check_count(len(lines), max_rows)
        if not lines:
            raise DataError("the CSV body has a header but no rows")
        rows = []
        for number, line in enumerate(lines, start=1):
            if len(line) != len(header):
                raise DataError(f"CSV row {number} has {len(line)} value(s) but the header has {len(header)}")
            rows.append({name: _number(value) if name in self.numeric else value for name, value in zip(header, line)})
        return self.columns(rows)

    def columns(self, rows: list[dict[str, Any]]) -> dict[str, np.ndarray] | np.ndarray:
        """Check ``rows`` against the features; return one column per feature, or for a model of numbers
        only the (rows, features) matrix in feature order."""
        try:
            checked = self.adapter.validate_python(rows)
        except ValidationError as error:
            raise DataError(self._describe(error)) from None
        if self.as_matrix:
            return np.array([[row[name] for name in self.names] for row in checked], dtype=np.float64)
        return {name: np.array([row[name] for row in checked], dtype=np.float64 if name in self.numeric else object)
                for name in self.names}

    def _describe(self, error: ValidationError) -> str:
        """The first problem, in the user's terms: the row (counted from 1), the feature, what is allowed."""
        item = error.errors(include_url=False)[0]
        location = item["loc"]
        row = f"row {location[0] + 1}" if location and isinstance(location[0], int) else "the rows"
        name = location[1] if len(location) > 1 else None
        value = item.get("input")
        if item["type"] == "missing":
            return f"{row}: the feature {name!r} is missing; the model takes {', '.join(self.names)}"
        if item["type"] == "extra_forbidden":
            return f"{row}: {name!r} is not a feature of this model; it takes {', '.join(self.names)}"
        if item["type"] == "literal_error":
            known = next(f["categories"] for f in self.features if f["name"] == name)
            return (f"{row}: {value!r} is a category of {name!r} unseen in training; known: "
                    f"{', '.join(map(repr, known[:20]))}")
        if name in self.numeric:
            return f"{row}: feature {name!r} must be a finite number, got {_short(value)}"
        if name is not None:
            return f"{row}: feature {name!r} must be a string (a category), got {_short(value)}"
        return f"{row}: {item['msg']}"


def _check_count(n_rows: int, max_rows: int) -> None:
    if n_rows > max_rows:
        raise HTTPError(413, f"{n_rows} rows in one request; the limit is {max_rows} (mlplab serve --max-rows)")


def _number(text: str) -> Any:
    """A CSV cell of a numeric feature as a float (non-finite ones are kept and refused by the check)."""
    try:
        return float(text)
    except ValueError:
        return text


def _short(value: Any) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _first_problem(error: ValidationError) -> str:
    item = error.errors(include_url=False)[0]
    where = ".".join(str(part) for part in item["loc"])
    return f"{where}: {item['msg']}" if where else item["msg"]
