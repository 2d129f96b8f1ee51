"""The HTTP API, served by the app's own server and port (``st.App`` routes),
behind the same login (``core.server.auth``).

=======  ==============================  ==============================================
method   path                            what
=======  ==============================  ==============================================
GET      /api                            this list, the kinds, presets and limits
POST     /api/jobs                       multipart: ``kind`` + its files and fields
                                         -> 201 job (200: the identical job already
                                         queued or running; ``force=true``: a new one)
GET      /api/jobs                       recent jobs (``?user=me|all&status=&limit=``)
GET      /api/jobs/{id}                  one job: status, progress, error, result, links
DELETE   /api/jobs/{id}                  cancel it
GET      /api/jobs/{id}/model.tflite     the job's model (a sweep's: ``?preset=LABEL``,
                                         default the recommended one; 409 until done)
GET      /api/jobs/{id}/report.json      its report (409 until done)
GET      /api/jobs/{id}/report.md|.html  a conversion's or inspection's report; a diff's .md
GET      /api/jobs/{id}/result.json      the kind's result (every kind)
GET      /api/jobs/{id}/kit.zip          a deploy job's kit (code for the model's signature)
=======  ==============================  ==============================================

Kinds (``core.server.api_kinds``): ``convert`` (default; a ``.tflite`` becomes
an inspection), ``inspect``, ``evaluate``, ``layers``, ``sweep``, ``diff``.
Convert fields: ``model`` (file), ``preset``, ``select_tf_ops``,
``allow_custom_ops``, ``signature``, ``input_shape`` (repeat:
``NAME=D1,D2,...``), ``calibration_data`` (file), ``calibration_samples``,
``image_range`` (``LOW,HIGH``), ``keep_float``, ``sparsity``. Files are
streamed to the artifact store in chunks; an upload over the limit is refused
as soon as it passes the limit (or at once, from its Content-Length).

Errors are ``{"error": {"message", "hint", "phase"}}`` with 400 (bad input),
401 (login), 403, 404, 409 (not ready), 410 (removed by retention), 413 (too
large), 429 (your job limit) or 503 (queue full).
"""

from __future__ import annotations

import json
from typing import Any

from anyio import to_thread
from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from core.errors import StudioError
from core.model.naming import download_name as _download_name
from core.options import PRESETS
from core.server.api_form import ApiError, StreamingForm, flag
from core.server.api_kinds import (
    API_KINDS,
    KIND_FIELDS,
    KIND_FILES,
    kind_result,
    model_download,
    page_link,
    parse_submission,
    report_download,
)
from core.server.auth import request_user
from core.server.http import error_response
from core.server.intake import Admission
from core.server.jobs import Job, JobKind, JobStatus, JobStore, store, too_large_upload
from core.server.settings import Settings, load_settings

__all__ = ["api_routes", "job_json", "download_name", "INSPECT_PAGE"]

INSPECT_PAGE = "/inspect"
_STATUS_FOR_CODE = {
    "not_found": 404,
    "too_many_jobs": 429,
    "queue_full": 503,
    "too_large": 413,
    "forbidden": 403,
    "corrupt": 500,
    "gone": 410,
}
_NO_STORE = {"Cache-Control": "no-store"}


def _studio_error_response(e: StudioError) -> JSONResponse:
    code = e.details.get("code") if isinstance(e.details, dict) else None
    status = _STATUS_FOR_CODE.get(str(code), 400)
    headers = {"Retry-After": "30"} if status in (429, 503) else {}
    return error_response(status, e.message, e.hint, e.phase.value, headers)


# ---------------------------------------------------------------- JSON views


def download_name(job: Job, what: str) -> str:
    """``digits-int8.tflite``, ``digits-dynamic-selecttf.tflite``,
    ``digits-int8-report.json``: model name, preset and the options that change
    the result (a sweep's model: the recommended preset)."""
    if what == "model":
        found = model_download(job)
        return found[1] if found else f"{job.stem}.tflite"
    return report_download(job)


_HAS_MODEL = (
    JobKind.CONVERT,
    JobKind.INSPECT,
    JobKind.EVALUATE,
    JobKind.SWEEP,
    JobKind.OPTIMIZE,
    JobKind.DEPLOY,
)
_HAS_REPORT = (
    JobKind.CONVERT,
    JobKind.INSPECT,
    JobKind.SWEEP,
    JobKind.LAYERS,
    JobKind.DIFF,
    JobKind.OPTIMIZE,
)


