"""Deploy kits: code for a model's own signature, per target (Python on
ai-edge-litert, Android Kotlin, iOS Swift, LiteRT C++, TFLite Micro), and a
README for the model. Pure text from templates: it reads the model with
``core.model.reader`` and runs nothing (the TFLite Micro arena comes from the
probe, passed in)."""

from __future__ import annotations

from core.model.deploy.kit import TARGET_FILES, render_kit, write_zip
from core.model.deploy.spec import KitSpec, SignatureSpec, TensorSpec, kit_spec

__all__ = [
    "KitSpec",
    "SignatureSpec",
    "TensorSpec",
    "kit_spec",
    "render_kit",
    "write_zip",
    "TARGET_FILES",
]
