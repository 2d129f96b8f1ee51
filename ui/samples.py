"""Sample models listed in ``sample_models/manifest.json`` (read at run time)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

__all__ = ["SAMPLES_DIR", "Sample", "load_samples", "find_sample"]

SAMPLES_DIR = Path(__file__).resolve().parent.parent / "sample_models"
_MODEL_KINDS = {
    "saved_model_zip": "SavedModel (zip)",
    "keras": "Keras file",
    "h5": "Keras HDF5 file",
    "tflite": "TFLite model",
}


@dataclass(frozen=True)
class Sample:
    file: str
    title: str
    description: str
    kind: str
    size_bytes: int
    calibration: str | None = None
    eval: str | None = None  # held-out evaluation data (.npz with labels)
    signature_keys: tuple[str, ...] = ()
    inputs: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    @property
    def path(self) -> Path:
        return SAMPLES_DIR / self.file

    @property
    def calibration_path(self) -> Path | None:
        if not self.calibration:
            return None
        p = SAMPLES_DIR / self.calibration
        return p if p.is_file() else None

    @property
    def eval_path(self) -> Path | None:
        if not self.eval:
            return None
        p = SAMPLES_DIR / self.eval
        return p if p.is_file() else None

    @property
    def kind_label(self) -> str:
        return _MODEL_KINDS.get(self.kind, self.kind)


def _plain_name(v: Any) -> str | None:
    """A file name next to the manifest (no folders), or None."""
    name = str(v or "")
    return name if name and "/" not in name and "\\" not in name else None


@lru_cache(maxsize=4)
def _load(path: str, mtime: float) -> tuple[Sample, ...]:
    try:
        entries = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ()
    out = []
    for e in entries if isinstance(entries, list) else []:
        if not isinstance(e, dict) or e.get("kind") not in _MODEL_KINDS:
            continue
        f = str(e.get("file", ""))
        if not f or "/" in f or "\\" in f or not (SAMPLES_DIR / f).is_file():
            continue
        out.append(
            Sample(
                file=f,
                title=str(e.get("title") or f),
                description=str(e.get("description") or ""),
                kind=str(e["kind"]),
                size_bytes=int(e.get("size_bytes") or (SAMPLES_DIR / f).stat().st_size),
                calibration=_plain_name(e.get("calibration")),
                eval=_plain_name(e.get("eval")),
                signature_keys=tuple(e.get("signature_keys") or ()),
                inputs=dict(e.get("inputs") or {}),
            )
        )
    return tuple(out)


def load_samples(manifest: Path | None = None) -> tuple[Sample, ...]:
    """The sample models whose files are present (empty if there is no manifest)."""
    p = manifest or SAMPLES_DIR / "manifest.json"
    try:
        mtime = p.stat().st_mtime
    except OSError:
        return ()
    return _load(str(p), mtime)


def find_sample(file: str) -> Sample | None:
    return next((s for s in load_samples() if s.file == file), None)
