"""The reader on hand-built and broken files: only TFLiteFormatError, never a
crash, hang or huge allocation. Models are built with LiteRT's generated schema
(object API), so these tests need no TensorFlow."""

from __future__ import annotations

import json
import os
import random
import struct
import tracemalloc

import flatbuffers
import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as s
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.errors import TFLiteFormatError
from core.model.compat import check_compatibility
from core.model.reader import OpKind, read_model, weights_by_op
from core.model.report import FileInfo, Report, size_breakdown

_EXTERNAL = np.arange(256, dtype=np.uint8).tobytes() * 4  # 1 KB stored after the FlatBuffer


def _tensor(name, shape, dtype=s.TensorType.FLOAT32, buffer=0, quant=None, sig=None):
    t = s.TensorT()
    t.name, t.shape, t.type, t.buffer, t.quantization = name, shape, dtype, buffer, quant
    t.shapeSignature = sig
    return t


def _opcode(code, custom=None, version=1):
    oc = s.OperatorCodeT()
    oc.builtinCode = code
    oc.deprecatedBuiltinCode = min(code, 127)
    oc.customCode = custom
    oc.version = version
    return oc


def _build(external_offset: int) -> bytes:
    m = s.ModelT()
    m.version = 3
    m.description = "hand built"
    m.operatorCodes = [
        _opcode(s.BuiltinOperator.CONV_2D, version=3),
        _opcode(s.BuiltinOperator.CUSTOM, custom="MyOp"),
        _opcode(s.BuiltinOperator.CUSTOM, custom="FlexErf"),
        _opcode(s.BuiltinOperator.ADD),
    ]
    bufs = [s.BufferT() for _ in range(5)]
    bufs[1].data = np.full(2 * 2 * 2 * 2, 3, np.int8).view(np.uint8)  # conv weights
    bufs[2].data = np.zeros(8, np.uint8)  # all-zero bias
    bufs[3].offset, bufs[3].size = external_offset, len(_EXTERNAL)  # >2 GB-style buffer
    bufs[4].data = np.frombuffer(b"1.14.0".ljust(16, b"\0"), np.uint8)
    m.buffers = bufs
    q = s.QuantizationParametersT()
    q.scale, q.zeroPoint, q.quantizedDimension = [0.5, 0.25], [0, 0], 0
    sg = s.SubGraphT()
    sg.name = "main"
    sg.tensors = [
        _tensor("input", [1, 4, 4, 2], s.TensorType.INT8, sig=[-1, 4, 4, 2]),
        _tensor("weights", [2, 2, 2, 2], s.TensorType.INT8, buffer=1, quant=q),
        _tensor("bias", [2], s.TensorType.INT32, buffer=2),
        _tensor("conv", [1, 3, 3, 2], s.TensorType.INT8),
        _tensor("table", [256, 4], s.TensorType.UINT8, buffer=3),
        _tensor("out", [1, 3, 3, 2], s.TensorType.INT8),
        _tensor("flex_out", [1, 3, 3, 2], s.TensorType.INT8),
    ]
    conv = s.OperatorT()
    conv.opcodeIndex, conv.inputs, conv.outputs = 0, [0, 1, 2], [3]
    conv.builtinOptionsType = s.BuiltinOptions.Conv2DOptions
    opts = s.Conv2DOptionsT()
    opts.padding, opts.strideW, opts.strideH = s.Padding.VALID, 1, 1
    opts.fusedActivationFunction = s.ActivationFunctionType.RELU6
    conv.builtinOptions = opts
    custom = s.OperatorT()
    custom.opcodeIndex, custom.inputs, custom.outputs = 1, [3, 4], [5]
    custom.customOptions = [1, 2, 3]
    flex = s.OperatorT()
    flex.opcodeIndex, flex.inputs, flex.outputs = 2, [5], [6]
    sg.operators = [conv, custom, flex]
    sg.inputs, sg.outputs = [0], [6]
    m.subgraphs = [sg]
    md = s.MetadataT()
    md.name, md.buffer = "min_runtime_version", 4
    m.metadata = [md]
    sig = s.SignatureDefT()
    sig.signatureKey, sig.subgraphIndex = "serving_default", 0
    tin, tout = s.TensorMapT(), s.TensorMapT()
    tin.name, tin.tensorIndex, tout.name, tout.tensorIndex = "x", 0, "y", 6
    sig.inputs, sig.outputs = [tin], [tout]
    m.signatureDefs = [sig]
    b = flatbuffers.Builder(1024)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def _model_bytes() -> bytes:
    # Two passes: the offset of the trailing data depends on the FlatBuffer size.
    size = len(_build(1 << 40))
    start = (size + 15) // 16 * 16
    fb = _build(start)
    assert len(fb) == size
    return fb + b"\0" * (start - size) + _EXTERNAL


