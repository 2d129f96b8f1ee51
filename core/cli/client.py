"""Commands that talk to a running server over its HTTP API: ``submit``,
``status`` and ``fetch``. Standard library only (urllib).

The server and the team password come from ``--server`` / ``TFLITE_STUDIO_SERVER``
and ``--password`` / ``TFLITE_STUDIO_PASSWORD``; your name (shown in History)
from ``--user`` / ``TFLITE_STUDIO_USER``, else your login name.
"""

from __future__ import annotations

import base64
import getpass
import http.client
import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from core.cli.client_fields import job_fields, job_files, kind_options
from core.cli.options import convert_options
from core.errors import JobError, Phase, StudioError

__all__ = ["ApiClient", "submit_cmd", "status_cmd", "fetch_cmd", "COMMANDS"]

_CHUNK = 1 << 20


def _multipart(
    fields: list[tuple[str, str]], files: list[tuple[str, Path]]
) -> tuple[Iterator[bytes], int, str]:
    """A streamed multipart/form-data body: (chunks, length, content type)."""
    boundary = uuid.uuid4().hex
    pre: list[bytes] = []
    for name, value in fields:
        pre.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
            + value.encode()
            + b"\r\n"
        )
    heads = []
    for name, path in files:
        fname = path.name.replace('"', "_").replace("\\", "_").replace("\r", "").replace("\n", "")
        heads.append(
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
                f'filename="{fname}"\r\nContent-Type: application/octet-stream\r\n\r\n'
            ).encode()
        )
    end = f"--{boundary}--\r\n".encode()
    length = (
        sum(map(len, pre))
        + len(end)
        + sum(len(h) + path.stat().st_size + 2 for h, (_, path) in zip(heads, files))
    )

    def chunks() -> Iterator[bytes]:
        yield from pre
        for h, (_, path) in zip(heads, files):
            yield h
            with open(path, "rb") as f:
                while chunk := f.read(_CHUNK):
                    yield chunk
            yield b"\r\n"
        yield end

    return chunks(), length, f"multipart/form-data; boundary={boundary}"


