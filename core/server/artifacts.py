"""Content-addressed artifacts: uploads, ``.tflite`` files and reports, each
stored once under its SHA-256 (``artifacts/ab/abcd…``), read-only (0400) and
checked against that hash before it is served or reused: a flipped byte or a
cut-short file is an error, never the wrong file."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from core.errors import CorruptArtifactError, JobError, StudioError
from core.server.records import ArtifactRef

__all__ = ["ArtifactStore", "ArtifactWriter", "too_large_upload", "HEX64"]

log = logging.getLogger("tflite_studio.artifacts")

HEX64 = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 1 << 20


def _hash_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def _stamp(path: Path) -> tuple[int, int, int, int]:
    """What changes when a file's bytes change (ctime cannot be set back)."""
    st = path.stat()
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class ArtifactStore:
    """The artifact folder: ``ab/<sha>`` files, and ``tmp/`` for writes in progress."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.tmp_dir = folder / "tmp"
        folder.mkdir(mode=0o700, exist_ok=True)
        os.chmod(folder, 0o700)
        self._checked: dict[str, tuple[int, int, int, int]] = {}
        self._lock = threading.Lock()

    def matches(self, sha: str, path: Path | None = None) -> bool:
        """Whether the stored file still hashes to ``sha`` (a file unchanged
        since its last check is not hashed again)."""
        p = path or self.path(sha)
        try:
            stamp = _stamp(p)
            with self._lock:
                if self._checked.get(sha) == stamp:
                    return True
            ok = _hash_file(p) == sha
        except OSError:
            return False
        if ok:
            with self._lock:
                self._checked[sha] = stamp
        return ok

    def verified(self, sha: str) -> Path:
        """The path of a stored artifact whose bytes match its id; else
        ``CorruptArtifactError`` (and a log line), never the file."""
        p = self.path(sha)
        if not p.is_file():
            raise JobError(
                "This file is no longer stored.", "Run the job again.", details={"code": "gone"}
            )
        if not self.matches(sha, p):
            log.error("artifact %s does not match its SHA-256: not served", sha)
            raise CorruptArtifactError(
                "A stored file was damaged or changed after it was written, so it is not served.",
                "Run the job again to make it anew; the admin should check the data folder's disk.",
                details={"code": "corrupt", "sha": sha},
            )
        return p

    def read(self, sha: str) -> bytes:
        return self.verified(sha).read_bytes()

    def path(self, sha: str) -> Path:
        if not (isinstance(sha, str) and HEX64.match(sha)):
            raise JobError("That is not an artifact id.", "Use a link from the job page.")
        return self.folder / sha[:2] / sha

    def has(self, sha: str | None) -> bool:
        return bool(sha) and self.path(str(sha)).is_file()

    def writer(
        self, max_bytes: int | None = None, too_large: Callable[[int], StudioError] | None = None
    ) -> ArtifactWriter:
        return ArtifactWriter(self, max_bytes, too_large)

    def put(
        self, source: str | os.PathLike[str] | bytes, max_bytes: int | None = None
    ) -> tuple[str, int]:
        """Store bytes or a file once; returns (sha256, size)."""
        with self.writer(max_bytes) as w:
            if isinstance(source, bytes):
                w.write(source)
            else:
                with open(source, "rb") as f:
                    for chunk in iter(lambda: f.read(_CHUNK), b""):
                        w.write(chunk)
            ref = w.commit()
        return ref.sha, ref.size

    def stored(self) -> Iterator[str]:
        """The id of every stored artifact."""
        for sub in self.folder.glob("[0-9a-f][0-9a-f]"):
            for p in sub.iterdir():
                if HEX64.match(p.name):
                    yield p.name


class ArtifactWriter:
    """Write one artifact in chunks, hashing as it goes; ``commit`` files it
    under its hash. Refuses to grow past ``max_bytes``."""

    def __init__(
        self,
        store: ArtifactStore,
        max_bytes: int | None = None,
        too_large: Callable[[int], StudioError] | None = None,
    ) -> None:
        self.store = store
        self.max_bytes = max_bytes
        self._too_large = too_large
        store.tmp_dir.mkdir(parents=True, exist_ok=True)
        self.tmp = store.tmp_dir / uuid.uuid4().hex
        self._f = open(self.tmp, "wb")  # noqa: SIM115  (lives across write() calls)
        self._h = hashlib.sha256()
        self.size = 0

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.max_bytes is not None and self.size > self.max_bytes:
            self.abort()
            if self._too_large is not None:
                raise self._too_large(self.size)
            raise JobError(
                f"The file is larger than the {self.max_bytes >> 20} MiB limit.",
                "Upload a smaller file, or ask the admin to raise TFLITE_STUDIO_MAX_UPLOAD_MB.",
                details={"code": "too_large", "limit_mb": self.max_bytes >> 20},
            )
        self._h.update(chunk)
        self._f.write(chunk)

    def commit(self, name: str = "") -> ArtifactRef:
        self._f.close()
        sha = self._h.hexdigest()
        dest = self.store.path(sha)
        dest.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if dest.exists() and self.store.matches(sha, dest):
            self.tmp.unlink(missing_ok=True)
            try:
                os.utime(dest)  # fresh again: `cleanup` keeps recently stored files
            except OSError:
                pass
        else:
            if dest.exists():  # a damaged copy must not stay for every later job
                log.error("artifact %s did not match its SHA-256: replaced", sha)
            os.chmod(self.tmp, 0o400)
            os.replace(self.tmp, dest)
        return ArtifactRef(sha, self.size, name)

    def abort(self) -> None:
        if not self._f.closed:
            self._f.close()
        self.tmp.unlink(missing_ok=True)

    def __enter__(self) -> ArtifactWriter:
        return self

    def __exit__(self, *exc: Any) -> None:
        if exc[0] is not None:
            self.abort()


def too_large_upload(limit_mb: int) -> Callable[[int], StudioError]:
    """The error for an upload over ``limit_mb`` (given the size seen so far)."""

    def make(size: int) -> StudioError:
        return JobError(
            f"The upload is over the {limit_mb} MiB limit"
            + (f" ({size / (1 << 20):.0f} MiB or more)." if size else "."),
            "Upload a smaller model, or ask the admin to raise TFLITE_STUDIO_MAX_UPLOAD_MB.",
            details={"code": "too_large", "limit_mb": limit_mb},
        )

    return make
