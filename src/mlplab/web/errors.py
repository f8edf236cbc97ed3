"""The web side of mlplab's one error hierarchy: which HTTP status a library error gets.

Every :class:`~mlplab.config.MlplabError` is a problem the client can fix, so it is a 4xx, never a 500:
404 for a model not served, 413 for a request over a limit, 415 for a body type not understood,
422 for rows that do not fit the model (:class:`~mlplab.preprocess.DataError`), 400 otherwise.
"""

from __future__ import annotations

from ..config import MlplabError
from ..preprocess import DataError

__all__ = ["HTTPError", "error_status"]


class HTTPError(MlplabError):
    """An error with its own HTTP status (404 no such model, 413 too large, ...)."""

    def __init__(self, status_code: int, message: str):
        self.status_code = status_code
        super().__init__(message)


def error_status(error: MlplabError) -> int:
    if isinstance(error, HTTPError):
        return error.status_code
    return 422 if isinstance(error, DataError) else 400