def _links(job: Job) -> dict[str, str]:
    base = f"/api/jobs/{job.id}"
    links = {"self": base, "page": page_link(job), "result": f"{base}/result.json"}
    if job.kind in _HAS_MODEL:
        links["model"] = f"{base}/model.tflite"
    if job.kind in _HAS_REPORT:
        links["report"] = f"{base}/report.json"
    if job.kind in (JobKind.CONVERT, JobKind.INSPECT):
        links["report_md"] = f"{base}/report.md"
        links["report_html"] = f"{base}/report.html"
    if job.kind is JobKind.DIFF:
        links["report_md"] = f"{base}/report.md"
    if job.kind is JobKind.DEPLOY:
        links["kit"] = f"{base}/kit.zip"
    return links


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
        "options": job.params.get("options") or None,
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
        "result": kind_result(job) if job.status is JobStatus.DONE else None,
        "purged": job.purged_at is not None,
        "links": _links(job),
    }


# ---------------------------------------------------------------- handlers


def _content_length(request: Request) -> int:
    try:
        return int(request.headers.get("content-length") or 0)
    except ValueError:
        return 0


def _attachment(body: bytes, name: str, media: str) -> Response:
    return Response(
        body,
        media_type=media,
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "X-Content-Type-Options": "nosniff",
            **_NO_STORE,
        },
    )


def _file_of(job: Job, what: str, preset: str | None) -> tuple[str, str, str] | Response:
    """(artifact sha, file name, media type) of one of a done job's files, or
    the answer when there is no such file (404, or the file itself when it
    lives in the job's record)."""
    opts = job.params.get("options") or {}
    if what == "result":
        body = json.dumps(kind_result(job) or {}, indent=2).encode()
        return _attachment(body, f"{job.stem}-{job.kind.value}-result.json", "application/json")
    if what == "model":
        found = model_download(job, preset)
        if found is None:
            labels = [
                r.get("label")
                for r in ((job.result or {}).get("sweep") or {}).get("rows") or []
                if r.get("artifact_sha")
            ]
            hint = (
                f"Ask for one of: {', '.join(map(str, labels))} (?preset=LABEL)."
                if labels
                else "See the job's result.json."
            )
            return error_response(
                404, f"This {job.kind.value} job has no such .tflite.", hint, "job"
            )
        return found[0], found[1], "application/octet-stream"
    if what == "kit":
        res = job.result or {}
        if not res.get("kit_sha"):
            return error_response(404, "Only a deploy job has a kit.", "Submit kind=deploy.", "job")
        return str(res["kit_sha"]), str(res.get("kit_name") or "kit.zip"), "application/zip"
    if what == "md" and job.kind is JobKind.DIFF:
        text = str((job.result or {}).get("md") or "")
        return _attachment(
            text.encode(), report_download(job)[: -len(".json")] + ".md", "text/markdown"
        )
    key = {"report": "report_sha", "md": "report_md_sha", "html": "report_html_sha"}[what]
    sha = (job.result or {}).get(key)
    if not sha:
        return error_response(
            404,
            f"A {job.kind.value} job has no {'JSON' if what == 'report' else what.upper()} report.",
            f"See GET /api/jobs/{job.id}/result.json.",
            "job",
        )
    if what == "report":
        return str(sha), report_download(job), "application/json"
    media = "text/markdown" if what == "md" else "text/html"
    return str(sha), _download_name(job.model_name, job.preset or None, what, opts), media


def _not_ready(job: Job, what: str) -> Response | None:
    """409 until the job is done (and for a done job without a report)."""
    if job.status is not JobStatus.DONE:
        if job.status is JobStatus.FAILED and job.error:
            msg = f"The job failed: {job.error.get('message', '')}"
            hint = str(job.error.get("hint") or "")
        elif job.status is JobStatus.CANCELLED:
            msg, hint = "The job was cancelled.", "Submit it again."
        else:
            msg = f"The job is {job.status.value}; the file is not ready yet."
            hint = f"Poll GET /api/jobs/{job.id} until its status is done."
        return error_response(409, msg, hint, "job", status=job.status.value)
    if what == "report" and not job.report_sha and job.kind in (JobKind.CONVERT, JobKind.INSPECT):
        err = (job.result or {}).get("report_error") or {}
        return error_response(
            409,
            "This job has no report: " + str(err.get("message", "it was not built")),
            str(err.get("hint", "")),
            "job",
        )
    return None


