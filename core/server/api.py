"""The HTTP API, served by the app's own server and port (``st.App`` routes),
behind the same login (``core.server.auth``).

=======  ==============================  ==============================================
method   path                            what
=======  ==============================  ==============================================
GET      /api                            this list, the presets and the limits
POST     /api/jobs                       multipart: ``model`` file + convert options
                                         -> 201 job (a ``.tflite`` becomes an inspection)
GET      /api/jobs                       recent jobs (``?user=me|all&status=&limit=``)
GET      /api/jobs/{id}                  one job: status, progress, error, links
DELETE   /api/jobs/{id}                  cancel it
GET      /api/jobs/{id}/model.tflite     the converted model (409 until done)
GET      /api/jobs/{id}/report.json      its report (409 until done)
=======  ==============================  ==============================================

POST fields: ``model`` (file), ``preset``, ``select_tf_ops``, ``allow_custom_ops``,
``signature``, ``input_shape`` (repeat: ``NAME=D1,D2,...``), ``calibration_data``
(file), ``calibration_samples``, ``image_range`` (``LOW,HIGH``). Files are
streamed to the artifact store in chunks; an upload over the limit is refused
as soon as it passes the limit (or at once, from its Content-Length).

Errors are ``{"error": {"message", "hint", "phase"}}`` with 400 (bad input),
401 (login), 403, 404, 409 (not ready), 410 (removed by retention), 413 (too
large), 429 (your job limit) or 503 (queue full).
"""

from __future__ import annotations

from typing import Any

from core.errors import OptionsError, StudioError
from core.model.naming import download_name as _download_name
from core.server.http import error_response as _error_response
from core.server.jobs import (
    ArtifactRef,
    ArtifactWriter,
    Job,
    JobStatus,
    JobStore,
    store,
    too_large_upload,
)
from core.server.settings import Settings, load_settings

__all__ = ["api_routes", "job_json", "download_name", "INSPECT_PAGE"]

INSPECT_PAGE = "/inspect"
_FILE_FIELDS = ("model", "calibration_data")
_TEXT_FIELDS = (
    "preset",
    "select_tf_ops",
    "allow_custom_ops",
    "signature",
    "input_shape",
    "calibration_samples",
    "image_range",
    "keep_float",
    "sparsity",
)
_MAX_FIELD_BYTES = 16 << 10
_MAX_FIELDS = 64
_STATUS_FOR_CODE = {
    "not_found": 404,
    "too_many_jobs": 429,
    "queue_full": 503,
    "too_large": 413,
    "forbidden": 403,
}


class _HTTPError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        hint: str = "",
        phase: str = "job",
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.hint, self.phase = status, message, hint, phase
        self.headers = headers or {}


def _studio_error_response(e: StudioError) -> Any:
    code = e.details.get("code") if isinstance(e.details, dict) else None
    status = _STATUS_FOR_CODE.get(str(code), 400)
    headers = {"Retry-After": "30"} if status in (429, 503) else {}
    return _error_response(status, e.message, e.hint, e.phase.value, headers)


# ---------------------------------------------------------------- JSON views


def download_name(job: Job, what: str) -> str:
    """``digits-int8.tflite``, ``digits-int8-report.json``: model name and preset."""
    return _download_name(
        job.model_name, job.preset or None, "tflite" if what == "model" else "json"
    )


def _links(job: Job) -> dict[str, str]:
    base = f"/api/jobs/{job.id}"
    return {
        "self": base,
        "model": f"{base}/model.tflite",
        "report": f"{base}/report.json",
        "page": f"{INSPECT_PAGE}?job={job.id}",
    }


def job_json(st: JobStore, job: Job) -> dict[str, Any]:
    """The API's view of a job (no internal fields: worker, pid, file hashes)."""
    err = job.error
    result = job.result or {}
    conv = result.get("conversion") or {}
    return {
        "id": job.id,
        "kind": job.kind.value,
        "status": job.status.value,
        "user": job.user,
        "model_name": job.model_name,
        "preset": job.preset or None,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "seconds": job.seconds,
        "progress": job.progress,
        "queue_position": st.queue_position(job),
        "attempts": job.attempts,
        "error": (
            {
                "message": err.get("message"),
                "hint": err.get("hint"),
                "phase": err.get("phase"),
                "type": err.get("type"),
                "details": err.get("details") or {},
            }
            if err
            else None
        ),
        "input_size": job.input_size,
        "output_size": job.output_size,
        "warnings": list(conv.get("warnings") or []),
        "conversion": {k: v for k, v in conv.items() if k != "output_path"} or None,
        "report_error": result.get("report_error"),
        "purged": job.purged_at is not None,
        "links": _links(job),
    }


