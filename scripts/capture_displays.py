"""Capture what the displays look like, for docs/displays.md.

    python scripts/capture_displays.py OUT_DIR [--no-browser]

Writes OUT_DIR/terminal-running.txt and terminal.txt: screens of `preload
demo` run in an 80-column pseudo-terminal (its ANSI output replayed) half
way through its blocking run and at the end, and OUT_DIR/log.txt: the same
demo's output in a pipe. Then serves tests/browser_panels.ipynb with
JupyterLab on 127.0.0.1, runs it in Debian's Chromium (Playwright) and
saves screenshots of its panels: OUT_DIR/jupyterlab-*.png.
"""

from __future__ import annotations

import argparse
import os
import pty
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from screen import replay  # noqa: E402

DEMO = [
    sys.executable,
    "-m",
    "preload.cli",
    "demo",
    "--duration",
    "2",
    "--cancel-after",
    "1.5",
]


def in_terminal(columns: int) -> tuple[str, str]:
    """The screen half way through the blocking run, and the final screen."""
    controller, terminal = pty.openpty()
    env = {**os.environ, "COLUMNS": str(columns), "LINES": "40"}
    proc = subprocess.Popen(DEMO, stdout=terminal, stderr=terminal, env=env)
    os.close(terminal)
    chunks = []
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(controller)
    proc.wait()
    output = b"".join(chunks).decode()
    redraws = [i for i in range(len(output)) if output.startswith("\x1b[J", i)]
    # Up to the cursor-up code of the redraw half way: the table it replaces.
    middle = output[: output.rfind("\x1b[", 0, redraws[len(redraws) // 2])]
    return ("\n".join(replay(text)) + "\n" for text in (middle, output))


def in_pipe() -> str:
    return subprocess.run(DEMO, capture_output=True, text=True, check=True).stdout


def jupyterlab_pngs(out: Path) -> None:
    """Screenshots of the panels of tests/browser_panels.ipynb in JupyterLab,
    in Chromium: mid-run, final, cancelled, failed, and narrow (a 900 px
    window with the file browser open)."""
    from browser import (
        BACKGROUND,
        COMPLETED,
        INTERRUPTED,
        MIXED,
        chromium_page,
        code_cell,
        jupyter_lab,
        menu,
        open_notebook,
        panel,
        wait_for_text,
    )

    def shoot(locator, name: str) -> None:
        locator.scroll_into_view_if_needed()
        locator.screenshot(path=out / name)

    with (
        tempfile.TemporaryDirectory() as work,
        jupyter_lab(Path(work)) as url,
        chromium_page(1280, 1000) as page,
    ):
        open_notebook(page, url)
        menu(page, "Run", "Run All Cells")
        shoot_final = panel(page, COMPLETED)
        wait_for_text(shoot_final, "4 jobs: 4 COMPLETED")
        shoot(shoot_final, "jupyterlab-final.png")
        background = panel(page, BACKGROUND)
        wait_for_text(background, "Step #3")
        shoot(background, "jupyterlab-running.png")
        background.get_by_role("button", name="Cancel").click()
        wait_for_text(background, "4 jobs: 4 CANCELLED")
        shoot(background, "jupyterlab-cancelled.png")
        blocking = panel(page, BACKGROUND + 1)
        wait_for_text(blocking, "STARTED")
        blocking.get_by_role("button", name="Cancel").click()
        mixed = panel(page, MIXED)
        wait_for_text(mixed, "1 FAILED")
        wait_for_text(mixed, "4 jobs: 3 COMPLETED, 1 FAILED")
        shoot(mixed, "jupyterlab-failed.png")
        interrupted = code_cell(page, INTERRUPTED)
        wait_for_text(interrupted.locator(".widget-vbox"), "STARTED")
        menu(page, "Kernel", "Interrupt Kernel")
        wait_for_text(interrupted.locator(".jp-OutputArea"), "KeyboardInterrupt")
        shoot(interrupted.locator(".jp-OutputArea"), "jupyterlab-interrupted.png")
        page.set_viewport_size({"width": 900, "height": 1000})
        time.sleep(0.5)  # JupyterLab lays the panels out again
        shoot(panel(page, MIXED), "jupyterlab-narrow.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", type=Path)
    parser.add_argument(
        "--no-browser", action="store_true", help="skip the JupyterLab screenshots"
    )
    args = parser.parse_args()
    args.out = args.out.resolve()
    args.out.mkdir(parents=True, exist_ok=True)
    running, final = in_terminal(columns=80)
    (args.out / "terminal-running.txt").write_text(running)
    (args.out / "terminal.txt").write_text(final)
    time.sleep(0.1)
    (args.out / "log.txt").write_text(in_pipe())
    if not args.no_browser:
        jupyterlab_pngs(args.out)


if __name__ == "__main__":
    main()