MODEL = _model_bytes()


def test_hand_built_model():
    info = read_model(MODEL)
    assert info.description == "hand built"
    assert [(op.name, op.kind) for op in info.operators] == [
        ("CONV_2D", OpKind.BUILTIN),
        ("MyOp", OpKind.CUSTOM),
        ("FlexErf", OpKind.SELECT_TF),
    ]
    conv = info.operators[0]
    assert (
        conv.version == 3
        and conv.fused_activation == "RELU6"
        and conv.options["padding"] == "VALID"
    )
    assert info.operators[1].custom_options_bytes == 3
    t = info.subgraphs[0].tensors
    assert t[0].shape_signature == (-1, 4, 4, 2) and t[0].is_dynamic
    assert (
        t[1].bytes == 16
        and t[1].quantization.scales == (0.5, 0.25)
        and t[1].quantization.per_channel
    )
    assert (
        t[2].bytes == 8 and info.buffers[2].all_zero is True and info.buffers[1].all_zero is False
    )
    assert t[4].bytes == len(_EXTERNAL)
    ext = info.buffers[3]
    assert ext.external and ext.size == len(_EXTERNAL) and ext.offset + ext.size == len(MODEL)
    assert info.min_runtime_version == "1.14.0"
    assert info.signatures[0].inputs == {"x": 0} and info.signatures[0].outputs == {"y": 6}


def test_path_source(tmp_path):
    p = tmp_path / "m.tflite"
    p.write_bytes(MODEL)
    assert read_model(p) == read_model(MODEL)
    assert read_model(os.fspath(p), check_zeros=False).buffers[2].all_zero is None


def _rejected(data: bytes) -> TFLiteFormatError:
    with pytest.raises(TFLiteFormatError) as e:
        read_model(data)
    assert e.value.message and e.value.hint and e.value.phase.value == "inspect"
    return e.value


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00\x01",
        b"\x1c\x00\x00\x00TFL3",  # header only
        b"PK\x03\x04" + b"\0" * 60,  # a zip
        random.Random(0).randbytes(4096),
        b"\xf0\xff\xff\xffTFL3" + b"\0" * 64,  # root offset past the end
        b"\x08\x00\x00\x00TFL3\x00\x00\x00\x80" + b"\0" * 16,  # vtable far outside
    ],
    ids=["empty", "tiny", "header-only", "zip", "random", "root-past-end", "vtable-outside"],
)
def test_not_a_model(data):
    _rejected(data)


def test_wrong_identifier_message():
    err = _rejected(b"\x1c\x00\x00\x00ABCD" + MODEL[8:])
    assert "TFL3" in err.message


@pytest.mark.parametrize("fraction", [0.02, 0.1, 0.25, 0.5, 0.75, 0.9, 0.999])
def test_truncated(fraction):
    _rejected(MODEL[: int(len(MODEL) * fraction)])


def test_cut_short_in_external_data():
    err = _rejected(MODEL[:-10])
    assert "cut short" in err.message


def test_empty_file_and_missing_path(tmp_path):
    (tmp_path / "empty.tflite").write_bytes(b"")
    with pytest.raises(TFLiteFormatError, match="empty"):
        read_model(tmp_path / "empty.tflite")
    with pytest.raises(TFLiteFormatError, match="Cannot read"):
        read_model(tmp_path / "nope.tflite")


def _tensors_vector_pos(data: bytes) -> int:
    sg = s.Model.GetRootAs(data, 0).Subgraphs(0)
    return sg._tab.Vector(sg._tab.Offset(4)) - 4  # the length word


@pytest.mark.parametrize("length", [0x7FFFFFFF, 0xFFFFFFFF, 1 << 20])
def test_huge_vector_length_fails_fast_without_allocating(length):
    data = bytearray(MODEL)
    struct.pack_into("<I", data, _tensors_vector_pos(MODEL), length)
    tracemalloc.start()
    _rejected(bytes(data))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 5 * len(MODEL) + (1 << 20)  # no allocation sized by the bogus length


