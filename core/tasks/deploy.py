"""What a deploy kit holds: the targets it can be built for, and the summary
of one built kit (its files, with previews of the small ones)."""

from __future__ import annotations

from dataclasses import dataclass

from core.errors import OptionsError
from core.serial import Serializable

__all__ = ["TARGETS", "TARGET_TITLES", "parse_targets", "KitFile", "DeployResult"]

TARGETS: tuple[str, ...] = ("python", "android", "ios", "cpp", "micro")
TARGET_TITLES = {
    "python": "Python (ai-edge-litert)",
    "android": "Android (Kotlin, CompiledModel)",
    "ios": "iOS (Swift)",
    "cpp": "C++ (LiteRT C++ API)",
    "micro": "Microcontrollers (TFLite Micro)",
}


def parse_targets(text: str | None) -> tuple[str, ...]:
    """``python,android`` -> ``("python", "android")``; empty: every target."""
    if not text or not str(text).strip():
        return TARGETS
    wanted = [t.strip().lower() for t in str(text).split(",") if t.strip()]
    unknown = [t for t in wanted if t not in TARGETS]
    if unknown:
        raise OptionsError(
            f"Unknown deploy target {unknown[0]!r}.",
            "Choose from: " + ", ".join(TARGETS) + " (comma-separated).",
        )
    return tuple(t for t in TARGETS if t in wanted)


@dataclass(frozen=True)
class KitFile(Serializable):
    path: str  # inside the zip, e.g. "python/run.py"
    size: int
    target: str  # "python" … "micro", or "" for the kit's own files
    preview: str | None = None  # the text, for files small enough to show


@dataclass(frozen=True)
class DeployResult(Serializable):
    model_name: str
    model_size: int
    targets: tuple[str, ...]
    files: tuple[KitFile, ...]
    zip_size: int
    ops: tuple[str, ...]  # the model's op types (the micro resolver's list)
    arena_bytes: int | None  # TFLite Micro arena the kit sets (probe + margin)
    signature_keys: tuple[str, ...]
    quantized_io: bool  # some input or output is quantized (the code converts)
    warnings: tuple[str, ...] = ()

    def file(self, path: str) -> KitFile | None:
        return next((f for f in self.files if f.path == path), None)
