"""The progress bar of the management commands, redrawn in place on one line of stderr:

    [################........................] 40000/100000 entries

A caller passes it as a service's `progress` callback and calls `end()` when the work is done.
"""

from __future__ import annotations

import sys
from typing import TextIO

from django.core.management.base import OutputWrapper

WIDTH = 40


class ProgressBar:
    def __init__(self, unit: str = "", stream: TextIO | OutputWrapper | None = None):
        self.unit = unit
        self.stream = stream if stream is not None else sys.stderr
        self._drawn = 0

    def __call__(self, done: int, total: int, label: str = "") -> None:
        filled = int(WIDTH * done / total) if total else WIDTH
        text = f"[{'#' * filled}{'.' * (WIDTH - filled)}] {done}/{total} {label or self.unit}".rstrip()
        # Padded to the last line drawn: a shorter label must not leave the end of a longer one.
        self._write("\r" + text.ljust(self._drawn))
        self._drawn = len(text)

    def end(self) -> None:
        if self._drawn:
            self._write("\n")
            self._drawn = 0

    def _write(self, text: str) -> None:
        if isinstance(self.stream, OutputWrapper):
            # A command's self.stderr ends every write with a newline, and colours it as an error.
            self.stream.write(text, style_func=lambda plain: plain, ending="")
        else:
            self.stream.write(text)
        self.stream.flush()
