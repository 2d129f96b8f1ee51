"""Worker task ``deploy``: read one untrusted ``.tflite`` and write its deploy
kit (``core.model.deploy``) as a zip. The file is parsed here, in the sandbox,
never in the server; the TFLite Micro arena comes from the probe's result."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from core.errors import DeployError
from core.model.deploy import TARGET_FILES, kit_spec, render_kit, write_zip
from core.model.deploy.micro import MAX_C_ARRAY_BYTES, resolver_calls
from core.model.reader import read_model
from core.tasks.deploy import TARGETS, DeployResult, KitFile
from core.tasks.requests import DeployRequest

__all__ = ["run", "MAX_PREVIEW_BYTES"]

MAX_PREVIEW_BYTES = 64 << 10  # shown in the page; model_data.cc is not


def _litert_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ai-edge-litert")
    except PackageNotFoundError:
        return "2.3.0"


def _target_of(path: str) -> str:
    return next((t for t, files in TARGET_FILES.items() if path in files), "")


def _warnings(
    spec_ops: tuple[str, ...],
    custom: tuple[str, ...],
    flex: tuple[str, ...],
    size: int,
    micro: bool,
) -> list[str]:
    out = []
    if flex:
        out.append(
            "The model uses Select TF ops (" + ", ".join(flex) + "): it runs only where the "
            "Flex delegate is linked; the Python kit and TFLite Micro cannot run it."
        )
    if micro:
        _, missing = resolver_calls(spec_ops, custom)
        if missing:
            out.append("TFLite Micro has no kernel for: " + ", ".join(missing) + ".")
        if size > MAX_C_ARRAY_BYTES:
            out.append("The model is too large for a microcontroller; micro/ has no C array.")
    return out


def run(req: DeployRequest, workdir: Path, progress: Callable[..., None]) -> DeployResult:
    targets = tuple(t for t in TARGETS if t in req.targets)
    if not targets:
        raise DeployError(
            "No deploy target was chosen.", "Choose from: " + ", ".join(TARGETS) + "."
        )
    progress("Reading the model's signature")
    data = Path(req.tflite_path).read_bytes()
    info = read_model(data)
    probe = req.micro_probe
    spec = kit_spec(
        info,
        req.display_name,
        origin=req.origin,
        probe_arena=probe.arena_bytes if probe and probe.ok else None,
        micro_error=(probe.error or "it failed") if probe and not probe.ok else None,
        litert_version=_litert_version(),
    )
    progress("Writing the code for " + ", ".join(targets))
    files = render_kit(spec, data, targets)
    zip_size = write_zip(files, workdir / req.out_zip)
    listing = tuple(
        KitFile(
            path=p,
            size=len(b),
            target=_target_of(p),
            preview=b.decode("utf-8", "replace")
            if p != "model.tflite" and len(b) <= MAX_PREVIEW_BYTES
            else None,
        )
        for p, b in sorted(files.items())
    )
    return DeployResult(
        model_name=req.display_name,
        model_size=len(data),
        targets=targets,
        files=listing,
        zip_size=zip_size,
        ops=spec.ops + spec.custom_ops,
        arena_bytes=spec.arena_bytes,
        signature_keys=tuple(s.key for s in spec.signatures),
        quantized_io=spec.quantized_io,
        warnings=tuple(
            _warnings(spec.ops, spec.custom_ops, spec.select_tf_ops, len(data), "micro" in targets)
        ),
    )