# ---------------------------------------------------------------- streaming form


class _StreamingForm:
    """Parse ``multipart/form-data`` as it arrives: file parts go straight
    into the artifact store (hashed on the way), text fields are small."""

    def __init__(self, st: JobStore, max_file_bytes: int, limit_mb: int) -> None:
        self.st = st
        self.max_file_bytes = max_file_bytes
        self.limit_mb = limit_mb
        self.fields: dict[str, list[str]] = {}
        self.files: dict[str, ArtifactRef] = {}
        self._writers: list[ArtifactWriter] = []
        self._pending: list[tuple[ArtifactWriter, bytes]] = []
        self._finished: list[tuple[str, ArtifactWriter, str]] = []
        self._hname = b""
        self._hval = b""
        self._disp = b""
        self._name = ""
        self._filename: str | None = None
        self._data = bytearray()
        self._writer: ArtifactWriter | None = None
        self._nfields = 0

    # python-multipart callbacks (synchronous; file bytes are written after each chunk)
    def on_part_begin(self) -> None:
        self._disp, self._name, self._filename, self._writer = b"", "", None, None
        self._data = bytearray()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._hname += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._hval += data[start:end]

    def on_header_end(self) -> None:
        if self._hname.lower() == b"content-disposition":
            self._disp = self._hval
        self._hname, self._hval = b"", b""

    def on_headers_finished(self) -> None:
        from python_multipart.multipart import parse_options_header

        _, opts = parse_options_header(self._disp)
        self._name = opts.get(b"name", b"").decode("utf-8", "replace")
        self._nfields += 1
        if self._nfields > _MAX_FIELDS:
            raise _HTTPError(400, "The form has too many fields.", phase="options")
        if b"filename" in opts:
            self._filename = opts[b"filename"].decode("utf-8", "replace")
            if self._name not in _FILE_FIELDS:
                raise _HTTPError(
                    400,
                    f"Unexpected file field {self._name!r}.",
                    "Send the model as 'model' and calibration data as 'calibration_data'.",
                    phase="options",
                )
            if self._name in self.files or any(n == self._name for n, _, _ in self._finished):
                raise _HTTPError(
                    400,
                    f"Two files were sent as {self._name!r}.",
                    "Send one file per field.",
                    phase="options",
                )
            self._writer = self.st.artifact_writer(
                self.max_file_bytes, too_large_upload(self.limit_mb)
            )
            self._writers.append(self._writer)
        elif self._name in _FILE_FIELDS:
            raise _HTTPError(
                400,
                f"{self._name!r} must be a file upload.",
                f"Use curl -F '{self._name}=@path/to/file'.",
                phase="options",
            )

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._writer is not None:
            self._pending.append((self._writer, bytes(data[start:end])))
        else:
            self._data += data[start:end]
            if len(self._data) > _MAX_FIELD_BYTES:
                raise _HTTPError(400, f"The field {self._name!r} is too long.", phase="options")

    def on_part_end(self) -> None:
        if self._writer is not None:
            self._finished.append((self._name, self._writer, self._filename or ""))
        else:
            self.fields.setdefault(self._name, []).append(self._data.decode("utf-8", "replace"))

    async def _flush(self) -> None:
        from anyio import to_thread

        pending, self._pending = self._pending, []
        if pending:

            def write() -> None:
                for w, chunk in pending:
                    w.write(chunk)

            await to_thread.run_sync(write)
        finished, self._finished = self._finished, []
        for name, w, filename in finished:
            self.files[name] = await to_thread.run_sync(w.commit, filename)

    async def parse(self, request: Any) -> None:
        from python_multipart.multipart import MultipartParser, parse_options_header

        ctype, params = parse_options_header(request.headers.get("content-type", ""))
        if ctype != b"multipart/form-data" or b"boundary" not in params:
            raise _HTTPError(
                415,
                "Send the job as multipart/form-data.",
                "curl -F model=@model.zip -F preset=int8 URL/api/jobs",
                phase="options",
            )
        parser = MultipartParser(
            params[b"boundary"],
            {
                "on_part_begin": self.on_part_begin,
                "on_part_data": self.on_part_data,
                "on_part_end": self.on_part_end,
                "on_header_field": self.on_header_field,
                "on_header_value": self.on_header_value,
                "on_header_end": self.on_header_end,
                "on_headers_finished": self.on_headers_finished,
            },
        )
        try:
            async for chunk in request.stream():
                parser.write(chunk)
                await self._flush()
            parser.finalize()
            await self._flush()
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        for w in self._writers:
            w.abort()


