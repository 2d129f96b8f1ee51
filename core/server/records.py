"""Job records: kinds, states, the ``Job`` type and its SQLite row."""

from __future__ import annotations

import enum
import json
import sqlite3
import time
from dataclasses import dataclass, field
from typing import Any

from core.errors import StudioError
from core.model.naming import download_name, model_stem

__all__ = [
    "JobKind",
    "JobStatus",
    "ACTIVE",
    "ArtifactRef",
    "Job",
    "SCHEMA",
    "MIGRATIONS",
    "row_to_job",
    "safe_user",
]


class JobKind(str, enum.Enum):
    CONVERT = "convert"
    INSPECT = "inspect"
    EVALUATE = "evaluate"
    SWEEP = "sweep"
    DIFF = "diff"
    LAYERS = "layers"  # per-layer quantization error of one int8 conversion
    SIGNATURE = "signature"  # an upload's signatures and input shapes (the Convert form)
    OPTIMIZE = "optimize"  # a .tflite quantized with a recipe (or a sweep over the recipes)
    DEPLOY = "deploy"  # the deploy kit of a .tflite


class JobStatus(str, enum.Enum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (JobStatus.DONE, JobStatus.FAILED, JobStatus.CANCELLED)


ACTIVE = (JobStatus.QUEUED, JobStatus.RUNNING)


@dataclass(frozen=True)
class ArtifactRef:
    """An artifact already in the store (e.g. an upload streamed by the API)."""

    sha: str
    size: int
    name: str = ""


@dataclass(frozen=True)
class Job:
    id: str
    kind: JobKind
    status: JobStatus
    user: str
    created_at: float
    model_name: str
    input_sha: str
    input_size: int
    params: dict[str, Any] = field(default_factory=dict)
    started_at: float | None = None
    finished_at: float | None = None
    progress: str = ""
    error: dict[str, Any] | None = None
    result: dict[str, Any] | None = None
    attempts: int = 0
    cancel_requested: bool = False
    worker: str = ""
    pid: int | None = None
    heartbeat_at: float | None = None
    purged_at: float | None = None

    @property
    def preset(self) -> str:
        return str(self.params.get("options", {}).get("preset", ""))

    @property
    def output_sha(self) -> str | None:
        return (self.result or {}).get("output_sha")

    @property
    def output_size(self) -> int | None:
        return (self.result or {}).get("output_size")

    @property
    def report_sha(self) -> str | None:
        return (self.result or {}).get("report_sha")

    @property
    def stem(self) -> str:
        """The model name without its extension, safe for a file name."""
        return model_stem(self.model_name)

    @property
    def output_name(self) -> str:
        """``digits-int8.tflite``, ``digits-dynamic-selecttf.tflite``: model name,
        preset and the options that change the result."""
        return download_name(
            self.model_name, self.preset or None, "tflite", self.params.get("options")
        )

    @property
    def error_obj(self) -> StudioError | None:
        return StudioError.from_dict(self.error) if self.error else None

    @property
    def seconds(self) -> float | None:
        """Run time (so far, while running)."""
        if self.started_at is None:
            return None
        return (self.finished_at or time.time()) - self.started_at

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind.value,
            "status": self.status.value,
            "user": self.user,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "model_name": self.model_name,
            "input_sha": self.input_sha,
            "input_size": self.input_size,
            "output_sha": self.output_sha,
            "output_size": self.output_size,
            "report_sha": self.report_sha,
            "preset": self.preset,
            "params": self.params,
            "progress": self.progress,
            "error": self.error,
            "result": self.result,
            "attempts": self.attempts,
            "cancel_requested": self.cancel_requested,
            "purged": self.purged_at is not None,
        }


SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    user TEXT NOT NULL,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    model_name TEXT NOT NULL,
    input_sha TEXT NOT NULL,
    input_size INTEGER NOT NULL,
    params TEXT NOT NULL,
    progress TEXT NOT NULL DEFAULT '',
    error TEXT,
    result TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    cancel_requested INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS jobs_created ON jobs(created_at);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs(status);
CREATE INDEX IF NOT EXISTS jobs_user ON jobs(user, status);
"""
# Columns added after the first release: (name, declaration).
MIGRATIONS = (
    ("worker", "TEXT NOT NULL DEFAULT ''"),
    ("pid", "INTEGER"),
    ("heartbeat_at", "REAL"),
    ("purged_at", "REAL"),
)


def row_to_job(r: sqlite3.Row) -> Job:
    return Job(
        id=r["id"],
        kind=JobKind(r["kind"]),
        status=JobStatus(r["status"]),
        user=r["user"],
        created_at=r["created_at"],
        started_at=r["started_at"],
        finished_at=r["finished_at"],
        model_name=r["model_name"],
        input_sha=r["input_sha"],
        input_size=r["input_size"],
        params=json.loads(r["params"]),
        progress=r["progress"],
        error=json.loads(r["error"]) if r["error"] else None,
        result=json.loads(r["result"]) if r["result"] else None,
        attempts=r["attempts"],
        cancel_requested=bool(r["cancel_requested"]),
        worker=r["worker"] or "",
        pid=r["pid"],
        heartbeat_at=r["heartbeat_at"],
        purged_at=r["purged_at"],
    )


def safe_user(name: str | None) -> str:
    """A user name as shown in History: printable, trimmed, at most 64 chars."""
    text = "".join(c for c in str(name or "") if c.isprintable()).strip()
    return text[:64] or "local"
