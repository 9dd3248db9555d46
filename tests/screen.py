"""A tiny terminal: enough of ANSI to replay what a live display wrote."""

from __future__ import annotations

import re

CONTROL = re.compile(r"\x1b\[(\d*)([A-Za-z])")


def replay(output: str) -> list[str]:
    """The lines on screen after *output*: handles CR, LF, ESC[nF, ESC[J."""
    lines = [""]
    row = 0
    pos = 0
    output = output.replace("\r\n", "\n")
    for match in CONTROL.finditer(output + "\x1b[0Z"):
        for char in output[pos : match.start()]:
            if char == "\n":
                row += 1
                if row == len(lines):
                    lines.append("")
            elif char == "\r":
                lines[row] = ""
            else:
                lines[row] += char
        pos = match.end()
        count, code = int(match.group(1) or 1), match.group(2)
        if code == "F":  # cursor up, to the start of the line
            row = max(0, row - count)
            lines[row] = ""
        elif code == "J":  # clear to the end of the screen
            del lines[row + 1 :]
            lines[row] = ""
    return [line for line in lines if line]
