"""``mlplab playground``: bind the port first (a clear error if it is taken), print the address, serve."""

from __future__ import annotations

import socket
import sys
import threading
import webbrowser

from ..config import MlplabError

__all__ = ["run_playground"]


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on (host, port); a taken port or unknown host is a one-line MlplabError."""
    if not 0 <= port <= 65535:
        raise MlplabError(f"--port must be from 0 to 65535, got {port}")
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
    except OSError as error:
        raise MlplabError(f"cannot listen on {host}:{port} ({error.strerror or error}); "
                          "choose another --port or --host") from None
    listener.listen(128)
    return listener


def run_playground(host: str, port: int, open_browser: bool = False, max_sessions: int = 8) -> None:
    import torch
    import uvicorn

    from .app import create_app

    if max_sessions < 1:
        raise MlplabError(f"--max-sessions must be at least 1, got {max_sessions}")
    listener = bind(host, port)
    # Tiny networks: one thread per session beats torch's intra-op pool fighting over two cores.
    torch.set_num_threads(1)
    app = create_app(playground=True)
    from .playground import configure

    configure(app, max_sessions=max_sessions)
    shown_host = f"[{host}]" if ":" in host else host
    url = f"http://{shown_host}:{listener.getsockname()[1]}/playground/"
    print(f"mlplab playground: {url}  (Ctrl+C stops it)", flush=True)
    if open_browser:
        threading.Timer(0.5, webbrowser.open, args=(url,)).start()
    config = uvicorn.Config(app, log_level="warning", ws="auto")
    server = uvicorn.Server(config)
    try:
        server.run(sockets=[listener])
    except KeyboardInterrupt:
        sys.stderr.write("mlplab: playground stopped\n")