class ApiClient:
    """The HTTP API of a running TFLite Studio server (standard library only)."""

    def __init__(
        self,
        server: str,
        password: str | None = None,
        user: str | None = None,
        timeout: float = 60.0,
    ) -> None:
        if not server:
            raise JobError(
                "No server given.", "Pass --server http://host:8501 or set TFLITE_STUDIO_SERVER."
            )
        if "://" not in server:
            server = "http://" + server
        self.server = server.rstrip("/")
        self.timeout = timeout
        self.headers: dict[str, str] = {
            "Accept": "application/json",
            "User-Agent": "tflite-studio-cli",
        }
        name = user or ""
        self.has_password = bool(password)
        if password or name:
            token = base64.b64encode(f"{name or 'cli'}:{password or ''}".encode()).decode()
            self.headers["Authorization"] = f"Basic {token}"

    def _unreachable(self, reason: object) -> JobError:
        return JobError(
            f"Cannot reach the server at {self.server} ({reason}).",
            "Check --server and that the server is running.",
        )

    def _open(
        self, method: str, path: str, data: Any = None, headers: dict[str, str] | None = None
    ) -> Any:
        req = urllib.request.Request(
            self.server + path,
            data=data,
            method=method,
            headers={**self.headers, **(headers or {})},
        )
        try:
            return urllib.request.urlopen(req, timeout=self.timeout)
        except urllib.error.HTTPError as e:
            raise self._error(e.code, str(e.reason), e.read()) from None
        except (urllib.error.URLError, OSError) as e:
            raise self._unreachable(getattr(e, "reason", e)) from None

    def _error(self, code: int, reason: str, raw: bytes | None) -> StudioError:
        try:
            body = json.loads(raw or b"{}")
            err = body.get("error") or {}
        except (ValueError, AttributeError):
            err = {}
        msg = err.get("message") or f"The server answered {code} {reason}."
        hint = err.get("hint") or ""
        if code == 401:  # the login's answer, in the CLI's words
            msg = (
                f"Wrong password: the server at {self.server} refused it."
                if self.has_password
                else f"The server at {self.server} needs the team password."
            )
            hint = "Give the team password with --password or TFLITE_STUDIO_PASSWORD."
        return StudioError(msg, hint, phase=_phase(err.get("phase")), details={"http_status": code})

    def _upload(self, path: str, body: Iterator[bytes], headers: dict[str, str]) -> dict[str, Any]:
        """POST a streamed body. A server that answers before the body is sent
        (a wrong password, a file over the limit) is heard: its answer is read
        even after it stopped reading."""
        u = urllib.parse.urlsplit(self.server)
        cls = http.client.HTTPSConnection if u.scheme == "https" else http.client.HTTPConnection
        conn = cls(u.hostname or "127.0.0.1", u.port, timeout=self.timeout)
        try:
            conn.putrequest("POST", u.path.rstrip("/") + path, skip_accept_encoding=True)
            for k, v in {**self.headers, **headers}.items():
                conn.putheader(k, v)
            conn.endheaders()
            try:
                for chunk in body:
                    conn.send(chunk)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the server answered early: read its answer below
            resp = conn.getresponse()
            raw = resp.read()
        except (OSError, http.client.HTTPException) as e:
            raise self._unreachable(e) from None
        finally:
            conn.close()
        if resp.status >= 400:
            raise self._error(resp.status, resp.reason, raw)
        return dict(json.loads(raw))

    def check_login(self) -> dict[str, Any]:
        """``GET /api``: the server is there and takes this login (before an upload)."""
        return self.json("GET", "/api")

    def json(self, method: str, path: str) -> dict[str, Any]:
        with self._open(method, path) as r:
            return dict(json.loads(r.read()))

    def submit(
        self,
        model: Path,
        fields: list[tuple[str, str]],
        calibration: Path | None = None,
        files: list[tuple[str, Path]] | None = None,
    ) -> dict[str, Any]:
        """Send a job: the model, its fields and files (``[(field, path)]``);
        the login is checked first, so a wrong password is said as such."""
        self.check_login()
        parts = [("model", model)] + ([("calibration_data", calibration)] if calibration else [])
        parts += files or []
        body, length, ctype = _multipart(fields, parts)
        return self._upload(
            "/api/jobs", body, {"Content-Type": ctype, "Content-Length": str(length)}
        )

    def job(self, job_id: str) -> dict[str, Any]:
        return self.json("GET", f"/api/jobs/{urllib.parse.quote(job_id, safe='')}")

    def download(self, job_id: str, what: str, dest: Path) -> int:
        """Write a job's file (``model``, ``report`` or ``result``) to ``dest``."""
        path = (
            f"/api/jobs/{urllib.parse.quote(job_id, safe='')}/"
            + {
                "model": "model.tflite",
                "report": "report.json",
                "result": "result.json",
            }[what]
        )
        tmp = dest.with_name(dest.name + ".part")
        n = 0
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            with self._open("GET", path) as r, open(tmp, "wb") as out:
                while chunk := r.read(_CHUNK):
                    out.write(chunk)
                    n += len(chunk)
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)
        return n

    def wait(self, job_id: str, timeout: float, echo: bool = True) -> dict[str, Any]:
        end = time.monotonic() + timeout
        delay, last = 0.5, None
        while True:
            job = self.job(job_id)
            line = job["status"] + (f": {job['progress']}" if job.get("progress") else "")
            if job["status"] == "queued" and job.get("queue_position"):
                line += f" (position {job['queue_position']})"
            if echo and line != last:
                click.echo(f"  {line}", err=True)
                last = line
            if job["status"] in ("done", "failed", "cancelled"):
                return job
            if time.monotonic() > end:
                raise JobError(
                    f"Job {job_id} is still {job['status']} after {timeout:.0f} s.",
                    f"Poll it later with `tflite-studio status {job_id}`.",
                )
            time.sleep(delay)
            delay = min(2.0, delay * 1.3)


def _server_options(f: Any) -> Any:
    for d in reversed(
        [
            click.option(
                "--server",
                envvar="TFLITE_STUDIO_SERVER",
                required=True,
                metavar="URL",
                help="The server, e.g. http://studio.example:8501 (env TFLITE_STUDIO_SERVER).",
            ),
            click.option(
                "--password",
                envvar="TFLITE_STUDIO_PASSWORD",
                default=None,
                help="Team password (env TFLITE_STUDIO_PASSWORD).",
            ),
            click.option(
                "--user",
                envvar="TFLITE_STUDIO_USER",
                default=None,
                help="Your name in History (env TFLITE_STUDIO_USER; default: login name).",
            ),
        ]
    ):
        f = d(f)
    return f


def _client(server: str, password: str | None, user: str | None) -> ApiClient:
    if not user:
        try:
            user = getpass.getuser()
        except (KeyError, OSError):
            user = "cli"
    return ApiClient(server, password, user)


def _phase(name: Any) -> str:

    return str(name) if name in {p.value for p in Phase} else Phase.JOB.value


def _raise_job_error(job: dict[str, Any]) -> None:
    if job["status"] == "failed":
        err = job.get("error") or {}
        raise StudioError(
            err.get("message") or "The job failed.",
            err.get("hint") or "",
            phase=_phase(err.get("phase")),
        )
    if job["status"] == "cancelled":
        raise JobError(f"Job {job['id']} was cancelled.", "Submit it again.")


def _fetch(
    client: ApiClient,
    job: dict[str, Any],
    output: Path | None,
    report: Path | None,
    result: Path | None = None,
) -> None:
    links = job.get("links") or {}
    for what, dest in (("model", output), ("report", report), ("result", result)):
        if not dest:
            continue
        if what != "result" and what not in links:
            raise JobError(
                f"A {job.get('kind', 'this')} job has no {what} file.",
                "Use --result to save its result as JSON.",
            )
        n = client.download(job["id"], what, dest)
        click.echo(f"wrote {dest} ({n:,} bytes)", err=True)