def test_shared_tables_are_read_but_cannot_multiply_objects():
    # TensorFlow's MLIR quantizer writes vectors whose entries share a table:
    # such a file must read. Pointing every tensor entry at the first tensor
    # table gives n copies of that tensor, each charged against the budget.
    data = bytearray(MODEL)
    vec = _tensors_vector_pos(MODEL)
    (n,) = struct.unpack_from("<I", data, vec)
    first = vec + 4 + struct.unpack_from("<I", data, vec + 4)[0]
    for k in range(n):
        slot = vec + 4 + 4 * k
        struct.pack_into("<I", data, slot, first - slot)
    try:
        info = read_model(bytes(data))
    except TFLiteFormatError as e:  # refused by the budget or index checks: also fine
        assert e.hint
        return
    names = {t.name for t in info.subgraphs[0].tensors}
    assert len(names) == 1 and len(info.subgraphs[0].tensors) == n


def test_bad_indices_are_rejected():
    data = bytearray(MODEL)
    sg = s.Model.GetRootAs(MODEL, 0).Subgraphs(0)
    op = sg.Operators(0)
    inputs = op._tab.Vector(op._tab.Offset(6))
    struct.pack_into("<i", data, inputs, 999)  # tensor index out of range
    assert "tensor 999" in _rejected(bytes(data)).message


_SPECIAL = [
    b"\xff\xff\xff\xff",
    b"\x00\x00\x00\x80",
    b"\xff\xff\xff\x7f",
    b"\x00\x00\x00\x00",
    b"\x01\x00\x00\x00",
]


@settings(
    max_examples=300, deadline=1000, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(
    flips=st.lists(st.tuples(st.integers(0, len(MODEL) - 1), st.integers(0, 255)), max_size=8),
    words=st.lists(
        st.tuples(st.integers(0, len(MODEL) - 4), st.sampled_from(_SPECIAL)), max_size=3
    ),
    cut=st.one_of(st.none(), st.integers(0, len(MODEL))),
)
def test_fuzz_mutated_files(flips, words, cut):
    data = bytearray(MODEL)
    for pos, value in flips:
        data[pos] = value
    for pos, word in words:
        data[pos : pos + 4] = word
    if cut is not None:
        data = data[:cut]
    try:
        info = read_model(bytes(data))
    except TFLiteFormatError as e:
        assert e.message
        return
    assert info.file_size == len(data)
    # Whatever parses must also check and serialise (strict JSON: no NaN).
    report = Report(
        1,
        FileInfo("fuzz", len(data), "0" * 64),
        info,
        size_breakdown(info, None, None),
        check_compatibility(info),
    )
    json.dumps(report.to_dict(), allow_nan=False)


def _shared_weights_model() -> bytes:
    """MUL (op 0) reads tensor 3, ADD (op 1) reads tensor 1; both on buffer 1."""
    m = s.ModelT()
    m.version = 3
    m.operatorCodes = [_opcode(s.BuiltinOperator.MUL), _opcode(s.BuiltinOperator.ADD)]
    bufs = [s.BufferT() for _ in range(2)]
    bufs[1].data = np.ones(100, np.float32).view(np.uint8)
    m.buffers = bufs
    sg = s.SubGraphT()
    sg.tensors = [
        _tensor("x", [100]),
        _tensor("w_add", [100], buffer=1),
        _tensor("y", [100]),
        _tensor("w_mul", [100], buffer=1),
        _tensor("z", [100]),
    ]
    mul, add = s.OperatorT(), s.OperatorT()
    mul.opcodeIndex, mul.inputs, mul.outputs = 0, [0, 3], [2]
    add.opcodeIndex, add.inputs, add.outputs = 1, [2, 1], [4]
    sg.operators = [mul, add]
    sg.inputs, sg.outputs = [0], [4]
    m.subgraphs = [sg]
    b = flatbuffers.Builder(1024)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def test_shared_weights_count_once_for_their_first_reader_everywhere():
    from core.model.diff import diff_models
    from core.model.report import build_report
    from ui.charts import weight_layers

    data = _shared_weights_model()
    info = read_model(data)
    assert weights_by_op(info) == {"MUL": 400}  # execution order, not tensor order
    report = build_report(data)
    assert report.size.by_op == {"MUL": 400}
    d = report.to_dict()
    assert [(r["op"], r["name"]) for r in weight_layers(d)] == [("MUL", "w_mul")]
    diff = diff_models(data, data)
    weights = {row.op: row.weight_bytes_a for row in diff.by_op_type}
    assert weights["MUL"] == 400 and weights.get("ADD", 0) == 0
