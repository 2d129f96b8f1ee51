"""Crafted ``.tflite`` files an attacker could upload, built straight with the
FlatBuffers builder: one with a huge number of operators, built
straight with the FlatBuffers builder (seconds for a million ops): the upload
that once took the server to 5.5 GiB."""

from __future__ import annotations

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as s


def many_ops_model(n_ops: int) -> bytes:
    """One subgraph: ``n_ops`` ADD ops, each reading tensor 0 twice and writing
    tensor 1 (two tensors in all, so the file stays about 16 bytes per op)."""
    b = flatbuffers.Builder(max(1 << 20, n_ops * 24))
    ins = b.CreateNumpyVector(np.array([0, 0], "int32"))
    outs = b.CreateNumpyVector(np.array([1], "int32"))
    ops = []
    for _ in range(n_ops):
        s.OperatorStart(b)
        s.OperatorAddOpcodeIndex(b, 0)
        s.OperatorAddInputs(b, ins)
        s.OperatorAddOutputs(b, outs)
        ops.append(s.OperatorEnd(b))
    s.SubGraphStartOperatorsVector(b, len(ops))
    for o in reversed(ops):
        b.PrependUOffsetTRelative(o)
    op_vec = b.EndVector()
    names = [b.CreateString(n) for n in ("x", "y")]
    tensors = []
    for name in names:
        shape = b.CreateNumpyVector(np.array([1, 4], "int32"))
        s.TensorStart(b)
        s.TensorAddShape(b, shape)
        s.TensorAddType(b, s.TensorType.FLOAT32)
        s.TensorAddName(b, name)
        tensors.append(s.TensorEnd(b))
    s.SubGraphStartTensorsVector(b, 2)
    for t in reversed(tensors):
        b.PrependUOffsetTRelative(t)
    t_vec = b.EndVector()
    s.SubGraphStart(b)
    s.SubGraphAddTensors(b, t_vec)
    s.SubGraphAddOperators(b, op_vec)
    sg = s.SubGraphEnd(b)
    s.OperatorCodeStart(b)
    s.OperatorCodeAddDeprecatedBuiltinCode(b, s.BuiltinOperator.ADD)
    s.OperatorCodeAddBuiltinCode(b, s.BuiltinOperator.ADD)
    s.OperatorCodeAddVersion(b, 1)
    code = s.OperatorCodeEnd(b)
    s.BufferStart(b)
    empty = s.BufferEnd(b)
    vecs = []
    for items, start in (
        ([sg], s.ModelStartSubgraphsVector),
        ([code], s.ModelStartOperatorCodesVector),
        ([empty], s.ModelStartBuffersVector),
    ):
        start(b, len(items))
        for x in reversed(items):
            b.PrependUOffsetTRelative(x)
        vecs.append(b.EndVector())
    s.ModelStart(b)
    s.ModelAddVersion(b, 3)
    s.ModelAddSubgraphs(b, vecs[0])
    s.ModelAddOperatorCodes(b, vecs[1])
    s.ModelAddBuffers(b, vecs[2])
    b.Finish(s.ModelEnd(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def named_model(op_name: str, weight_name: str, input_name: str) -> bytes:
    """A tiny model whose custom op, weight tensor and input carry the given
    names (an attacker's choice: markup, links, images, scripts)."""
    b = flatbuffers.Builder(4096)
    data = b.CreateNumpyVector(np.ones(64, "uint8"))
    s.BufferStart(b)
    s.BufferAddData(b, data)
    weights = s.BufferEnd(b)
    s.BufferStart(b)
    empty = s.BufferEnd(b)
    tensors = []
    for name, shape, buffer in (
        (input_name, [1, 4], 0),
        (weight_name, [4, 4], 1),
        ("out", [1, 4], 0),
    ):
        n = b.CreateString(name)
        sh = b.CreateNumpyVector(np.array(shape, "int32"))
        s.TensorStart(b)
        s.TensorAddShape(b, sh)
        s.TensorAddType(b, s.TensorType.FLOAT32)
        s.TensorAddBuffer(b, buffer)
        s.TensorAddName(b, n)
        tensors.append(s.TensorEnd(b))
    ins = b.CreateNumpyVector(np.array([0, 1], "int32"))
    outs = b.CreateNumpyVector(np.array([2], "int32"))
    s.OperatorStart(b)
    s.OperatorAddOpcodeIndex(b, 0)
    s.OperatorAddInputs(b, ins)
    s.OperatorAddOutputs(b, outs)
    op = s.OperatorEnd(b)
    vecs = {}
    for key, items in (("tensors", tensors), ("ops", [op])):
        b.StartVector(4, len(items), 4)
        for x in reversed(items):
            b.PrependUOffsetTRelative(x)
        vecs[key] = b.EndVector()
    sg_in = b.CreateNumpyVector(np.array([0], "int32"))
    sg_out = b.CreateNumpyVector(np.array([2], "int32"))
    s.SubGraphStart(b)
    s.SubGraphAddTensors(b, vecs["tensors"])
    s.SubGraphAddOperators(b, vecs["ops"])
    s.SubGraphAddInputs(b, sg_in)
    s.SubGraphAddOutputs(b, sg_out)
    sg = s.SubGraphEnd(b)
    custom = b.CreateString(op_name)
    s.OperatorCodeStart(b)
    s.OperatorCodeAddDeprecatedBuiltinCode(b, s.BuiltinOperator.CUSTOM)
    s.OperatorCodeAddBuiltinCode(b, s.BuiltinOperator.CUSTOM)
    s.OperatorCodeAddCustomCode(b, custom)
    s.OperatorCodeAddVersion(b, 1)
    code = s.OperatorCodeEnd(b)
    top = {}
    for key, items in (("sg", [sg]), ("codes", [code]), ("bufs", [empty, weights])):
        b.StartVector(4, len(items), 4)
        for x in reversed(items):
            b.PrependUOffsetTRelative(x)
        top[key] = b.EndVector()
    s.ModelStart(b)
    s.ModelAddVersion(b, 3)
    s.ModelAddSubgraphs(b, top["sg"])
    s.ModelAddOperatorCodes(b, top["codes"])
    s.ModelAddBuffers(b, top["bufs"])
    b.Finish(s.ModelEnd(b), file_identifier=b"TFL3")
    return bytes(b.Output())
