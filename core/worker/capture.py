"""What a C library prints: runtimes (LiteRT, TFLite Micro) write their
reasons to the process's stderr, not into the exception, so a run reads
them from there."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import IO

__all__ = ["CaptureFd"]


class CaptureFd:
    """Send a C-level fd into a file for a moment and read what was written.
    With ``path``, the file is kept (appended to): if the runtime kills the
    process meanwhile, its last words are still there for the caller."""

    def __init__(self, fd: int, path: Path | None = None) -> None:
        self.fd = fd
        self.path = path
        self.text = ""

    def __enter__(self) -> CaptureFd:
        sys.stderr.flush()
        self.saved = os.dup(self.fd)
        self.file: IO[bytes] = (
            open(self.path, "ab+") if self.path is not None else tempfile.TemporaryFile()
        )
        self.start = self.file.seek(0, os.SEEK_END)
        os.dup2(self.file.fileno(), self.fd)
        return self

    def __exit__(self, *exc: object) -> None:
        os.dup2(self.saved, self.fd)
        os.close(self.saved)
        self.file.seek(self.start)
        self.text = self.file.read().decode("utf-8", "replace")
        self.file.close()
        sys.stderr.write(self.text)  # keep it in the log the parent sees
