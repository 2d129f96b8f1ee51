"""The app process never imports TensorFlow: only the worker does."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _core_modules_outside_the_worker() -> list[str]:
    """Every module of ``core`` but the worker room (import-linter checks the
    same statically; this proves it at run time, lazy imports included)."""
    import pkgutil

    import core

    return sorted(
        m.name
        for m in pkgutil.walk_packages(core.__path__, "core.")
        if not m.name.startswith("core.worker") and not m.name.endswith("__main__")
    )


CORE_MODULES = _core_modules_outside_the_worker()


def _imports_tensorflow(code: str) -> bool:
    probe = (
        code
        + "\nimport sys\nprint('TF' if any(m == 'tensorflow' or m.startswith(('tensorflow.', 'keras')) for m in sys.modules) else 'clean')"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().endswith("TF")


def test_core_outside_the_worker_does_not_import_tensorflow():
    assert "core.pipeline.sweep" in CORE_MODULES and "core.server.api" in CORE_MODULES
    assert not _imports_tensorflow("\n".join(f"import {m}" for m in CORE_MODULES))


def test_the_guard_can_fail():
    assert _imports_tensorflow("import tensorflow")


def test_cli_help_and_bad_input_do_not_import_tensorflow(tmp_path):
    code = (
        "from core.cli import main\n"
        f"main(['convert', {str(tmp_path)!r}, '-o', {str(tmp_path / 'o.tflite')!r}])\n"
    )
    assert not _imports_tensorflow(code)
