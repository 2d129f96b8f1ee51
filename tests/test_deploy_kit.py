"""The deploy kit of every sample model, checked for real: ``python/run.py``
runs in a subprocess and gives the app's own LiteRT outputs on the same
inputs; ``micro/model_data.cc`` compiles with g++ and its bytes are the
``.tflite``; the op resolver names exactly the model's ops; the Kotlin, Swift
and C++ files carry the real names, shapes and quantization parameters (read
from the LiteRT interpreter, not from our reader)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from core.model.deploy.micro import micro_ops
from core.model.reader import OpKind, read_model
from core.options import ConversionOptions, Preset
from core.pipeline.convert import convert_model
from core.pipeline.deploy import build_deploy_kit
from core.tasks.metrics import dequantize_output, quantize_input
from core.worker.run_tflite import open_runner
from tests.conftest import ROOT
from tests.helpers.literals import c_literal, kotlin_literal, swift_literal

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

SAMPLES = ROOT / "sample_models"
MANIFEST = json.loads((SAMPLES / "manifest.json").read_text())
MODELS = [e for e in MANIFEST if e["kind"] in ("saved_model_zip", "keras")]
GXX = shutil.which("g++")
if GXX is None and __import__("os").environ.get("CI"):
    raise RuntimeError("CI must compile the micro kit: .ci/run installs g++")


def _options(entry: dict[str, Any], preset: Preset) -> ConversionOptions:
    flex = "Select" in str((entry.get("expected") or {}).get("float32", ""))
    cal = SAMPLES / entry["calibration"] if preset.needs_calibration else None
    keys = entry.get("signature_keys") or []
    sig = keys[0] if len(keys) > 1 and "serving_default" not in keys else None
    return ConversionOptions(
        preset=preset,
        select_tf_ops=flex,
        signature_key=sig,
        calibration_path=str(cal) if cal else None,
    )


_EVERY_SIGNATURE = (
    "import sys, tensorflow as tf\n"
    "c = tf.lite.TFLiteConverter.from_saved_model(sys.argv[1], signature_keys=['encode', 'decode'])\n"
    "open(sys.argv[2], 'wb').write(c.convert())\n"
)


def _every_signature(tmp: Path) -> Path:
    """The multi-signature sample with both signatures in one file (TensorFlow's
    converter directly: the app converts one signature at a time)."""
    with zipfile.ZipFile(SAMPLES / "multi_signature.zip") as z:
        z.extractall(tmp / "ms")
    sm = next(p.parent for p in (tmp / "ms").rglob("saved_model.pb"))
    out = tmp / "multi_signature-both.tflite"
    subprocess.run(
        [sys.executable, "-c", _EVERY_SIGNATURE, str(sm), str(out)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    return out


@pytest.fixture(scope="module")
def kits(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """name -> {tflite, kit (extracted folder), result, entry}: every sample model
    as float32, and the digits classifier as int8 too (quantized inputs and outputs)."""
    root = tmp_path_factory.mktemp("kits")
    plans = [(e, Preset.FLOAT32) for e in MODELS] + [(MODELS[0], Preset.INT8)]
    out: dict[str, dict[str, Any]] = {}
    for entry, preset in plans:
        name = f"{Path(entry['file']).stem}-{entry['kind']}-{preset.value}"
        tfl = root / f"{name}.tflite"
        convert_model(SAMPLES / entry["file"], tfl, _options(entry, preset))
        zip_path = root / f"{name}-kit.zip"
        res = build_deploy_kit(tfl, zip_path, origin=f"converted with the {preset.value} preset")
        folder = root / name
        with zipfile.ZipFile(zip_path) as z:
            z.extractall(folder)
        out[name] = {"tflite": tfl, "kit": folder, "result": res, "entry": entry}
    both = _every_signature(root)
    entry = next(e for e in MODELS if e["file"] == "multi_signature.zip")
    res = build_deploy_kit(both, root / "both.zip", origin="converted by TensorFlow directly")
    with zipfile.ZipFile(root / "both.zip") as z:
        z.extractall(root / "both")
    out["multi_signature-both"] = {
        "tflite": both,
        "kit": root / "both",
        "result": res,
        "entry": entry,
    }
    return out


def _inputs(entry: dict[str, Any], names: list[str], n: int = 5) -> dict[str, np.ndarray]:
    found: dict[str, np.ndarray] = {}
    for key in ("eval", "calibration"):
        if entry.get(key):
            with np.load(SAMPLES / entry[key]) as z:
                for name in names:
                    if name in z.files and name not in found:
                        found[name] = z[name][:n]
    assert set(found) == set(names), (names, found.keys())
    return found


def _app_run(tflite: Path, key: str, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The app's own LiteRT run (``core.worker.run_tflite``: one sample at a time)."""
    interp, runner, key = open_runner(tflite, key)
    ins, outs = runner.get_input_details(), runner.get_output_details()
    got: dict[str, list[np.ndarray]] = {k: [] for k in outs}
    for i in range(len(next(iter(arrays.values())))):
        if i:
            interp.reset_all_variables()
        res = runner(**{k: quantize_input(v[i : i + 1], ins[k])[0] for k, v in arrays.items()})
        for k in outs:
            got[k].append(dequantize_output(res[k], outs[k]))
    return {k: np.concatenate(v) for k, v in got.items()}


