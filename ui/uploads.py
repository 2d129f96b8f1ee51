"""From a browser upload (or a sample file) to stored artifacts and jobs.

An upload is copied to disk in 1 MiB chunks (never ``getvalue()``), named as the
person named it so format detection and messages use that name, checked with
``core.archive.detect_kind`` and stored once by its SHA-256. Session state then
holds only a small ``ModelRef`` dict (ids and names), never the bytes.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

from core import jobs
from core.archive import detect_kind
from core.options import ConversionOptions

__all__ = [
    "FileRef",
    "ModelRef",
    "store_file",
    "store_model",
    "model_from_job",
    "submit_conversion",
    "submit_inspection",
    "resubmit",
    "KIND_WORDS",
]

_CHUNK = 1 << 20

KIND_WORDS = {
    "zip": "SavedModel (zip)",
    "tar": "SavedModel (tar)",
    "saved_model_dir": "SavedModel folder",
    "keras": "Keras file",
    "h5": "Keras HDF5 file",
    "tflite": "TFLite model",
}


@dataclass(frozen=True)
class FileRef:
    """A stored file: its content id, the name it was given, its size."""

    sha: str
    name: str
    size: int


@dataclass(frozen=True)
class ModelRef:
    sha: str
    name: str
    size: int
    kind: str  # detect_kind(): zip | tar | keras | h5 | tflite
    calibration: FileRef | None = None
    signature_keys: tuple[str, ...] = ()
    sample: str | None = None  # sample file name, when picked from the samples

    @property
    def kind_words(self) -> str:
        return KIND_WORDS.get(self.kind, self.kind)

    @property
    def is_tflite(self) -> bool:
        return self.kind == "tflite"

    def to_state(self) -> dict[str, Any]:
        d = asdict(self)
        d["signature_keys"] = list(self.signature_keys)
        return d

    @classmethod
    def from_state(cls, d: dict[str, Any] | None) -> ModelRef | None:
        if not isinstance(d, dict):
            return None
        cal = d.get("calibration")
        return cls(
            sha=d["sha"], name=d["name"], size=int(d["size"]), kind=d["kind"],
            calibration=FileRef(**cal) if isinstance(cal, dict) else None,
            signature_keys=tuple(d.get("signature_keys") or ()),
            sample=d.get("sample"),
        )


def _safe_name(name: str) -> str:
    base = os.path.basename(str(name).replace("\\", "/")) or "upload"
    base = re.sub(r"[^\w.\- ]+", "_", base).strip(" .") or "upload"
    return base[:200]


@contextmanager
def _scratch() -> Iterator[Path]:
    root = jobs.store().root / "uploads"
    root.mkdir(parents=True, exist_ok=True)
    d = Path(tempfile.mkdtemp(dir=root))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _spool(src: IO[bytes], dest: Path) -> None:
    if hasattr(src, "seek"):
        src.seek(0)
    with open(dest, "wb") as out:
        shutil.copyfileobj(src, out, _CHUNK)


def store_file(src: IO[bytes] | Path, name: str | None = None) -> FileRef:
    """Store an uploaded file (file-like, read in chunks) or a local file."""
    if isinstance(src, (str, os.PathLike)):
        p = Path(src)
        sha, size = jobs.put_artifact(p)
        return FileRef(sha, _safe_name(name or p.name), size)
    fname = _safe_name(name or getattr(src, "name", "upload"))
    with _scratch() as d:
        path = d / fname
        _spool(src, path)
        sha, size = jobs.put_artifact(path)
    return FileRef(sha, fname, size)


def store_model(src: IO[bytes] | Path, name: str | None = None, *,
                calibration: FileRef | None = None, signature_keys: tuple[str, ...] = (),
                sample: str | None = None) -> ModelRef:
    """Store a model upload after checking it is a format we read.

    Raises ModelFormatError / UnpackError (with a hint) for anything else."""
    if isinstance(src, (str, os.PathLike)):
        p = Path(src)
        kind = detect_kind(p)
        sha, size = jobs.put_artifact(p)
        fname = _safe_name(name or p.name)
    else:
        fname = _safe_name(name or getattr(src, "name", "upload"))
        with _scratch() as d:
            path = d / fname
            _spool(src, path)
            kind = detect_kind(path)
            sha, size = jobs.put_artifact(path)
    return ModelRef(sha, fname, size, kind, calibration, tuple(signature_keys), sample)


def model_from_job(job: jobs.Job) -> ModelRef:
    """The model a job ran on, so a shared link can convert it again."""
    files = job.params.get("files") or {}
    cal = files.get("calibration")
    conv = (job.result or {}).get("conversion") or {}
    kind = "tflite" if job.kind is jobs.JobKind.INSPECT else {
        "saved_model": "zip", "keras": "keras", "h5": "h5"}.get(conv.get("input_kind", ""), "zip")
    return ModelRef(
        sha=job.input_sha, name=job.model_name, size=job.input_size, kind=kind,
        calibration=FileRef(cal["sha"], cal["name"], int(cal["size"])) if cal else None,
        signature_keys=tuple(conv.get("signature_keys") or ()),
    )


@contextmanager
def _named(ref: FileRef) -> Iterator[Path]:
    """The stored file under its original name (format detection uses names)."""
    with _scratch() as d:
        p = d / _safe_name(ref.name)
        os.symlink(jobs.artifact_path(ref.sha), p)
        yield p


def submit_conversion(model: ModelRef, options: ConversionOptions, *, user: str,
                      calibration: FileRef | None = None) -> jobs.Job:
    """Queue a conversion of ``model`` with ``options`` (+ calibration data)."""
    opts = options.to_dict()
    if calibration is not None and options.preset.needs_calibration:
        opts["calibration_path"] = _safe_name(calibration.name)
        opts["calibration_source"] = "none"  # guessed again from the name
        ConversionOptions.from_dict(opts)  # validate before queueing
        with _named(calibration) as cal_path:
            return jobs.submit(jobs.JobKind.CONVERT, jobs.artifact_path(model.sha),
                               model_name=model.name, params={"options": opts}, user=user,
                               extra_files={"calibration": cal_path})
    opts["calibration_path"] = None
    opts["calibration_source"] = "none"
    return jobs.submit(jobs.JobKind.CONVERT, jobs.artifact_path(model.sha),
                       model_name=model.name, params={"options": opts}, user=user)


def submit_inspection(model: ModelRef, *, user: str) -> jobs.Job:
    return jobs.submit(jobs.JobKind.INSPECT, jobs.artifact_path(model.sha),
                       model_name=model.name, params={}, user=user)


def resubmit(job: jobs.Job, *, user: str, **changes: Any) -> jobs.Job:
    """Run a finished job again with some options changed (the retry buttons)."""
    model = model_from_job(job)
    if job.kind is jobs.JobKind.INSPECT:
        return submit_inspection(model, user=user)
    d = {k: v for k, v in dict(job.params.get("options") or {}).items()}
    d.update(changes)
    d["calibration_path"] = None
    d["calibration_source"] = "none"
    options = ConversionOptions.from_dict(d)
    return submit_conversion(model, options, user=user, calibration=model.calibration)