def _flag(fields: dict[str, list[str]], name: str) -> bool:
    vals = fields.get(name) or []
    if not vals:
        return False
    v = vals[-1].strip().lower()
    if v in ("1", "true", "yes", "on"):
        return True
    if v in ("0", "false", "no", "off", ""):
        return False
    raise OptionsError(f"{name}={vals[-1]!r} is not true or false.", f"Send {name}=true.")


def _options_from_fields(fields: dict[str, list[str]]) -> dict[str, Any]:
    from core.options import ConversionOptions, Preset, parse_input_shape

    unknown = sorted(set(fields) - set(_TEXT_FIELDS))
    if unknown:
        raise OptionsError(
            "Unknown field(s): " + ", ".join(unknown) + ".",
            "Known fields: model, calibration_data, " + ", ".join(_TEXT_FIELDS) + ".",
        )

    def one(name: str, default: str = "") -> str:
        vals = fields.get(name) or []
        return vals[-1].strip() if vals else default

    preset = one("preset", "float32")
    try:
        Preset(preset)
    except ValueError:
        raise OptionsError(
            f"Unknown preset {preset!r}.",
            "Choose one of: " + ", ".join(p.value for p in Preset) + ".",
        ) from None
    try:
        samples = int(one("calibration_samples", "100"))
    except ValueError:
        raise OptionsError(
            "calibration_samples must be a whole number.", "For example calibration_samples=200."
        ) from None
    try:
        lo, hi = (float(v) for v in one("image_range", "0,1").split(","))
    except ValueError:
        raise OptionsError(
            f"Cannot read image_range {one('image_range')!r}.", "Write it as LOW,HIGH, e.g. 0,1."
        ) from None
    shapes = [parse_input_shape(s) for s in fields.get("input_shape") or [] if s.strip()]
    opts = ConversionOptions(
        preset=Preset(preset),
        select_tf_ops=_flag(fields, "select_tf_ops"),
        allow_custom_ops=_flag(fields, "allow_custom_ops"),
        signature_key=one("signature") or None,
        input_shapes=tuple(shapes),
        calibration_samples=samples,
        image_range=(lo, hi),
        keep_float_ops=tuple(v.strip() for v in fields.get("keep_float") or [] if v.strip()),
        sparsity=_flag(fields, "sparsity"),
    )
    return opts.to_dict()


# ---------------------------------------------------------------- routes


