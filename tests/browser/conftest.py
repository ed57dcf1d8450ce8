"""A real server on a free port and Debian's Chromium driven by Playwright.

Skipped, with a reason, where Chromium or Playwright is missing; .ci/run installs both and sets
MEALROLL_REQUIRE_SERVERS=1, under which a skip fails the run.

Screenshots of the main pages (the `shot` fixture) go to MEALROLL_SCREENSHOTS, default var/screenshots
in the repository (ignored by git); CI keeps that folder as an artefact for a person to look at.
"""

import os
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from sqlalchemy import Engine
from sqlalchemy.orm import sessionmaker

from api.app import create_app
from registry.settings import Settings

CHROMIUM = os.environ.get("MEALROLL_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def live_server(db_engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    settings = Settings(env="test", data_dir=tmp_path_factory.mktemp("live"), secret_key="browser-test-secret")
    app = create_app(settings, sessionmaker(db_engine, expire_on_commit=False))
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "test server did not start"
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    playwright_api = pytest.importorskip("playwright.sync_api", reason="real-server test: needs Playwright")
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        pytest.skip(f"real-server test: needs Chromium at {CHROMIUM} (apt-get install chromium)")
    with playwright_api.sync_playwright() as p:
        # Chromium takes its own language (date and file inputs, 选择文件) from LANGUAGE, as a county's
        # Chinese desktop gives it; Debian's chromium-l10n holds the zh-CN strings (.ci/run installs it).
        env = {**os.environ, "LANGUAGE": "zh_CN:zh", "LANG": "zh_CN.UTF-8"}
        instance = p.chromium.launch(executable_path=CHROMIUM, args=[*ARGS, "--lang=zh-CN"], env=env)
        yield instance
        instance.close()


@pytest.fixture
def shot() -> Callable[[Any, str], Path]:
    """`shot(page, "03-inbox")` saves the whole page as 03-inbox.png in the screenshots folder."""
    folder = Path(os.environ.get("MEALROLL_SCREENSHOTS") or Path(__file__).resolve().parents[2] / "var" / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)

    def save(page: Any, name: str) -> Path:
        path = folder / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return save
