"""Write docs/tutorial.en.md and docs/tutorial.ko.md: the seed tutorial's sections in order, each with the
mlplab command or playground view that shows it, with REAL output and screenshots made by this script.

    .venv/bin/python docs/make_tutorial.py      # needs the dev extra and /usr/bin/chromium

Run it again after a change and the documents follow: nothing in them is typed by hand but the prose.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

DOCS = Path(__file__).resolve().parent
FIGURES = DOCS / "tutorial"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


def mlplab(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "mlplab", *args], capture_output=True, text=True, check=True)
    return done.stdout


def trim(text: str, keep: int = 6) -> str:
    lines = text.rstrip().splitlines()
    return "\n".join(lines if len(lines) <= 2 * keep else [*lines[:keep], "...", *lines[-keep:]])


def section(text: str, start: str, end: str | None) -> str:
    body = text[text.index(start):]
    return body[:body.index(end)].rstrip() if end else body.rstrip()


def screenshots() -> None:
    """The playground in both languages: loaded, and trained 2000 epochs with a point explained."""
    import uvicorn
    from playwright.sync_api import sync_playwright

    from mlplab.web.app import create_app
    from mlplab.web.server import bind

    listener = bind("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(create_app(playground=True), log_level="warning"))
    threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/playground/"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        for language in ("en", "ko"):
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.goto(f"{url}?lang={language}&speed=100")
            page.wait_for_function("Number(document.body.dataset.frames) >= 1")
            page.screenshot(path=str(FIGURES / f"start.{language}.png"))
            page.click("#play")
            page.wait_for_function("Number(document.body.dataset.epoch) >= 2000", timeout=300_000)
            page.click("#play")
            page.wait_for_function("!state.playing")
            page.click("#boundary", position={"x": 50, "y": 50})
            page.wait_for_selector("[data-testid=explain-output]")
            time.sleep(0.3)
            page.screenshot(path=str(FIGURES / f"trained.{language}.png"), full_page=True)
            page.close()
        browser.close()
    server.should_exit = True


def main() -> None:
    FIGURES.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        run = str(Path(folder) / "tutorial")
        train = mlplab("train", "--out", run)
        explained = mlplab("explain", run, "--", "-1", "1")
        mlplab("plot", "activations", "--out", str(FIGURES / "activations.png"))
    train = re.sub(r"Run saved to \S+:", "Run saved to runs/tutorial:", train)
    outputs = {
        "model": next(line for line in train.splitlines() if line.startswith("model:")),
        "train": trim(train),
        "forward": section(explained, "FORWARD PASS", "OUTPUT"),
        "output": section(explained, "OUTPUT", "BACKWARD PASS"),
        "backward": section(explained, "BACKWARD PASS", "Check:") + "\n" +
                    section(explained, "Check:", "ONE SGD STEP"),
    }
    screenshots()
    for language in ("en", "ko"):
        template = (DOCS / f"tutorial.{language}.template.md").read_text(encoding="utf-8")
        text = re.sub(r"\{\{(\w+)\}\}", lambda m: outputs[m.group(1)], template)
        (DOCS / f"tutorial.{language}.md").write_text(
            f"<!-- written by docs/make_tutorial.py from tutorial.{language}.template.md: edit those -->\n" + text,
            encoding="utf-8")
        print(f"wrote {DOCS / f'tutorial.{language}.md'}")


if __name__ == "__main__":
    main()