def _signatures(tflite: Path) -> dict[str, dict[str, list[str]]]:
    from ai_edge_litert.interpreter import Interpreter

    return Interpreter(model_path=str(tflite)).get_signature_list()


def test_every_sample_model_has_a_kit(kits: dict[str, dict[str, Any]]) -> None:
    assert len(kits) == len(MODELS) + 2
    assert len(_signatures(kits["multi_signature-both"]["tflite"])) == 2
    for name, k in kits.items():
        files = {f.path for f in k["result"].files}
        for want in ("README.md", "model.tflite", "python/run.py", "android/ModelRunner.kt",
                     "ios/ModelRunner.swift", "cpp/main.cc", "micro/model_data.cc",
                     "micro/op_resolver.h", "micro/main.cc"):  # fmt: skip
            assert want in files, (name, want)
        readme = (k["kit"] / "README.md").read_text()
        assert "converted " in readme and "What the model expects" in readme


def test_run_py_outputs_equal_the_apps_own_litert_run(
    kits: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    for name, k in kits.items():
        tflite, entry = k["tflite"], k["entry"]
        flex = any(op.kind is OpKind.SELECT_TF for op in read_model(tflite).operators)
        for key, sig in _signatures(tflite).items():
            arrays = _inputs(entry, list(sig["inputs"]))
            data, saved = tmp_path / f"{name}-{key}-in.npz", tmp_path / f"{name}-{key}-out.npz"
            np.savez(data, **arrays)
            proc = subprocess.run(
                [sys.executable, str(k["kit"] / "python" / "run.py"), str(data),
                 "--signature", key, "--save", str(saved)],
                capture_output=True, text=True, timeout=120,
            )  # fmt: skip
            if flex:
                assert proc.returncode == 2, proc.stderr
                assert "Flex delegate" in proc.stderr, proc.stderr
                continue
            assert proc.returncode == 0, (name, key, proc.stderr[-2000:])
            want = _app_run(tflite, key, arrays)
            with np.load(saved) as got:
                assert set(got.files) == set(want), (got.files, want.keys())
                for out_name, y in want.items():
                    np.testing.assert_allclose(got[out_name], y, rtol=1e-5, atol=1e-6)
            assert all(repr(o) in proc.stdout for o in sig["outputs"]), proc.stdout


def _c_array(text: str) -> bytes:
    body = text.split("g_model_data[] = {", 1)[1].split("};", 1)[0]
    return bytes(int(h, 16) for h in re.findall(r"0x([0-9a-f]{2})", body))


@pytest.mark.skipif(GXX is None, reason="no g++ (.ci/run installs it)")
def test_model_data_compiles_and_holds_the_model_bytes(
    kits: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    dump = tmp_path / "dump.cc"
    dump.write_text(
        '#include <cstdio>\n#include "model_data.h"\n'
        "int main() { return fwrite(g_model_data, 1, g_model_data_len, stdout) == "
        "g_model_data_len ? 0 : 1; }\n"
    )
    for name, k in list(kits.items())[:3] + list(kits.items())[-1:]:
        micro = k["kit"] / "micro"
        text = (micro / "model_data.cc").read_text()
        model = k["tflite"].read_bytes()
        assert "alignas(16) const unsigned char g_model_data[]" in text
        assert _c_array(text) == model
        exe = tmp_path / f"{name}-dump"
        subprocess.run(
            [GXX, "-std=c++17", "-O0", f"-I{micro}", str(dump), str(micro / "model_data.cc"),
             "-o", str(exe)], check=True, capture_output=True, timeout=300,
        )  # fmt: skip
        assert subprocess.run([str(exe)], capture_output=True, check=True).stdout == model


def test_the_op_resolver_registers_exactly_the_models_ops(kits: dict[str, dict[str, Any]]) -> None:
    inverse = {m: op for op, m in micro_ops()["builtin"].items()}
    for name, k in kits.items():
        text = (k["kit"] / "micro" / "op_resolver.h").read_text()
        calls = re.findall(r"resolver\.(Add\w+)\(\)", text)
        ops = {op.name for op in read_model(k["tflite"]).operators if op.kind is OpKind.BUILTIN}
        registered = {inverse[c] for c in calls}
        no_kernel = {o for o in ops if o not in micro_ops()["builtin"]}
        assert registered == ops - no_kernel, (name, registered, ops)
        assert len(calls) == len(set(calls))
        (n,) = re.findall(r"MicroMutableOpResolver<(\d+)>", text)
        assert int(n) == max(len(calls), 1)
        header = (k["kit"] / "micro" / "model_data.h").read_text()
        (arena,) = re.findall(r"kTensorArenaSize = (\d+);", header)
        probe = k["result"].arena_bytes
        if probe:
            assert int(arena) == probe


_STR = r'"(?:[^"\\]|\\.)*"'
_PATTERNS = {
    "android/ModelRunner.kt": (
        rf"TensorSpec\(({_STR}), ({_STR}), intArrayOf\(([\d, ]*)\), ([-\d.eE]+)f, (-?\d+)\)",
        kotlin_literal,
    ),
    "ios/ModelRunner.swift": (
        rf"TensorSpec\(name: ({_STR}), dtype: ({_STR}), shape: \[([\d, ]*)\], "
        rf"scale: ([-\d.eE]+), zeroPoint: (-?\d+)\)",
        swift_literal,
    ),
    "cpp/main.cc": (
        rf"\{{({_STR}), ({_STR}), \{{([\d, ]*)\}}, ([-\d.eE]+)f, (-?\d+)\}}",
        c_literal,
    ),
}


def parse_specs(text: str, path: str) -> list[tuple[str, str, tuple[int, ...], float, int]]:
    pattern, unquote = _PATTERNS[path]
    return [
        (unquote(n), unquote(d), tuple(int(x) for x in s.split(",") if x.strip()), float(f), int(z))
        for n, d, s, f, z in re.findall(pattern, text)
    ]


def _expected(tflite: Path) -> list[tuple[str, str, tuple[int, ...], float, int]]:
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(tflite))
    rows = []
    for key in interp.get_signature_list():
        r = interp.get_signature_runner(key)
        for details in (r.get_input_details(), r.get_output_details()):
            for name, d in details.items():
                scale, zp = d["quantization"]
                rows.append(
                    (name, np.dtype(d["dtype"]).name, tuple(int(x) for x in d["shape"]),
                     float(np.float32(scale)), int(zp))
                )  # fmt: skip
    return sorted(rows)


def test_kotlin_swift_and_cpp_carry_the_real_signature(kits: dict[str, dict[str, Any]]) -> None:
    for name, k in kits.items():
        want = _expected(k["tflite"])
        for path in _PATTERNS:
            got = parse_specs((k["kit"] / path).read_text(), path)
            got = sorted((n, d, s, float(np.float32(f)), z) for n, d, s, f, z in got)
            assert got == want, (name, path, got, want)
    int8 = next(k for n, k in kits.items() if n.endswith("-int8"))
    assert int8["result"].quantized_io
    assert any(z != 0 for *_, z in _expected(int8["tflite"]))
