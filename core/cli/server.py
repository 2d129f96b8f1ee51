"""Commands for the machines of a shared server: run a worker, clean up old
artifacts.

    tflite-studio worker   [--workers N] [--no-warm]
    tflite-studio cleanup  [--older-than DAYS] [--dry-run]
"""

from __future__ import annotations

import signal
import threading
import urllib.parse
from typing import Any

import click

__all__ = ["worker_cmd", "cleanup_cmd", "COMMANDS"]


# ---------------------------------------------------------------- worker and cleanup


@click.command("worker")
@click.option(
    "--workers", type=int, default=None, help="Jobs run at once (default: TFLITE_STUDIO_WORKERS)."
)
@click.option(
    "--no-warm",
    is_flag=True,
    help="Do not keep TensorFlow pre-loaded in spare processes (saves memory).",
)
def worker_cmd(workers: int | None, no_warm: bool) -> None:
    """Run jobs from the shared queue until stopped (Ctrl-C or SIGTERM).

    Start one per extra machine, with the same TFLITE_STUDIO_DATA_DIR (shared
    storage) and TFLITE_STUDIO_REDIS_URL as the app. Jobs running when it stops
    go back to the queue."""
    from core.server.jobs import start_consumer
    from core.server.settings import load_settings, require_sandbox, sandbox_warning

    settings = load_settings()
    require_sandbox(settings)
    warning = sandbox_warning(settings)
    if warning:
        click.echo(f"warning: {warning}", err=True)
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    consumer = start_consumer(settings, workers=workers, warm=not no_warm)
    queue = (
        ("Redis " + _redact(settings.redis_url))
        if settings.redis_url
        else f"SQLite {settings.data_dir / 'queue.db'}"
    )
    click.echo(
        f"worker {consumer.id}: {consumer.consumer.workers} at once, data "
        f"{settings.data_dir}, queue {queue}. Stop with Ctrl-C.",
        err=True,
    )
    try:
        while not stop.wait(1.0):
            pass
    finally:
        click.echo("stopping: running jobs go back to the queue…", err=True)
        consumer.stop()
        click.echo("stopped", err=True)


def _redact(url: str) -> str:
    p = urllib.parse.urlsplit(url)
    if p.password:
        netloc = p.netloc.replace(f":{p.password}@", ":***@")
        return urllib.parse.urlunsplit(p._replace(netloc=netloc))
    return url


@click.command("cleanup")
@click.option(
    "--older-than",
    "days",
    type=float,
    default=None,
    metavar="DAYS",
    help="Retention in days (default: TFLITE_STUDIO_RETENTION_DAYS).",
)
@click.option("--dry-run", is_flag=True, help="Only say what would be removed.")
def cleanup_cmd(days: float | None, dry_run: bool) -> None:
    """Remove the files of finished jobs older than the retention period.

    Artifacts still used by newer or unfinished jobs stay; job records stay
    (marked as removed) so History and links explain what happened."""
    from core.server.jobs import store

    st = store()
    r = st.cleanup(older_than_days=days, dry_run=dry_run)
    verb = "would remove" if dry_run else "removed"
    click.echo(
        f"{verb} the files of {r['jobs']} job(s) older than {r['older_than_days']} "
        f"days: {r['artifacts']} artifact(s) and {r['other_files']} other file(s), "
        f"{r['bytes'] / (1 << 20):.1f} MiB."
    )


# ---------------------------------------------------------------- API client


COMMANDS = [worker_cmd, cleanup_cmd]
