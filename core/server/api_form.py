"""The job form of ``POST /api/jobs``: ``multipart/form-data`` parsed as it
arrives (files go straight into the artifact store, hashed on the way; text
fields are small), and the conversion options read from its text fields."""

from __future__ import annotations

from typing import Any

from core.errors import OptionsError
from core.server.artifacts import ArtifactStore, ArtifactWriter, too_large_upload
from core.server.records import ArtifactRef

__all__ = [
    "ApiError",
    "StreamingForm",
    "options_from_fields",
    "conversion_options",
    "flag",
    "FILE_FIELDS",
    "TEXT_FIELDS",
    "SOURCE_FIELDS",
]

# every file a job of some kind takes (``core.server.api_kinds`` says which kind takes which)
FILE_FIELDS = ("model", "calibration_data", "eval_data", "tflite", "b")
# the converter's options about the model and its calibration data
SOURCE_FIELDS = (
    "select_tf_ops",
    "allow_custom_ops",
    "signature",
    "input_shape",
    "calibration_samples",
    "image_range",
)
TEXT_FIELDS = ("preset", *SOURCE_FIELDS, "keep_float", "sparsity")
_MAX_FIELD_BYTES = 16 << 10
_MAX_FIELDS = 64


class ApiError(Exception):
    """An HTTP error answer: status, message, hint, phase, headers."""

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


class StreamingForm:
    """Parse ``multipart/form-data`` as it arrives: file parts go straight
    into the artifact store (hashed on the way), text fields are small."""

    def __init__(self, artifacts: ArtifactStore, max_file_bytes: int, limit_mb: int) -> None:
        self.artifacts = artifacts
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
            raise ApiError(400, "The form has too many fields.", phase="options")
        if b"filename" in opts:
            self._filename = opts[b"filename"].decode("utf-8", "replace")
            if self._name not in FILE_FIELDS:
                raise ApiError(
                    400,
                    f"Unexpected file field {self._name!r}.",
                    "File fields are: " + ", ".join(FILE_FIELDS) + " (see GET /api).",
                    phase="options",
                )
            if self._name in self.files or any(n == self._name for n, _, _ in self._finished):
                raise ApiError(
                    400,
                    f"Two files were sent as {self._name!r}.",
                    "Send one file per field.",
                    phase="options",
                )
            self._writer = self.artifacts.writer(
                self.max_file_bytes, too_large_upload(self.limit_mb)
            )
            self._writers.append(self._writer)
        elif self._name in FILE_FIELDS:
            raise ApiError(
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
                raise ApiError(400, f"The field {self._name!r} is too long.", phase="options")

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
            raise ApiError(
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


def flag(fields: dict[str, list[str]], name: str, default: bool = False) -> bool:
    """A true/false field (``1 true yes on`` / ``0 false no off``)."""
    vals = fields.get(name) or []
    if not vals:
        return default
    v = vals[-1].strip().lower()
    if v in ("1", "true", "yes", "on"):
        return True
    if v in ("0", "false", "no", "off", ""):
        return False
    raise OptionsError(f"{name}={vals[-1]!r} is not true or false.", f"Send {name}=true.")


def options_from_fields(fields: dict[str, list[str]]) -> dict[str, Any]:
    """The options of a conversion job (every field must be one it takes)."""
    unknown = sorted(set(fields) - set(TEXT_FIELDS) - {"kind", "force"})
    if unknown:
        raise OptionsError(
            "Unknown field(s): " + ", ".join(unknown) + ".",
            "Known fields: model, calibration_data, " + ", ".join(TEXT_FIELDS) + ".",
        )
    return conversion_options(fields)


def conversion_options(
    fields: dict[str, list[str]], default_preset: str = "float32"
) -> dict[str, Any]:
    """``ConversionOptions`` (as a dict) from the converter's fields; other fields are
    the caller's to check."""
    from core.options import ConversionOptions, Preset, parse_input_shape

    def one(name: str, default: str = "") -> str:
        vals = fields.get(name) or []
        return vals[-1].strip() if vals else default

    preset = one("preset", default_preset)
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
        select_tf_ops=flag(fields, "select_tf_ops"),
        allow_custom_ops=flag(fields, "allow_custom_ops"),
        signature_key=one("signature") or None,
        input_shapes=tuple(shapes),
        calibration_samples=samples,
        image_range=(lo, hi),
        keep_float_ops=tuple(v.strip() for v in fields.get("keep_float") or [] if v.strip()),
        sparsity=flag(fields, "sparsity"),
    )
    return opts.to_dict()
