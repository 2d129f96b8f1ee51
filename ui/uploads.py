"""From a browser upload (or a sample file) to stored artifacts and jobs.

An upload is streamed into the artifact store in 1 MiB chunks (never
``getvalue()``), hashed on the way, checked with ``core.model.archive.detect_kind``
under the name the person gave it, and stored once by its SHA-256. Session state
then holds only a small ``ModelRef`` dict (ids and names), never the bytes; jobs
reference the stored artifact (``jobs.ArtifactRef``), so converting the same
upload again copies nothing.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

from core.model.archive import detect_kind
from core.options import ConversionOptions
from core.server import jobs

__all__ = [
    "FileRef",
    "ModelRef",
    "store_file",
    "store_model",
    "model_from_job",
    "submit_conversion",
    "submit_inspection",
    "identical_conversion",
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
            sha=d["sha"],
            name=d["name"],
            size=int(d["size"]),
            kind=d["kind"],
            calibration=FileRef(**cal) if isinstance(cal, dict) else None,
            signature_keys=tuple(d.get("signature_keys") or ()),
            sample=d.get("sample"),
        )


def _safe_name(name: str) -> str:
    return jobs.safe_model_name(os.path.basename(str(name).replace("\\", "/")) or "upload")


def _limit() -> int:
    return jobs.store().settings.max_upload_mb << 20


def _stream(src: IO[bytes], name: str) -> jobs.ArtifactRef:
    """Copy a file-like upload into the store in 1 MiB chunks (no ``getvalue()``)."""
    if hasattr(src, "seek"):
        src.seek(0)
    with jobs.store().artifact_writer(max_bytes=_limit()) as w:
        for chunk in iter(lambda: src.read(_CHUNK), b""):
            w.write(chunk)
        return w.commit(name)


def _put(src: IO[bytes] | Path, name: str | None) -> jobs.ArtifactRef:
    if isinstance(src, (str, os.PathLike)):
        p = Path(src)
        sha, size = jobs.store().put_artifact(p, max_bytes=_limit())
        return jobs.ArtifactRef(sha, size, _safe_name(name or p.name))
    return _stream(src, _safe_name(name or getattr(src, "name", "upload")))


@contextmanager
def _named(sha: str, name: str) -> Iterator[Path]:
    """A stored file under its given name (format detection reads names too)."""
    root = jobs.store().root / "uploads"
    root.mkdir(parents=True, exist_ok=True)
    d = Path(tempfile.mkdtemp(dir=root))
    try:
        p = d / _safe_name(name)
        os.symlink(jobs.artifact_path(sha), p)
        yield p
    finally:
        shutil.rmtree(d, ignore_errors=True)


def store_file(src: IO[bytes] | Path, name: str | None = None) -> FileRef:
    """Store an uploaded file (file-like, read in chunks) or a local file."""
    ref = _put(src, name)
    return FileRef(ref.sha, ref.name, ref.size)


def store_model(
    src: IO[bytes] | Path,
    name: str | None = None,
    *,
    calibration: FileRef | None = None,
    signature_keys: tuple[str, ...] = (),
    sample: str | None = None,
) -> ModelRef:
    """Store a model upload and check it is a format we read.

    Raises ModelFormatError / UnpackError (with a hint) for anything else, and
    JobError when it is over the upload limit."""
    ref = _put(src, name)
    with _named(ref.sha, ref.name) as probe:
        kind = detect_kind(probe)
    return ModelRef(ref.sha, ref.name, ref.size, kind, calibration, tuple(signature_keys), sample)


def model_from_job(job: jobs.Job) -> ModelRef:
    """The model a job ran on, so a shared link can convert it again."""
    files = job.params.get("files") or {}
    cal = files.get("calibration")
    conv = (job.result or {}).get("conversion") or {}
    kind = (
        "tflite"
        if job.kind is jobs.JobKind.INSPECT
        else str(
            job.params.get("source_format")
            or {"keras": "keras", "h5": "h5"}.get(conv.get("input_kind", ""), "zip")
        )
    )
    return ModelRef(
        sha=job.input_sha,
        name=job.model_name,
        size=job.input_size,
        kind=kind,
        calibration=FileRef(cal["sha"], cal["name"], int(cal["size"])) if cal else None,
        signature_keys=tuple(conv.get("signature_keys") or ()),
    )


def _ref(f: FileRef | ModelRef) -> jobs.ArtifactRef:
    return jobs.ArtifactRef(f.sha, f.size, f.name)


def _calibration_for(options: ConversionOptions, calibration: FileRef | None) -> FileRef | None:
    """Calibration data goes with a job only for the presets that use it."""
    return calibration if calibration is not None and options.preset.needs_calibration else None


def submit_conversion(
    model: ModelRef, options: ConversionOptions, *, user: str, calibration: FileRef | None = None
) -> jobs.Job:
    """Queue a conversion of the stored ``model`` (nothing is copied again); an
    identical one of this person's still queued or running is the answer."""
    cal = _calibration_for(options, calibration)
    st = jobs.store()
    admitted = st.intake.admit_model(
        _ref(model),
        model_name=model.name,
        options=options,
        user=user,
        calibration=_ref(cal) if cal else None,
        dedupe=True,
    )
    return st.get(admitted.job_id)


def identical_conversion(
    model: ModelRef, options: ConversionOptions, *, user: str, calibration: FileRef | None = None
) -> jobs.Job | None:
    """This person's queued or running conversion that ``submit_conversion``
    would answer with, else None."""
    cal = _calibration_for(options, calibration)
    st = jobs.store()
    job_id = st.intake.identical_conversion(
        _ref(model),
        model_name=model.name,
        options=options,
        user=user,
        calibration=_ref(cal) if cal else None,
    )
    return st.get(job_id) if job_id else None


def submit_inspection(model: ModelRef, *, user: str) -> jobs.Job:
    st = jobs.store()
    admitted = st.intake.admit(
        jobs.JobKind.INSPECT, _ref(model), model_name=model.name, user=user, dedupe=True
    )
    return st.get(admitted.job_id)


def resubmit(job: jobs.Job, *, user: str, **changes: Any) -> jobs.Job:
    """Run a finished job again with some options changed (the retry buttons)."""
    model = model_from_job(job)
    if job.kind is jobs.JobKind.INSPECT:
        return submit_inspection(model, user=user)
    d = dict(job.params.get("options") or {})
    d.update(changes)
    d["calibration_path"] = None
    d["calibration_source"] = "none"
    options = ConversionOptions.from_dict(d)
    return submit_conversion(model, options, user=user, calibration=model.calibration)
