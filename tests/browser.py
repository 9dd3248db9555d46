"""JupyterLab on 127.0.0.1 and Debian's Chromium driven by Playwright, for
tests/test_browser.py and scripts/capture_displays.py."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
NOTEBOOK = Path(__file__).parent / "browser_panels.ipynb"
ROOT = Path(__file__).resolve().parent.parent

# Code cells of NOTEBOOK, by index among the code cells.
IMPORTS, COMPLETED, BACKGROUND, BLOCKING, PRINTED, MIXED, INTERRUPTED = range(7)


def missing() -> str | None:
    """Why the browser test cannot run here, or None."""
    if not os.path.exists(CHROMIUM):
        return f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium)"
    for module in ("playwright", "jupyterlab"):
        try:
            __import__(module)
        except ImportError:
            return f"{module} is not installed (pip install '.[test]')"
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def jupyter_lab(work: Path) -> Iterator[str]:
    """JupyterLab serving a copy of NOTEBOOK from *work* on 127.0.0.1, with a
    token; yields the notebook's URL. Stopped with its kernels at the end."""
    shutil.copy(NOTEBOOK, work / NOTEBOOK.name)
    # No question about JupyterLab's news over the panels.
    settings = work / ".settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')
    port, token = _free_port(), secrets.token_hex(16)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
        ),
        "JUPYTER_CONFIG_DIR": str(work / ".jupyter"),
        "JUPYTER_RUNTIME_DIR": str(work / ".runtime"),
        "JUPYTERLAB_SETTINGS_DIR": str(work / ".settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(work / ".workspaces"),
    }
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={work}",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--LabApp.news_url=None",
            "--LabApp.extension_manager=readonly",
            *(["--allow-root"] if os.geteuid() == 0 else []),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(work / "jupyter.log", "wb"),  # noqa: SIM115
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(
                    f"{base}/api/status?token={token}", timeout=1
                ):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        "JupyterLab did not start:\n"
                        + (work / "jupyter.log").read_text()[-2000:]
                    ) from None
                time.sleep(0.1)
        yield f"{base}/lab/tree/{NOTEBOOK.name}?token={token}"
    finally:
        _stop(server, f"{base}/api/shutdown?token={token}")


def _stop(server: subprocess.Popen, shutdown_url: str) -> None:
    # The API shuts the kernels down too (their runs close at exit).
    with contextlib.suppress(OSError):
        request = urllib.request.Request(shutdown_url, method="POST")
        urllib.request.urlopen(request, timeout=5).close()
    try:
        server.wait(15)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(5)


@contextlib.contextmanager
def chromium_page(width: int = 900, height: int = 1000) -> Iterator:
    """A page in headless Chromium (Debian's, no download)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            yield page
        finally:
            browser.close()


def open_notebook(page, url: str) -> None:
    """Open the notebook and wait for its kernel."""
    page.goto(url)
    page.locator(".jp-Notebook .jp-CodeCell").first.wait_for(timeout=30_000)
    # JupyterLab may ask which kernel to start, even with the notebook's
    # kernelspec; its default is the notebook's.
    select = page.locator(".jp-Dialog").get_by_role("button", name="Select")
    with contextlib.suppress(Exception):
        select.click(timeout=3000)
    page.get_by_text("Kernel status: Idle").first.wait_for(
        state="attached", timeout=30_000
    )


def menu(page, name: str, item: str) -> None:
    page.locator(".lm-MenuBar-itemLabel", has_text=name).first.click()
    page.locator(".lm-Menu-itemLabel", has_text=item).first.click()


def code_cell(page, index: int):
    return page.locator(".jp-Notebook .jp-CodeCell").nth(index)


def panel(page, index: int):
    """The output of code cell *index*: its live panel, replaced by the ended
    panel (HTML) once the run has ended."""
    return code_cell(page, index).locator(".jp-OutputArea").first


def wait_for_text(locator, text: str, timeout: float = 20.0) -> str:
    """Wait until *locator*'s text contains *text*; its text."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            content = locator.inner_text(timeout=1000)
        except Exception:  # not there yet
            content = ""
        if text in content:
            return content
        if time.monotonic() > deadline:
            raise AssertionError(f"{text!r} not in {content!r}")
        time.sleep(0.1)