def _submit_command() -> click.Command:

    @click.command("submit")
    @click.argument("model", type=click.Path(exists=True, dir_okay=False, path_type=Path))
    @_server_options
    @convert_options
    @kind_options
    @click.option("--wait", "wait_", is_flag=True, help="Wait until the job ends.")
    @click.option(
        "--timeout", type=float, default=3600, show_default=True, help="Seconds --wait waits."
    )
    @click.option(
        "-o",
        "--output",
        type=click.Path(path_type=Path),
        default=None,
        help="With --wait: write the .tflite here (a sweep's: the recommended one).",
    )
    @click.option(
        "--report",
        "report_path",
        type=click.Path(path_type=Path),
        default=None,
        help="With --wait: write the JSON report here.",
    )
    @click.option(
        "--result",
        "result_path",
        type=click.Path(path_type=Path),
        default=None,
        help="With --wait: write the job's result (any kind) as JSON here.",
    )
    @click.option("--json", "as_json", is_flag=True, help="Print the job as JSON.")
    @click.pass_context
    def submit_cmd(
        click_ctx: click.Context,
        model: Path,
        server: str,
        password: str | None,
        user: str | None,
        wait_: bool,
        timeout: float,
        output: Path | None,
        report_path: Path | None,
        result_path: Path | None,
        as_json: bool,
        **kw: Any,
    ) -> None:
        """Send MODEL to a running server as a job: a conversion by default (a
        .tflite is inspected), or --kind evaluate, layers, sweep, diff, optimize or deploy.

        Prints the job id; with --wait, follows it and downloads the results."""
        if (output or report_path or result_path) and not wait_:
            wait_ = True
        client = _client(server, password, user)
        cal = Path(kw["calibration_data"]) if kw.get("calibration_data") else None
        if cal is not None and not cal.is_file():
            raise JobError(
                f"Calibration data {cal} was not found.",
                "Give a .npz/.npy file or a .zip of images.",
            )
        kind = kw["kind"]
        given = click_ctx.get_parameter_source("preset") is not click.core.ParameterSource.DEFAULT
        fields = job_fields(kind, kw, preset_given=given)
        sends_cal = kind in ("convert", "evaluate", "layers", "sweep", "optimize")
        job = client.submit(model, fields, cal if sends_cal else None, job_files(kind, kw))
        again = " (an identical job was already queued)" if job.get("reused") else ""
        click.echo(
            f"job {job['id']} {job['status']}{again}: {client.server}{job['links']['page']}",
            err=True,
        )
        if wait_:
            job = client.wait(job["id"], timeout)
            _raise_job_error(job)
            _fetch(client, job, output, report_path, result_path)
        click.echo(json.dumps(job, indent=2) if as_json else job["id"])

    return submit_cmd


@click.command("status")
@click.argument("job_id", metavar="ID")
@_server_options
@click.option("--json", "as_json", is_flag=True, help="Print the whole job as JSON.")
def status_cmd(
    job_id: str, server: str, password: str | None, user: str | None, as_json: bool
) -> None:
    """Show a job's status on a running server (exit 1 when it failed)."""
    job = _client(server, password, user).job(job_id)
    if as_json:
        click.echo(json.dumps(job, indent=2))
    else:
        size = f", {job['output_size']:,} bytes" if job.get("output_size") else ""
        click.echo(
            f"{job['id']} {job['status']}  {job.get('kind', 'convert')} {job['model_name']}"
            f"{' → ' + job['preset'] if job.get('preset') else ''}{size}"
            f"{'  ' + job['progress'] if job.get('progress') else ''}"
        )
    _raise_job_error(job)


@click.command("fetch")
@click.argument("job_id", metavar="ID")
@_server_options
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    required=True,
    help="Where to write the .tflite file.",
)
@click.option(
    "--report",
    "report_path",
    type=click.Path(path_type=Path),
    default=None,
    help="Also write the JSON report here.",
)
@click.option("--wait", "wait_", is_flag=True, help="Wait for the job to finish first.")
@click.option("--timeout", type=float, default=3600, show_default=True)
def fetch_cmd(
    job_id: str,
    server: str,
    password: str | None,
    user: str | None,
    output: Path,
    report_path: Path | None,
    wait_: bool,
    timeout: float,
) -> None:
    """Download a finished job's .tflite (and report) from a running server."""
    client = _client(server, password, user)
    job = client.wait(job_id, timeout) if wait_ else client.job(job_id)
    _raise_job_error(job)
    _fetch(client, job, output, report_path)


submit_cmd = _submit_command()

COMMANDS = [submit_cmd, status_cmd, fetch_cmd]
