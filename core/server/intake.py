"""Taking a job in: the per-user and queue limits, storing its uploads as
artifacts, writing its record, and which job an upload becomes (a ``.tflite``
is inspected, a model is converted).

With ``dedupe=True`` (the app and the HTTP API) an identical submission (same
person, kind, input, options and files) while the first one is still queued or
running is answered with that job (``Admission.reused``), not a second run: a
double click, a page reloaded mid-submit or a CI retry queue one job."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import JobError, StudioError
from core.model.naming import safe_model_name
from core.server.artifacts import ArtifactStore, too_large_upload
from core.server.db import JobDB
from core.server.records import ACTIVE, ArtifactRef, JobKind, JobStatus, safe_user
from core.server.settings import Settings

__all__ = ["Intake", "Upload", "Admission", "submission_key"]

Upload = str | os.PathLike[str] | bytes | ArtifactRef
# params that do not change what a job computes (derived, or bookkeeping)
_NOT_IN_KEY = ("files", "source_format", "dedupe_key")


@dataclass(frozen=True)
class Admission:
    """The job a submission became: a new one, or the identical job already
    queued or running (``reused``)."""

    job_id: str
    reused: bool = False


def submission_key(
    kind: JobKind, input_sha: str, model_name: str, params: dict[str, Any], files: dict[str, str]
) -> str:
    """What makes two submissions the same job: kind, input, name, options and
    the content of every extra file (``files``: key -> SHA-256)."""
    body = {
        "kind": JobKind(kind).value,
        "input": input_sha,
        "name": safe_model_name(model_name),
        "params": {k: v for k, v in params.items() if k not in _NOT_IN_KEY},
        "files": dict(sorted(files.items())),
    }
    blob = json.dumps(body, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:32]


def _calibration_name(calibration: Upload, given: str) -> str:
    if given:
        name = given
    elif isinstance(calibration, ArtifactRef):
        name = calibration.name
    elif isinstance(calibration, bytes):
        name = ""
    else:
        name = Path(calibration).name
    return safe_model_name(name or "calibration.npz")


def _conversion_options(options: Any, calibration_name: str) -> dict[str, Any]:
    """Checked options (raises ``OptionsError``), calibration by file name."""
    from core.options import ConversionOptions

    if isinstance(options, ConversionOptions):
        opts = options.to_dict()
    else:
        opts = dict(options or {})
    if calibration_name:
        opts["calibration_path"] = calibration_name
    else:
        opts.pop("calibration_path", None)
        opts.pop("calibration_source", None)
    return ConversionOptions.from_dict(opts).to_dict()


class Intake:
    """Submits jobs to one store: checks, stores, records, enqueues."""

    def __init__(
        self,
        settings: Settings,
        db: JobDB,
        artifacts: ArtifactStore,
        enqueue: Callable[[str], None],
    ) -> None:
        self.settings = settings
        self.db = db
        self.artifacts = artifacts
        self.enqueue = enqueue

    @property
    def limit(self) -> int:
        return self.settings.max_upload_mb << 20

    @property
    def too_large(self) -> Callable[[int], StudioError]:
        return too_large_upload(self.settings.max_upload_mb)

    def check_limits(self, user: str, db: sqlite3.Connection | None = None) -> None:
        """Raise ``JobError`` if ``user`` may not queue one more job now."""
        s = self.settings
        if self.db.count(ACTIVE, user=user, db=db) >= s.max_jobs_per_user:
            raise JobError(
                f"You already have {s.max_jobs_per_user} jobs queued or running.",
                "Wait for one to finish, or cancel one in History.",
                details={"code": "too_many_jobs", "limit": s.max_jobs_per_user},
            )
        if self.db.count((JobStatus.QUEUED,), db=db) >= s.max_queue:
            raise JobError(
                f"The queue is full ({s.max_queue} jobs waiting).",
                "Try again in a few minutes.",
                details={"code": "queue_full", "limit": s.max_queue},
            )

    def store_upload(self, src: Upload, name: str = "") -> ArtifactRef:
        """The upload as an artifact (already stored, bytes or a file), within the size limit."""
        limit, too_large = self.limit, self.too_large
        if isinstance(src, ArtifactRef):
            if not self.artifacts.has(src.sha):
                raise JobError("The uploaded file is gone from the store.", "Upload it again.")
            if src.size > limit:
                raise too_large(src.size)
            return src
        if isinstance(src, bytes):
            if len(src) > limit:
                raise too_large(len(src))
        else:
            path = Path(src)
            if path.is_dir():
                raise JobError(
                    f"{path.name} is a folder.", "Zip the SavedModel folder and upload the .zip."
                )
            size = path.stat().st_size
            if size > limit:
                raise too_large(size)
            name = name or path.name
        sha, size = self.artifacts.put(src, max_bytes=limit)
        return ArtifactRef(sha, size, name)

    def identical(self, user: str, key: str) -> str | None:
        """The id of ``user``'s queued or running job with this submission key."""
        for job in self.db.select(limit=1000, user=safe_user(user), status=ACTIVE):
            if job.params.get("dedupe_key") == key:
                return job.id
        return None

    def admit(
        self,
        kind: JobKind,
        upload: Upload,
        *,
        model_name: str,
        params: dict[str, Any] | None = None,
        user: str = "local",
        extra_files: dict[str, Upload] | None = None,
        dedupe: bool = False,
    ) -> Admission:
        """Queue a job; with ``dedupe``, answer with the identical one still
        queued or running instead. Raises ``JobError`` when a limit is hit."""
        kind = JobKind(kind)
        user = safe_user(user)
        try:
            self.check_limits(user)  # fail fast, before storing anything
        except JobError:
            if not dedupe:
                raise  # else an identical job may still be the answer
        ref = self.store_upload(upload)
        params = dict(params or {})
        files: dict[str, dict[str, Any]] = {}
        for key, src in (extra_files or {}).items():
            fref = self.store_upload(src, name=src.name if isinstance(src, ArtifactRef) else "")
            files[key] = {
                "sha": fref.sha,
                "size": fref.size,
                "name": safe_model_name(fref.name or key),
            }
        params["files"] = files
        same_as = submission_key(
            kind, ref.sha, model_name, params, {k: str(f["sha"]) for k, f in files.items()}
        )
        params["dedupe_key"] = same_as
        job_id = uuid.uuid4().hex[:16]
        with self.db.transaction() as db:
            same = self.identical(user, same_as) if dedupe else None  # inside the transaction
            if same is None:
                self.check_limits(user, db)  # again, atomically with the insert
                self.db.insert(db, job_id, kind, user, safe_model_name(model_name), ref, params)
        if same is not None:
            return Admission(same, reused=True)
        self.enqueue(job_id)
        return Admission(job_id)

    def detect_kind(self, ref: ArtifactRef, name: str) -> str:
        """The upload's format, read under its own name (the name decides some formats)."""
        from core.model.archive import detect_kind

        probe_dir = self.artifacts.tmp_dir / f"probe-{uuid.uuid4().hex}"
        probe_dir.mkdir(parents=True)
        try:
            probe = probe_dir / name
            os.symlink(self.artifacts.path(ref.sha), probe)
            return detect_kind(probe)
        finally:
            shutil.rmtree(probe_dir, ignore_errors=True)

    def admit_model(
        self,
        upload: Upload,
        *,
        model_name: str,
        options: Any = None,
        user: str = "local",
        calibration: Upload | None = None,
        calibration_name: str = "",
        dedupe: bool = False,
    ) -> Admission:
        """Queue the right job for an upload (see ``JobStore.submit_model``),
        telling whether the answer is an identical job already queued or running."""
        user = safe_user(user)
        name = safe_model_name(model_name)
        if not dedupe:
            self.check_limits(user)  # fail fast, before storing anything
        ref = self.store_upload(upload, name=name)
        kind = self.detect_kind(ref, name)
        if kind == "tflite":
            return self.admit(JobKind.INSPECT, ref, model_name=name, user=user, dedupe=dedupe)
        opts, extra = self._conversion(options, calibration, calibration_name)
        return self.admit(
            JobKind.CONVERT,
            ref,
            model_name=name,
            user=user,
            params={"options": opts, "source_format": kind},
            extra_files=extra,
            dedupe=dedupe,
        )

    def _conversion(
        self, options: Any, calibration: Upload | None, calibration_name: str
    ) -> tuple[dict[str, Any], dict[str, Upload]]:
        """Checked options and the calibration file, as a conversion job holds them."""
        cal_name = "" if calibration is None else _calibration_name(calibration, calibration_name)
        opts = _conversion_options(options, cal_name)
        extra: dict[str, Upload] = {}
        if calibration is not None:
            cref = (
                calibration
                if isinstance(calibration, ArtifactRef)
                else self.store_upload(calibration, name=cal_name)
            )
            extra["calibration"] = ArtifactRef(cref.sha, cref.size, cal_name)
        return opts, extra

    def identical_conversion(
        self,
        upload: ArtifactRef,
        *,
        model_name: str,
        options: Any,
        user: str,
        calibration: ArtifactRef | None = None,
    ) -> str | None:
        """The id of ``user``'s queued or running conversion that this one would
        repeat (the Convert button says so), else None. Raises ``OptionsError``
        for options a conversion would refuse."""
        opts, extra = self._conversion(options, calibration, "")
        files = {k: v.sha for k, v in extra.items() if isinstance(v, ArtifactRef)}
        key = submission_key(JobKind.CONVERT, upload.sha, model_name, {"options": opts}, files)
        return self.identical(user, key)
