"""The playground end to end in a real browser: Debian's chromium driven by Playwright, one browser for
the module, short trainings. Screenshots of the main states go to test-output/playground/ (gitignored).

Without chromium these tests skip locally, but FAIL when CI=true (CI installs chromium; see .ci/run).
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.parse
import zipfile
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
SHOTS = Path(__file__).resolve().parents[1] / "test-output" / "playground"

if not CHROMIUM.exists() or not __import__("importlib").util.find_spec("playwright"):
    if os.environ.get("CI") == "true":
        pytest.fail("CI=true but /usr/bin/chromium or playwright is missing: the browser tests must run in CI "
                    "(.ci/run installs chromium with apt-get)", pytrace=False)
    pytest.skip("needs /usr/bin/chromium and playwright (apt-get install chromium)", allow_module_level=True)

pytest.importorskip("fastapi")
from playwright.sync_api import expect, sync_playwright  # noqa: E402

import mlplab  # noqa: E402


@pytest.fixture(scope="module")
def server():
    """The real app under uvicorn on an ephemeral loopback port, in a thread."""
    import uvicorn

    from mlplab.web.app import create_app
    from mlplab.web.server import bind

    listener = bind("127.0.0.1", 0)
    uv = uvicorn.Server(uvicorn.Config(create_app(playground=True), log_level="warning"))
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    while not uv.started:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/playground/"
    uv.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1600, "height": 1000}, accept_downloads=True, locale="en-US")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert not errors, errors


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def wait_epoch(page, epoch: int) -> None:
    page.wait_for_function(f"Number(document.body.dataset.epoch) >= {epoch}", timeout=60_000)


def boundary_pixels(page) -> str:
    return page.evaluate("document.getElementById('boundary').toDataURL()")


def test_train_explain_share_download_and_export(page, server, tmp_path, cli):
    started = time.perf_counter()
    page.goto(server)
    page.wait_for_function("Number(document.body.dataset.frames) >= 1")
    load_ms = page.evaluate("Number(document.body.dataset.firstBoundaryMs)")  # since navigation start
    shot(page, "1-loaded")
    page.select_option("#dataset", "xor")
    page.wait_for_url(re.compile(r"dataset=xor(&|$)"))
    page.wait_for_function("document.body.dataset.epoch === '0' && state.data && state.data.source === 'xor'")
    before, first_loss = boundary_pixels(page), float(page.text_content("#test-loss"))
    page.select_option("#speed", "50")
    page.click("#play")
    wait_epoch(page, 200)
    page.click("#play")  # pause
    page.wait_for_function("!state.playing")
    time.sleep(0.3)
    assert float(page.text_content("#train-loss")) < first_loss
    assert boundary_pixels(page) != before
    shot(page, "2-trained")

    # explain a point, and compare with `mlplab explain` on the downloaded run at the same weights
    page.click("#boundary", position={"x": 60, "y": 80})
    expect(page.locator("[data-testid=explain-output]")).to_be_visible()
    shot(page, "3-explain")
    explained = page.evaluate("state.explanation")
    with page.expect_download() as download:
        page.click("#download")
    with zipfile.ZipFile(io.BytesIO(Path(download.value.path()).read_bytes())) as archive:
        archive.extractall(tmp_path)
    (run,) = [path for path in tmp_path.iterdir() if path.is_dir()]
    u, v = explained["input"]["x1"], explained["input"]["x2"]
    code, out, err = cli("explain", run, "--", u, v)
    assert code == 0, err
    probability = float(re.search(r"P\(label 1\) = ([0-9.]+)", out).group(1))
    loss = float(re.search(r"L = ([0-9.]+)", out).group(1))
    assert page.text_content("[data-testid=explain-output]").endswith(f"{probability:.6f}")
    assert f"L = {loss:.6f}" in page.text_content("[data-testid=explain-loss]")
    cli_db = re.findall(r"dL/db = (\[[^\]]*\])", out)[0]  # the last layer's, printed first
    assert cli_db in page.text_content(f"[data-testid=explain-db{len(explained['layers'])}]")
    code, out, err = cli("predict", run, "--", u, v)
    assert code == 0 and f"{probability:.6f}" in out

    # "export as Python" reproduces the final loss
    with page.expect_download() as download:
        page.click("#export")
    script = tmp_path / "export.py"
    script.write_text(Path(download.value.path()).read_text())
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, check=True).stdout
    final = float(re.search(r"Final: train loss ([0-9.]+)", out).group(1))
    history = json.loads((run / "history.json").read_text())
    assert final == pytest.approx(history[-1]["train_loss"], abs=2e-6)

    # change a control: the address follows; a reload restores it, the same data and initial weights
    page.select_option("#lr", "0.1")
    page.wait_for_url(re.compile(r"lr=0\.1"))
    page.reload()
    page.wait_for_function("Number(document.body.dataset.frames) >= 1")
    assert page.input_value("#lr") == "0.1" and page.input_value("#dataset") == "xor"
    assert float(page.text_content("#test-loss")) == first_loss and boundary_pixels(page) == before
    print(f"\npage load to first boundary: {load_ms} ms; test took {time.perf_counter() - started:.1f} s")


def test_upload_a_csv_and_draw_points(page, server, tmp_path):
    csv = tmp_path / "points.csv"
    rows = [f"{(i % 9) - 4},{(i * 7) % 13 - 6},{'a' if ((i % 9) - 4) * ((i * 7) % 13 - 6) > 0 else 'b'}"
            for i in range(150)]
    csv.write_text("width,height,kind\n" + "\n".join(rows) + "\n")
    page.goto(server)
    page.wait_for_function("Number(document.body.dataset.frames) >= 1")
    page.set_input_files("#file", str(csv))
    page.wait_for_function("state.data && state.data.source === 'points.csv'")
    assert page.evaluate("state.data.axes") == ["width", "height"]
    assert "dataset=upload" in page.url and "target=kind" in page.url
    page.click("#step")
    wait_epoch(page, 1)
    shot(page, "4-upload")

    bad = tmp_path / "bad.csv"
    bad.write_text("a,b,c\n1,2\n")
    page.set_input_files("#file", str(bad))
    expect(page.locator("#message")).to_contain_text("line 2")

    page.select_option("#dataset", "moons")
    page.wait_for_function("state.data && state.data.source === 'moons'")
    count = page.evaluate("state.data.points.train.u.length")
    page.check("input[name=mode][value=draw]")
    page.select_option("#draw-class", "1")
    page.click("#boundary", position={"x": 200, "y": 200})
    page.wait_for_function(f"state.data.points.train.u.length === {count + 1}")
    assert re.search(r"added=[-0-9.]+:[-0-9.]+:1", urllib.parse.unquote(page.url))
    page.click("#boundary", position={"x": 200, "y": 200}, modifiers=["Shift"])
    page.wait_for_function(f"state.data.points.train.u.length === {count}")
    shot(page, "5-drawn")
    assert mlplab  # the library is importable beside the server


def test_the_korean_page_speaks_korean_only(page, server):
    page.goto(server + "?lang=ko")
    page.wait_for_function("Number(document.body.dataset.frames) >= 1")
    page.click("#boundary", position={"x": 100, "y": 100})
    page.wait_for_selector("[data-testid=explain-output]")
    shot(page, "6-korean")
    assert page.evaluate("document.documentElement.lang") == "ko" and "lang=ko" in page.url
    assert page.text_content("label:has(#lr) span") == "학습률"
    assert page.text_content("label:has(#activation) span") == "활성화 함수"
    assert "은닉층" in page.text_content(".network h2") and page.title() == "mlplab 플레이그라운드"
    assert page.get_attribute("#play", "title") == "학습 시작"
    assert "역전파" in page.text_content("#explain")
    text = page.evaluate("document.body.innerText") + " ".join(
        page.evaluate("[...document.querySelectorAll('[title]')].map((e) => e.title)"))
    english = json.loads((Path(__file__).resolve().parents[1] / "src/mlplab/web/static/i18n/en.json").read_text())
    korean = json.loads((Path(__file__).resolve().parents[1] / "src/mlplab/web/static/i18n/ko.json").read_text())
    leaked = [value for key, value in english.items()
              if value != korean[key] and "{" not in value and len(value) > 3 and value in text]
    assert leaked == []
    page.select_option("#lang", "en")  # the switch in the page
    page.wait_for_url(re.compile(r"lang=en"))
    assert page.text_content("label:has(#lr) span") == "Learning rate"
