"""The notebook panel as a person sees it: JupyterLab on 127.0.0.1 in
Debian's Chromium, driven by Playwright, over tests/browser_panels.ipynb.

Skipped only where Chromium or the test extra is missing (.ci/run installs
both)."""

from __future__ import annotations

import time

import pytest
from browser import (
    BACKGROUND,
    BLOCKING,
    COMPLETED,
    INTERRUPTED,
    MIXED,
    PRINTED,
    chromium_page,
    code_cell,
    jupyter_lab,
    menu,
    missing,
    open_notebook,
    panel,
    wait_for_text,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(150),
    pytest.mark.skipif(missing() is not None, reason=str(missing())),
]

ALL_CANCELLED = "4 jobs: 4 CANCELLED"


def fits(locator) -> bool:
    """True if the panel's table is no wider than the output area."""
    return locator.evaluate(
        "el => { const t = el.querySelector('table');"
        " return t.getBoundingClientRect().right"
        " <= el.getBoundingClientRect().right + 1; }"
    )


def test_panels_in_jupyterlab(tmp_path):
    with jupyter_lab(tmp_path) as url, chromium_page(width=900) as page:
        open_notebook(page, url)
        menu(page, "Run", "Run All Cells")

        # A blocking run that completes: green, all rows COMPLETED.
        done = panel(page, COMPLETED)
        text = wait_for_text(done, "4 jobs: 4 COMPLETED")
        assert "Completed" in text
        assert 'data-outcome="success"' in done.inner_html()
        assert fits(done)

        # Cancel, clicked in a non-blocking run's panel.
        background = panel(page, BACKGROUND)
        wait_for_text(background, "STARTED")
        clicked = time.monotonic()
        background.get_by_role("button", name="Cancel").click()
        text = wait_for_text(background, ALL_CANCELLED, timeout=5)
        assert time.monotonic() - clicked < 3
        assert "4 cancelled" in text
        assert 'data-outcome="warning"' in background.inner_html()

        # Cancel, clicked while a blocking run holds the kernel's main thread.
        blocking = panel(page, BLOCKING)
        wait_for_text(blocking, "STARTED")
        clicked = time.monotonic()
        blocking.get_by_role("button", name="Cancel").click()
        wait_for_text(blocking, ALL_CANCELLED, timeout=5)
        printed = wait_for_text(
            code_cell(page, PRINTED).locator(".jp-OutputArea"), "CANCELLED", 5
        )
        assert time.monotonic() - clicked < 4
        assert printed.count("CANCELLED") == 4

        # A failed job (red), and a long id cut to fit the 900 px window.
        mixed = panel(page, MIXED)
        text = wait_for_text(mixed, "4 jobs: 3 COMPLETED, 1 FAILED")
        assert "connection reset by peer" in text
        assert 'data-outcome="danger"' in mixed.inner_html()
        assert fits(mixed)
        long_id = mixed.locator("td[title^='s3://']")
        assert long_id.get_attribute("title").endswith("/cube-0001.zarr")

        # Kernel > Interrupt during a blocking run: one line of ours and the
        # KeyboardInterrupt, no traceback through the library.
        interrupted = code_cell(page, INTERRUPTED)
        wait_for_text(interrupted.locator(".widget-vbox"), "STARTED")
        menu(page, "Kernel", "Interrupt Kernel")
        output = wait_for_text(
            interrupted.locator(".jp-OutputArea"), "KeyboardInterrupt", 10
        )
        wait_for_text(interrupted.locator(".jp-OutputArea"), ALL_CANCELLED, 5)
        assert "preload: interrupted, 4 jobs cancelled" in output
        assert "executor_handle.py" not in output
        assert "kernel.py" not in output

        assert "Error displaying widget" not in page.content()
