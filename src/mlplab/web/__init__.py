"""mlplab's web server: the prediction API (``mlplab serve``) and the playground, one FastAPI app.

Importing this package imports neither FastAPI nor torch: :func:`create_app` is loaded on first use,
and :func:`require_web` turns a missing optional dependency into one clear :class:`MlplabError`
(the CLI prints it as one line) instead of an ImportError deep in a traceback.
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, Any

from ..config import MlplabError

__all__ = ["WEB_HINT", "create_app", "require_web"]

WEB_HINT = "pip install 'mlplab[web]'"
_WEB_PACKAGES = ("fastapi", "uvicorn", "pydantic")


def require_web() -> None:
    """Raise :class:`MlplabError` naming the install command when FastAPI or uvicorn is missing."""
    missing = [name for name in _WEB_PACKAGES if importlib.util.find_spec(name) is None]
    if missing:
        raise MlplabError(f"the web server needs {', '.join(missing)}: {WEB_HINT}")


def __getattr__(name: str) -> Any:
    if name == "create_app":
        require_web()
        from .app import create_app

        return create_app
    raise AttributeError(f"module 'mlplab.web' has no attribute {name!r}")


if TYPE_CHECKING:
    from .app import create_app
