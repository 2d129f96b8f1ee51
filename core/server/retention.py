"""Retention: the artifacts of finished jobs older than the retention period
are removed, unless a newer or unfinished job still uses them; records stay,
marked purged, so History and links can say what happened."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from core.server.artifacts import HEX64, ArtifactStore
from core.server.db import JobDB
from core.server.records import Job

__all__ = ["cleanup", "job_shas"]

_TMP_AGE_S = 86400.0  # an upload still being written is younger than this
_MIN_AGE_S = 3600.0
_RESTORED_S = 60  # an artifact stored again this recently is about to be used


def _shas_in(obj: Any) -> Iterator[str]:
    """Every artifact id mentioned anywhere in a job's params or result."""
    if isinstance(obj, str):
        if HEX64.match(obj):
            yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _shas_in(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from _shas_in(v)


def job_shas(job: Job) -> set[str]:
    """The artifacts a job uses: its upload and any id in its params or result."""
    return {job.input_sha, *_shas_in(job.params), *_shas_in(job.result)}


def _expired(rows: list[Job], cutoff: float) -> list[Job]:
    return [
        j
        for j in rows
        if j.status.finished and j.purged_at is None and (j.finished_at or j.created_at) < cutoff
    ]


def _doomed(
    artifacts: ArtifactStore, rows: list[Job], expired: list[Job], cutoff: float, now: float
) -> list[tuple[Path, int]]:
    """Artifacts to remove (path, size): those only expired jobs use, and
    old ones no job uses."""
    expired_ids = {j.id for j in expired}
    keep: set[str] = set()
    for j in rows:
        if j.id not in expired_ids and j.purged_at is None:
            keep |= job_shas(j)
    candidates: set[str] = set()
    for j in expired:
        candidates |= job_shas(j)
    orphans = {sha for sha in artifacts.stored() if sha not in keep and sha not in candidates}
    out = []
    for sha in sorted((candidates - keep) | orphans):
        p = artifacts.path(sha)
        try:
            st = p.stat()
        except OSError:
            continue
        if st.st_mtime >= cutoff and sha not in candidates:
            continue  # a fresh orphan may belong to a submit in progress
        if st.st_mtime > now - _RESTORED_S:
            continue  # stored again this minute: a new job is about to use it
        out.append((p, st.st_size))
    return out


def _stale(folders: list[tuple[Path, float]], now: float) -> list[tuple[Path, int]]:
    """Files older than their folder's age (and than an hour)."""
    out = []
    for folder, age in folders:
        if not folder.is_dir():
            continue
        for p in folder.iterdir():
            try:
                st = p.stat()
                if p.is_file() and now - st.st_mtime > max(age, _MIN_AGE_S):
                    out.append((p, st.st_size))
            except OSError:
                continue
    return out


def cleanup(
    db: JobDB, artifacts: ArtifactStore, root: Path, days: float, dry_run: bool = False
) -> dict[str, Any]:
    """Remove the artifacts of jobs finished more than ``days`` ago (records
    stay, marked purged), unreferenced artifacts, stale temporary files and
    worker logs older than the period; ``root`` is the data folder."""
    now = time.time()
    cutoff = now - float(days) * 86400
    rows = db.all()
    expired = _expired(rows, cutoff)
    doomed = _doomed(artifacts, rows, expired, cutoff, now)
    stale = _stale([(artifacts.tmp_dir, _TMP_AGE_S), (root / "worker-logs", now - cutoff)], now)
    if not dry_run:
        for p, _ in doomed + stale:
            p.unlink(missing_ok=True)
        db.mark_purged([j.id for j in expired], now)
        for j in expired:
            shutil.rmtree(root / "jobs" / j.id, ignore_errors=True)
    return {
        "dry_run": dry_run,
        "older_than_days": days,
        "jobs": len(expired),
        "job_ids": sorted(j.id for j in expired),
        "artifacts": len(doomed),
        "other_files": len(stale),
        "bytes": sum(size for _, size in doomed + stale),
    }
