"""Capture what the displays look like, for docs/displays.md.

    python scripts/capture_displays.py OUT_DIR [--embed-js PATH --chromium PATH]

Writes OUT_DIR/terminal-running.txt and terminal.txt: screens of `preload
demo` run in a pseudo-terminal (its ANSI output replayed) half way through
its blocking run and at the end, and OUT_DIR/log.txt: the same demo's
output in a pipe. With --embed-js (dist/embed.js of the npm package
@jupyter-widgets/html-manager 1.x) and --chromium, also runs the demo
notebook in a kernel and renders the blocking cell's panel in headless
Chromium to OUT_DIR/widget.png.
"""

from __future__ import annotations

import argparse
import json
import os
import pty
import subprocess
import sys
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


def in_terminal(columns: int = 110) -> tuple[str, str]:
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


def widget_png(out: Path, embed_js: Path, chromium: str) -> None:
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(ROOT / "docs" / "examples" / "preload-demo.ipynb", as_version=4)
    NotebookClient(nb, kernel_name="python3", store_widget_state=True).execute()
    view_type = "application/vnd.jupyter.widget-view+json"
    source = "handle = ExecutorPreloadHandle(data_ids, preload_data=preload_data)"
    [cell] = [c for c in nb.cells if c.get("source") == source]
    [view] = [o.data[view_type] for o in cell.outputs if view_type in o.get("data", {})]
    state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]
    page = out / "widget.html"
    page.write_text(
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<script src='{embed_js.resolve().as_uri()}'></script>"
        "<script type='application/vnd.jupyter.widget-state+json'>"
        f"{json.dumps(state)}</script></head>"
        "<body style='font-family: sans-serif; margin: 16px'>"
        f"<script type='{view_type}'>{json.dumps(view)}</script>"
        "</body></html>"
    )
    subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={out / '.chromium'}",
            "--hide-scrollbars",
            "--window-size=900,330",
            "--virtual-time-budget=5000",
            f"--screenshot={out / 'widget.png'}",
            page.as_uri(),
        ],
        check=True,
        capture_output=True,
    )
    page.unlink()
    subprocess.run(["rm", "-rf", str(out / ".chromium")], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", type=Path)
    parser.add_argument("--embed-js", type=Path)
    parser.add_argument("--chromium")
    args = parser.parse_args()
    args.out = args.out.resolve()
    args.out.mkdir(parents=True, exist_ok=True)
    running, final = in_terminal()
    (args.out / "terminal-running.txt").write_text(running)
    (args.out / "terminal.txt").write_text(final)
    time.sleep(0.1)
    (args.out / "log.txt").write_text(in_pipe())
    if args.embed_js and args.chromium:
        widget_png(args.out, args.embed_js, args.chromium)


if __name__ == "__main__":
    main()