class _Handlers:
    """The API's request handlers, for one server's settings. Database and
    file work runs on worker threads, off the event loop."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @property
    def store(self) -> JobStore:
        return store(self.settings)

    async def index(self, request: Request) -> Response:
        s = self.settings
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
                    "report_md": "GET /api/jobs/{id}/report.md",
                    "report_html": "GET /api/jobs/{id}/report.html",
                    "result": "GET /api/jobs/{id}/result.json",
                },
                "kinds": {
                    k: {"files": list(KIND_FILES[k]), "fields": [*KIND_FIELDS[k], "force"]}
                    for k in API_KINDS
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

    async def create(self, request: Request) -> Response:
        from python_multipart.exceptions import FormParserError

        s, st = self.settings, self.store
        user = request_user(request)
        limit = s.max_upload_mb << 20
        length = _content_length(request)
        if length > 4 * limit + (1 << 20):  # at most four files + fields
            return _studio_error_response(too_large_upload(s.max_upload_mb)(length))
        form = StreamingForm(st.artifacts, limit, s.max_upload_mb)
        try:
            admission = await self._submit_form(st, form, request, user)
        except ApiError as e:
            return error_response(e.status, e.message, e.hint, e.phase, e.headers)
        except StudioError as e:
            return _studio_error_response(e)
        except ClientDisconnect:
            return error_response(400, "The upload was cut short.", "Send it again.")
        except FormParserError:
            return error_response(
                400,
                "The multipart body cannot be read.",
                "Send it as multipart/form-data.",
                "options",
            )
        job = await to_thread.run_sync(st.get, admission.job_id)
        body = await to_thread.run_sync(job_json, st, job)  # queries the database
        body["reused"] = admission.reused
        return JSONResponse(
            body,
            status_code=200 if admission.reused else 201,
            headers={"Location": body["links"]["self"], **_NO_STORE},
        )

    async def _submit_form(
        self, st: JobStore, form: StreamingForm, request: Request, user: str
    ) -> Admission:
        try:
            await to_thread.run_sync(st.check_limits, user)  # before reading the body
            await form.parse(request)
            return await to_thread.run_sync(self._admit, st, form, user)
        except BaseException:
            form.abort()  # no half-written upload stays behind, whatever went wrong
            raise

    @staticmethod
    def _admit(st: JobStore, form: StreamingForm, user: str) -> Admission:
        """The job the parsed form asks for (an identical unfinished one unless ``force``)."""
        model = form.files.get("model")
        if model is None:
            raise ApiError(
                400,
                "No model file was sent.",
                "Send it as the 'model' field: curl -F model=@model.zip …",
                phase="options",
            )
        fields = form.fields
        kind = (fields.get("kind") or ["convert"])[-1].strip() or "convert"
        dedupe = not flag(fields, "force")

        def detect(ref: Any) -> str:
            return st.intake.detect_kind(ref, ref.name or "model")

        sub = parse_submission(kind, fields, form.files, detect)
        name = model.name or "model"
        if sub.kind is JobKind.CONVERT:
            cal = form.files.get("calibration_data")
            return st.intake.admit_model(
                model,
                model_name=name,
                options=sub.params["options"],
                user=user,
                calibration=cal,
                calibration_name=cal.name if cal else "",
                dedupe=dedupe,
            )
        return st.intake.admit(
            sub.kind,
            model,
            model_name=name,
            params=sub.params,
            user=user,
            extra_files=dict(sub.files),
            dedupe=dedupe,
        )

    async def listing(self, request: Request) -> Response:
        st = self.store
        q = request.query_params
        who = q.get("user", "all")
        user = request_user(request) if who == "me" else (None if who in ("all", "") else who)
        status = None
        if q.get("status"):
            try:
                status = [JobStatus(v) for v in q.get("status", "").split(",") if v]
            except ValueError:
                return error_response(
                    400,
                    f"Unknown status {q.get('status')!r}.",
                    "Use queued, running, done, failed or cancelled.",
                    "options",
                )
        try:
            limit = int(q.get("limit", "50"))
            offset = int(q.get("offset", "0"))
        except ValueError:
            return error_response(400, "limit and offset must be whole numbers.", "", "options")
        if not (1 <= limit <= 200 and 0 <= offset <= 1_000_000_000):
            return error_response(
                400,
                f"limit={limit}, offset={offset} is out of range.",
                "Use a limit from 1 to 200 and an offset from 0 up.",
                "options",
            )
        body = await to_thread.run_sync(
            lambda: [
                job_json(st, j)
                for j in st.list(limit=limit, user=user, status=status, offset=offset)
            ]
        )
        return JSONResponse({"jobs": body}, headers=_NO_STORE)

    def _job(self, request: Request) -> Job:
        return self.store.get(request.path_params["id"])

    async def detail(self, request: Request) -> Response:
        st = self.store
        by = request_user(request) if self.settings.login_required else None
        try:
            job = await to_thread.run_sync(self._job, request)
            if request.method == "DELETE":
                job = await to_thread.run_sync(lambda: st.cancel(job.id, by=by))
            body = await to_thread.run_sync(job_json, st, job)
        except StudioError as e:
            return _studio_error_response(e)
        return JSONResponse(body, headers=_NO_STORE)

    async def model(self, request: Request) -> Response:
        return await self._download(request, "model")

    async def report(self, request: Request) -> Response:
        return await self._download(request, "report")

    async def report_md(self, request: Request) -> Response:
        return await self._download(request, "md")

    async def report_html(self, request: Request) -> Response:
        return await self._download(request, "html")

    async def result(self, request: Request) -> Response:
        return await self._download(request, "result")

    async def kit(self, request: Request) -> Response:
        return await self._download(request, "kit")

    async def _download(self, request: Request, what: str) -> Response:
        st = self.store
        try:
            job = await to_thread.run_sync(self._job, request)
        except StudioError as e:
            return _studio_error_response(e)
        refused = _not_ready(job, what)
        if refused is not None:
            return refused
        found = _file_of(job, what, request.query_params.get("preset"))
        if isinstance(found, Response):
            return found
        sha, name, media = found
        if job.purged_at is not None or not st.has_artifact(sha):
            return error_response(
                410,
                "This job's files were removed by the retention policy.",
                "Submit the model again.",
                "job",
            )
        try:
            path = await to_thread.run_sync(st.verified_artifact, sha)
        except StudioError as e:  # damaged on disk: an error, never the wrong bytes
            return _studio_error_response(e)
        return FileResponse(
            path,
            media_type=media,
            filename=name,
            headers={
                "ETag": f'"{sha}"',
                "Cache-Control": "private, max-age=31536000, immutable",
                "X-Content-Type-Options": "nosniff",
            },
        )

    async def not_found(self, request: Request) -> Response:
        return error_response(404, f"No API route {request.url.path}.", "See GET /api.")


# ---------------------------------------------------------------- routes


def api_routes(settings: Settings | None = None) -> list[Route]:
    """Starlette routes for ``st.App(routes=...)``."""
    h = _Handlers(settings or load_settings())
    return [
        Route("/api", h.index, methods=["GET"]),
        Route("/api/", h.index, methods=["GET"]),
        Route("/api/jobs", h.create, methods=["POST"]),
        Route("/api/jobs", h.listing, methods=["GET"]),
        Route("/api/jobs/{id}", h.detail, methods=["GET", "DELETE"]),
        Route("/api/jobs/{id}/model.tflite", h.model, methods=["GET", "HEAD"]),
        Route("/api/jobs/{id}/report.json", h.report, methods=["GET", "HEAD"]),
        Route("/api/jobs/{id}/report.md", h.report_md, methods=["GET", "HEAD"]),
        Route("/api/jobs/{id}/report.html", h.report_html, methods=["GET", "HEAD"]),
        Route("/api/jobs/{id}/result.json", h.result, methods=["GET", "HEAD"]),
        Route("/api/jobs/{id}/kit.zip", h.kit, methods=["GET", "HEAD"]),
        Route(
            "/api/{rest:path}",
            h.not_found,
            methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"],
        ),
    ]
