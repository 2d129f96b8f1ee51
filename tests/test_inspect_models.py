"""Reader, compatibility and report checks against models converted by TensorFlow.

The models are built once per module in a subprocess (the test process never
imports TensorFlow) and cross-checked against LiteRT's own interpreter and
C++ analyzer on the same files.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from core.errors import OptionsError, StudioError, TFLiteFormatError
from core.model.compat import Target, Verdict, check_compatibility
from core.model.reader import OpKind, read_model
from core.model.report import build_report, render
from core.pipeline.inspect import probe_micro
from tests.conftest import shown

_BUILD = textwrap.dedent(
    """
    import os, sys
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import numpy as np, tensorflow as tf
    out = sys.argv[1]
    tf.keras.utils.set_random_seed(0)

    def save(name, conv):
        with open(os.path.join(out, name + ".tflite"), "wb") as f:
            f.write(conv.convert())

    # conv + depthwise + dense; Keras 3 export, dynamic batch
    inp = tf.keras.Input((8, 8, 3))
    x = tf.keras.layers.Conv2D(4, 3, activation="relu")(inp)
    x = tf.keras.layers.DepthwiseConv2D(3, padding="same")(x)
    x = tf.keras.layers.Flatten()(x)
    model = tf.keras.Model(inp, tf.keras.layers.Dense(10, activation="softmax")(x))
    model.export(os.path.join(out, "sm"), verbose=False)
    save("float", tf.lite.TFLiteConverter.from_saved_model(os.path.join(out, "sm")))

    # the same model, batch 1, full-integer quantized
    model.export(os.path.join(out, "sm1"), verbose=False,
                 input_signature=[tf.TensorSpec([1, 8, 8, 3], tf.float32)])
    def rep():
        rng = np.random.default_rng(0)
        for _ in range(8):
            yield [rng.random((1, 8, 8, 3), dtype=np.float32)]
    c = tf.lite.TFLiteConverter.from_saved_model(os.path.join(out, "sm1"))
    c.optimizations = [tf.lite.Optimize.DEFAULT]
    c.representative_dataset = rep
    c.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    c.inference_input_type = tf.int8
    c.inference_output_type = tf.int8
    save("int8", c)

    # Cumprod has no TFLite builtin: a custom op, or a Select TF (Flex) op
    class Cum(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([1, 4], tf.float32)])
        def f(self, x):
            return tf.math.cumprod(x, axis=1) + 1.0
    m = Cum()
    c = tf.lite.TFLiteConverter.from_concrete_functions([m.f.get_concrete_function()], m)
    c.allow_custom_ops = True
    save("custom", c)
    c = tf.lite.TFLiteConverter.from_concrete_functions([m.f.get_concrete_function()], m)
    c.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.SELECT_TF_OPS]
    save("flex", c)

    # weights that are 90 % zeros, stored sparse
    w = np.random.default_rng(1).random((64, 32), dtype=np.float32)
    w[np.random.default_rng(2).random((64, 32)) < 0.9] = 0.0
    class Sparse(tf.Module):
        def __init__(self):
            self.w = tf.Variable(w)
        @tf.function(input_signature=[tf.TensorSpec([1, 64], tf.float32)])
        def f(self, x):
            return tf.nn.relu(tf.matmul(x, self.w))
    s = Sparse()
    c = tf.lite.TFLiteConverter.from_concrete_functions([s.f.get_concrete_function()], s)
    c.optimizations = [tf.lite.Optimize.EXPERIMENTAL_SPARSITY]
    save("sparse", c)
    """
)

_NAMES = ("float", "int8", "custom", "flex", "sparse")


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("inspect_models")
    proc = subprocess.run(
        [sys.executable, "-c", _BUILD, str(out)], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    paths = {name: out / f"{name}.tflite" for name in _NAMES}
    assert all(p.stat().st_size > 0 for p in paths.values())
    return paths


def _analyzer_op_counts(path: Path) -> Counter:
    from ai_edge_litert import _pywrap_analyzer_wrapper as analyzer

    text = analyzer.ModelAnalyzer(str(path), True, False)
    return Counter(re.findall(r"^\s+Op#\d+ (\S+?)\(", text, flags=re.M))


# ------------------------------------------------------------------ reader


def test_op_names_kinds_and_counts(models):
    float_model = read_model(models["float"])
    assert float_model.op_counts == {
        "CONV_2D": 1,
        "DEPTHWISE_CONV_2D": 1,
        "SHAPE": 1,
        "STRIDED_SLICE": 1,
        "PACK": 1,
        "RESHAPE": 1,
        "FULLY_CONNECTED": 1,
        "SOFTMAX": 1,
    }
    assert {op.kind for op in float_model.operators} == {OpKind.BUILTIN}
    conv = float_model.operators[0]
    assert conv.options_type == "Conv2DOptions"
    assert conv.fused_activation == "RELU"
    assert conv.options["padding"] == "VALID" and conv.options["stride_w"] == 1

    custom = read_model(models["custom"])
    assert [(op.name, op.kind) for op in custom.operators] == [
        ("Cumprod", OpKind.CUSTOM),
        ("ADD", OpKind.BUILTIN),
    ]
    flex = read_model(models["flex"])
    assert [(op.name, op.kind) for op in flex.operators] == [
        ("FlexCumprod", OpKind.SELECT_TF),
        ("ADD", OpKind.BUILTIN),
    ]


@pytest.mark.parametrize("name", _NAMES)
def test_op_counts_match_litert_analyzer(models, name):
    assert Counter(read_model(models[name]).op_counts) == _analyzer_op_counts(models[name])


@pytest.mark.parametrize("name", ["float", "int8", "sparse"])
def test_tensors_match_litert_interpreter(models, name):
    from ai_edge_litert.interpreter import Interpreter

    info = read_model(models[name])
    tensors = info.subgraphs[0].tensors
    details = Interpreter(model_path=str(models[name])).get_tensor_details()
    assert len(details) == len(tensors)
    for d in details:
        t = tensors[d["index"]]
        assert t.name == d["name"]
        assert list(t.shape) == d["shape"].tolist()
        expected_sig = d["shape_signature"].tolist()
        assert list(t.shape_signature if t.shape_signature is not None else t.shape) == expected_sig
        assert np.dtype(t.dtype.lower()) == np.dtype(d["dtype"])
        q = d["quantization_parameters"]
        scales = list(t.quantization.scales) if t.quantization else []
        zero_points = list(t.quantization.zero_points) if t.quantization else []
        np.testing.assert_allclose(scales, q["scales"], rtol=0, atol=0)
        assert zero_points == q["zero_points"].tolist()
        if t.quantization:
            assert t.quantization.quantized_dimension == q["quantized_dimension"]
        assert t.sparse == bool(d["sparsity_parameters"])


def test_tensor_bytes_are_buffer_sizes(models):
    info = read_model(models["int8"])
    consts = [t for t in info.tensors if t.is_constant]
    assert consts
    for t in consts:
        assert t.bytes == int(np.prod(t.shape)) * np.dtype(t.dtype.lower()).itemsize, t.name
        assert info.buffers[t.buffer].size == t.bytes
    assert all(t.bytes == 0 for t in info.tensors if not t.is_constant)
    kernel = next(t for t in consts if t.shape == (4, 3, 3, 3))
    assert kernel.dtype == "INT8" and kernel.bytes == 108
    assert kernel.quantization is not None and len(kernel.quantization.scales) == 4  # per channel


def test_quantization_of_int8_io(models):
    info = read_model(models["int8"])
    sg = info.subgraphs[0]
    inp = sg.tensors[sg.inputs[0]]
    assert inp.dtype == "INT8" and inp.shape == (1, 8, 8, 3)
    assert len(inp.quantization.scales) == 1
    assert inp.quantization.zero_points == (-128,)  # inputs in [0, 1)


def test_sparse_tensor_is_reported(models):
    info = read_model(models["sparse"])
    sparse = [t for t in info.tensors if t.sparse]
    assert len(sparse) == 1
    t = sparse[0]
    assert t.sparsity.dim_formats == ("DENSE", "SPARSE_CSR")
    assert 0 < t.bytes < 64 * 32 * 4  # stored smaller than dense
    assert "DENSIFY" in info.op_counts


def test_metadata_and_conversion_options(models):
    info = read_model(models["int8"])
    assert info.schema_version == 3
    assert {m.name for m in info.metadata} >= {"min_runtime_version", "CONVERSION_METADATA"}
    assert re.fullmatch(r"\d+\.\d+\.\d+", info.min_runtime_version)
    cm = info.conversion_metadata
    assert cm.tensorflow_version.startswith("2.")
    assert cm.optimization_modes == ("PTQ_FULL_INTEGER",)
    assert read_model(models["flex"]).conversion_metadata.enable_select_tf_ops
    assert read_model(models["custom"]).conversion_metadata.allow_custom_ops
    assert "RANDOM_SPARSITY" in read_model(models["sparse"]).conversion_metadata.optimization_modes
    sig = info.signatures[0]
    assert sig.key == "serving_default" and sig.subgraph == 0
    assert list(sig.inputs.values()) == list(info.subgraphs[0].inputs)


@pytest.mark.parametrize("name", _NAMES)
def test_fast_options_decoder_matches_generated_accessors(models, name, monkeypatch):
    from core.model import flatbuffer

    fast = [op.options for op in read_model(models[name]).operators]
    monkeypatch.setattr(flatbuffer, "option_layouts", lambda cls: None)
    slow = [op.options for op in read_model(models[name]).operators]
    assert fast == slow


def test_bytes_and_path_give_the_same_model(models):
    data = models["float"].read_bytes()
    assert read_model(data) == read_model(models["float"])
    assert read_model(memoryview(data)) == read_model(str(models["float"]))


# ------------------------------------------------------------------ compatibility


def test_compat_custom_and_select_tf_ops(models):
    flex = check_compatibility(read_model(models["flex"]))
    cpu = flex[Target.LITERT_CPU]
    assert cpu.verdict is Verdict.PARTIAL
    (op,) = cpu.ops
    assert op.op == "FlexCumprod" and op.verdict is Verdict.PARTIAL
    assert "Flex delegate" in op.reasons[0].message
    assert op.reasons[0].source.startswith("https://")
    assert flex[Target.GPU].by_op["FlexCumprod"].verdict is Verdict.UNSUPPORTED

    custom = check_compatibility(read_model(models["custom"]))
    assert custom[Target.LITERT_CPU].verdict is Verdict.UNSUPPORTED
    assert custom[Target.XNNPACK].verdict is Verdict.PARTIAL  # ADD still delegated


def test_compat_edgetpu_needs_int8_and_static_shapes(models):
    float_tpu = check_compatibility(read_model(models["float"]))[Target.EDGETPU]
    assert float_tpu.verdict is Verdict.UNSUPPORTED
    messages = " ".join(r.message for r in float_tpu.model_reasons)
    assert "dynamic" in messages and "8-bit" in messages
    int8 = check_compatibility(read_model(models["int8"]))
    assert int8[Target.EDGETPU].verdict is Verdict.SUPPORTED
    assert int8[Target.GPU].verdict is Verdict.SUPPORTED
    xnn = int8[Target.XNNPACK]
    assert xnn.verdict is Verdict.PARTIAL and xnn.by_op["CONV_2D"].verdict is Verdict.SUPPORTED


def test_every_reason_names_a_source(models):
    for name in _NAMES:
        for tv in check_compatibility(read_model(models[name])).values():
            for reason in [r for o in tv.ops for r in o.reasons] + list(tv.model_reasons):
                assert reason.message and reason.source.startswith("https://"), (
                    name,
                    tv.target,
                    reason,
                )


def test_micro_probe_runs_real_interpreter(models):
    ok = probe_micro(models["int8"])
    assert ok.ok and ok.invoked and ok.arena_bytes and ok.arena_bytes > 0
    bad = probe_micro(models["sparse"])
    assert not bad.ok and bad.failed_op == "DENSIFY"
    micro = check_compatibility(read_model(models["sparse"]), micro_probe=bad)[Target.MICRO]
    assert micro.verdict is Verdict.UNSUPPORTED
    assert any(o.op == "DENSIFY" and o.verdict is Verdict.UNSUPPORTED for o in micro.ops)


# ------------------------------------------------------------------ report


@pytest.fixture(scope="module")
def int8_report(models):
    # what the worker's inspect task builds: the report with a real TFLite Micro run
    return build_report(
        models["int8"],
        source_kind="saved_model",
        source_size=50_000,
        micro_probe=probe_micro(models["int8"]),
    )


def test_report_json_schema(int8_report, models):
    data = json.loads(render(int8_report, "json"))
    assert data == json.loads(json.dumps(int8_report.to_dict()))
    assert data["schema_version"] == 1
    assert data["file"]["size_bytes"] == models["int8"].stat().st_size
    assert re.fullmatch(r"[0-9a-f]{64}", data["file"]["sha256"])
    assert isinstance(data["subgraphs"], list) and data["subgraphs"][0]["num_operators"] == 5
    for op in data["operators"]:
        assert {"subgraph", "index", "op", "kind", "version"} <= op.keys()
    for t in data["tensors"]:
        assert {
            "subgraph",
            "index",
            "name",
            "shape",
            "dtype",
            "bytes",
            "quantization",
            "sparse",
        } <= t.keys()
    assert data["op_counts"] == dict(read_model(models["int8"]).op_counts)
    assert set(data["compatibility"]) == {t.value for t in Target}
    for target in data["compatibility"].values():
        assert target["verdict"] in {"supported", "partial", "unsupported"}
    assert data["compatibility"]["micro"]["details"]["arena_bytes"] > 0
    size = data["size"]
    assert (
        size["file_bytes"]
        == size["weights_bytes"] + size["metadata_bytes"] + size["overhead_bytes"]
    )
    assert size["by_dtype"]["INT8"] > 0 and size["by_op"]["FULLY_CONNECTED"] == 1440
    assert size["source"]["size_bytes"] == 50_000 and size["source"]["ratio"] < 1
    assert data["inputs"][0]["dtype"] == "INT8" and data["outputs"][0]["shape"] == [1, 10]
    assert data["signatures"][0]["key"] == "serving_default"
    assert data["metadata"]["conversion"]["optimization_modes"] == ["PTQ_FULL_INTEGER"]


def test_report_markdown(int8_report):
    md = shown(render(int8_report, "md"))
    assert md.startswith("# TFLite model report: int8.tflite")
    assert "| Target | Verdict |" in md and "| Op | Kind | Count | Versions |" in md
    assert "| FULLY_CONNECTED | builtin | 1 | 4 |" in md


def test_report_html_is_self_contained(int8_report):
    html = render(int8_report, "html")
    assert html.startswith("<!DOCTYPE html>")
    assert "Plotly.newPlot" in html and html.count("Plotly.newPlot") == 3
    lowered = html.lower()
    # No network: no external scripts, styles, fonts or imports; CSP forbids fetches.
    assert not re.search(r"<script[^>]+src=", lowered)
    assert not re.search(r"<link[^>]+href=", lowered)
    assert "@import" not in lowered and "url(http" not in lowered
    assert "default-src 'none'" in html
    data = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', html, re.S)
    assert json.loads(data.group(1))["file"]["name"] == "int8.tflite"


def test_report_sparse_and_flex(models):
    data = build_report(models["sparse"]).to_dict()
    assert any(t["sparse"] for t in data["tensors"])
    # no run was asked for: the verdict says it is the rules'
    assert data["compatibility"]["micro"]["details"]["decided_by"] == "rules"
    assert data["runs"] is None
    flex = build_report(models["flex"]).to_dict()
    assert [op["kind"] for op in flex["operators"]] == ["select_tf", "builtin"]


def test_report_errors_are_studio_errors(tmp_path, int8_report):
    with pytest.raises(TFLiteFormatError):
        build_report(tmp_path / "missing.tflite")
    (tmp_path / "bad.tflite").write_bytes(b"not a model at all")
    with pytest.raises(TFLiteFormatError) as e:
        build_report(tmp_path / "bad.tflite")
    assert e.value.hint
    with pytest.raises(OptionsError):
        render(int8_report, "pdf")
    with pytest.raises(StudioError):
        build_report(tmp_path)  # a directory
