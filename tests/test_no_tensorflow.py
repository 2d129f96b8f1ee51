"""The app process never imports TensorFlow: only the worker does."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CORE_MODULES = ["core.errors", "core.options", "core.archive", "core.worker", "core.convert",
                "core.settings", "core.jobs", "core.cli", "core.units", "core.tflite_model",
                "core.compat", "core.report", "core.api", "core.auth", "core.evaluate",
                "core.diff", "core.benchmark", "core.quant_debug", "core.cli_eval",
                "core.cli_server", "core.cli_options"]


def _imports_tensorflow(code: str) -> bool:
    probe = code + "\nimport sys\nprint('TF' if any(m == 'tensorflow' or m.startswith(('tensorflow.', 'keras')) for m in sys.modules) else 'clean')"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().endswith("TF")


def test_core_outside_the_worker_does_not_import_tensorflow():
    assert not _imports_tensorflow("\n".join(f"import {m}" for m in CORE_MODULES))


def test_the_guard_can_fail():
    assert _imports_tensorflow("import tensorflow")


def test_cli_help_and_bad_input_do_not_import_tensorflow(tmp_path):
    code = (
        "from core.cli import main\n"
        f"main(['convert', {str(tmp_path)!r}, '-o', {str(tmp_path / 'o.tflite')!r}])\n"
    )
    assert not _imports_tensorflow(code)