def api_routes(settings: Settings | None = None) -> list[Any]:
    """Starlette routes for ``st.App(routes=...)``."""
    from starlette.responses import FileResponse, JSONResponse
    from starlette.routing import Route

    from core.server.auth import request_user

    s = settings or load_settings()

    def _store() -> JobStore:
        return store(s)

    async def index(request: Any) -> Any:
        from core.options import PRESETS

        return JSONResponse(
            {
                "user": request_user(request),
                "endpoints": {
                    "submit": "POST /api/jobs",
                    "list": "GET /api/jobs",
                    "status": "GET /api/jobs/{id}",
                    "cancel": "DELETE /api/jobs/{id}",
                    "model": "GET /api/jobs/{id}/model.tflite",
                    "report": "GET /api/jobs/{id}/report.json",
                },
                "presets": {
                    p.value: {"title": i.title, "needs_calibration": i.needs_calibration}
                    for p, i in PRESETS.items()
                },
                "limits": {
                    "max_upload_mb": s.max_upload_mb,
                    "max_jobs_per_user": s.max_jobs_per_user,
                    "max_queue": s.max_queue,
                    "timeout_s": s.timeout_s,
                },
            }
        )

    async def create(request: Any) -> Any:
        from anyio import to_thread

        st = _store()
        user = request_user(request)
        limit = s.max_upload_mb << 20
        try:
            length = int(request.headers.get("content-length") or 0)
        except ValueError:
            length = 0
        if length > 2 * limit + (1 << 20):  # model + calibration + fields
            return _studio_error_response(too_large_upload(s.max_upload_mb)(length))
        form = _StreamingForm(st, limit, s.max_upload_mb)
        try:
            await to_thread.run_sync(st._check_limits, user)  # before reading the body
            await form.parse(request)
            model = form.files.get("model")
            if model is None:
                raise _HTTPError(
                    400,
                    "No model file was sent.",
                    "Send it as the 'model' field: curl -F model=@model.zip …",
                    phase="options",
                )
            options = _options_from_fields(form.fields)
            cal = form.files.get("calibration_data")
            job = await to_thread.run_sync(
                lambda: st.submit_model(
                    model,
                    model_name=model.name or "model",
                    options=options,
                    user=user,
                    calibration=cal,
                    calibration_name=cal.name if cal else "",
                )
            )
        except _HTTPError as e:
            form.abort()
            return _error_response(e.status, e.message, e.hint, e.phase, e.headers)
        except StudioError as e:
            form.abort()
            return _studio_error_response(e)
        except Exception as e:
            form.abort()
            from python_multipart.exceptions import FormParserError
            from starlette.requests import ClientDisconnect

            if isinstance(e, ClientDisconnect):
                return _error_response(400, "The upload was cut short.", "Send it again.")
            if isinstance(e, FormParserError):
                return _error_response(
                    400,
                    "The multipart body cannot be read.",
                    "Send it as multipart/form-data.",
                    "options",
                )
            raise
        body = await to_thread.run_sync(job_json, st, job)  # queries the database
        return JSONResponse(
            body,
            status_code=201,
            headers={"Location": body["links"]["self"], "Cache-Control": "no-store"},
        )

    async def listing(request: Any) -> Any:
        from anyio import to_thread

        st = _store()
        q = request.query_params
        who = q.get("user", "all")
        user = request_user(request) if who == "me" else (None if who in ("all", "") else who)
        status = None
        if q.get("status"):
            try:
                status = [JobStatus(v) for v in q.get("status", "").split(",") if v]
            except ValueError:
                return _error_response(
                    400,
                    f"Unknown status {q.get('status')!r}.",
                    "Use queued, running, done, failed or cancelled.",
                    "options",
                )
        try:
            limit = max(1, min(200, int(q.get("limit", "50"))))
            offset = max(0, int(q.get("offset", "0")))
        except ValueError:
            return _error_response(400, "limit and offset must be whole numbers.", "", "options")
        body = await to_thread.run_sync(
            lambda: [
                job_json(st, j)
                for j in st.list(limit=limit, user=user, status=status, offset=offset)
            ]
        )
        return JSONResponse({"jobs": body}, headers={"Cache-Control": "no-store"})

    def _job(request: Any) -> Job:
        return _store().get(request.path_params["id"])

    async def detail(request: Any) -> Any:
        from anyio import to_thread

        st = _store()
        try:
            job = await to_thread.run_sync(_job, request)
            if request.method == "DELETE":
                job = await to_thread.run_sync(
                    lambda: st.cancel(
                        job.id, by=request_user(request) if s.login_required else None
                    )
                )
            body = await to_thread.run_sync(job_json, st, job)
        except StudioError as e:
            return _studio_error_response(e)
        return JSONResponse(body, headers={"Cache-Control": "no-store"})

    def _download(what: str) -> Any:
        async def handler(request: Any) -> Any:
            from anyio import to_thread

            st = _store()
            try:
                job = await to_thread.run_sync(_job, request)
            except StudioError as e:
                return _studio_error_response(e)
            if job.status is not JobStatus.DONE:
                if job.status is JobStatus.FAILED and job.error:
                    msg = f"The job failed: {job.error.get('message', '')}"
                    hint = str(job.error.get("hint") or "")
                elif job.status is JobStatus.CANCELLED:
                    msg, hint = "The job was cancelled.", "Submit it again."
                else:
                    msg = f"The job is {job.status.value}; the file is not ready yet."
                    hint = f"Poll GET /api/jobs/{job.id} until its status is done."
                return _error_response(409, msg, hint, "job", status=job.status.value)
            sha = job.output_sha if what == "model" else job.report_sha
            if what == "report" and not sha:
                err = (job.result or {}).get("report_error") or {}
                return _error_response(
                    409,
                    "This job has no report: " + str(err.get("message", "it was not built")),
                    str(err.get("hint", "")),
                    "job",
                )
            if job.purged_at is not None or not sha or not st.has_artifact(sha):
                return _error_response(
                    410,
                    "This job's files were removed by the retention policy.",
                    "Submit the model again.",
                    "job",
                )
            media = "application/octet-stream" if what == "model" else "application/json"
            return FileResponse(
                st.artifact_path(sha),
                media_type=media,
                filename=download_name(job, what),
                headers={
                    "ETag": f'"{sha}"',
                    "Cache-Control": "private, max-age=31536000, immutable",
                    "X-Content-Type-Options": "nosniff",
                },
            )

        return handler

    async def not_found(request: Any) -> Any:
        return _error_response(404, f"No API route {request.url.path}.", "See GET /api.")

    return [
        Route("/api", index, methods=["GET"]),
        Route("/api/", index, methods=["GET"]),
        Route("/api/jobs", create, methods=["POST"]),
        Route("/api/jobs", listing, methods=["GET"]),
        Route("/api/jobs/{id}", detail, methods=["GET", "DELETE"]),
        Route("/api/jobs/{id}/model.tflite", _download("model"), methods=["GET", "HEAD"]),
        Route("/api/jobs/{id}/report.json", _download("report"), methods=["GET", "HEAD"]),
        Route(
            "/api/{rest:path}", not_found, methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"]
        ),
    ]
