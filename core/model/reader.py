"""Read any ``.tflite`` file without TensorFlow.

``read_model(source)`` maps the file (or wraps the bytes), checks the ``TFL3``
identifier, walks the FlatBuffer and returns a frozen ``ModelInfo``
(``core.model.info``): subgraphs, operators, tensors, signatures, buffers and
metadata. Weights are never copied; only their sizes (and whether they are
all zeros) are recorded.

The file is untrusted. Every offset and length is checked against the buffer
before it is followed (``core.model.flatbuffer``), vector lengths are bounded
by the bytes that remain, the walk has a fixed depth (no recursion on file
data) and a budget on the number of tables and decoded bytes. Anything wrong
becomes a ``TFLiteFormatError`` with a message and a hint; nothing else escapes.

Slot numbers below follow ``schema.fbs`` field order.
"""

from __future__ import annotations

import mmap
import os
import struct
from collections import Counter
from collections.abc import Sequence

from core.errors import TFLiteFormatError
from core.model.flatbuffer import (
    CUSTOM_CODE,
    DIM_TYPES,
    I8,
    I32,
    QUANT_DETAILS,
    TENSOR_TYPES,
    U8,
    U32,
    U64,
    Buf,
    Corrupt,
    Fields,
    builtin_op_name,
    field_pos,
    read_operator_options,
    vec_struct,
)
from core.model.info import (
    BufferInfo,
    ConversionMetadata,
    MetadataEntry,
    ModelInfo,
    OperatorInfo,
    OpKind,
    Quantization,
    SignatureInfo,
    Sparsity,
    SubgraphInfo,
    TensorInfo,
    gc_paused,
)

__all__ = [
    "OpKind",
    "Quantization",
    "Sparsity",
    "TensorInfo",
    "OperatorInfo",
    "SubgraphInfo",
    "SignatureInfo",
    "BufferInfo",
    "MetadataEntry",
    "ConversionMetadata",
    "ModelInfo",
    "read_model",
    "weight_owners",
    "weights_by_op",
    "UNREAD_WEIGHTS",
    "builtin_op_name",
    "FILE_IDENTIFIER",
    "gc_paused",
]

FILE_IDENTIFIER = b"TFL3"

_PREVIEW_ELEMENTS = 16  # small int constants (axes, shapes, paddings) are decoded

_HINT_CORRUPT = (
    "The file is damaged or not a TensorFlow Lite model. Re-export it with "
    "tf.lite.TFLiteConverter and upload the complete .tflite file."
)

_BufferView = tuple[int, int | None, bool]  # (size, data start, external) per buffer
_OpCode = tuple[str, OpKind, int, int]  # (name, kind, version, builtin code)

# conversion_metadata.fbs enums (the generated module ships only inside TensorFlow).
_MODEL_TYPES = {
    0: "NONE",
    1: "TF_SAVED_MODEL",
    2: "KERAS_MODEL",
    3: "TF_CONCRETE_FUNCTIONS",
    4: "TF_GRAPH_DEF",
    5: "TF_SESSION",
    6: "JAX",
    7: "PYTORCH",
}
_OPTIMIZATION_MODES = {
    1001: "PTQ_FLOAT16",
    1002: "PTQ_DYNAMIC_RANGE",
    1003: "PTQ_FULL_INTEGER",
    1004: "PTQ_INT16",
    2000: "QUANTIZATION_AWARE_TRAINING",
    3001: "RANDOM_SPARSITY",
    3002: "BLOCK_SPARSITY",
    3003: "STRUCTURED_SPARSITY",
}


# ------------------------------------------------------------------ model walk


def _decode_quantization(buf: Buf, tab: Fields) -> Quantization | None:
    scales = buf.ints(tab, 2, "f", 4, "quantization scales") or ()
    zero_points = buf.ints(tab, 3, "q", 8, "quantization zero points") or ()
    qmin = buf.ints(tab, 0, "f", 4, "quantization min") or ()
    qmax = buf.ints(tab, 1, "f", 4, "quantization max") or ()
    details_type = buf.scalar(tab, 4, U8, 1, 0, "quantization details")
    qdim = buf.scalar(tab, 6, I32, 4, 0, "quantized dimension")
    if not (scales or zero_points or qmin or qmax or details_type):
        return None  # the converter writes empty tables for float tensors
    return Quantization(
        scales=scales,
        zero_points=zero_points,
        quantized_dimension=qdim,
        min=qmin,
        max=qmax,
        details=QUANT_DETAILS.get(details_type) if details_type else None,
    )


def _decode_sparsity(buf: Buf, tab: Fields) -> Sparsity:
    order = buf.ints(tab, 0, "i", 4, "sparsity traversal order") or ()
    block_map = buf.ints(tab, 1, "i", 4, "sparsity block map") or ()
    formats = tuple(
        DIM_TYPES.get(buf.scalar(dim, 0, I8, 1, 0, "sparsity dim"), "UNKNOWN")
        for dim in buf.tables_of(tab, 2, "sparsity dim metadata")
    )
    return Sparsity(tuple(order), tuple(block_map), formats)


def _buffer_views(buf: Buf, model: Fields) -> list[_BufferView]:
    """(size, data_start, external) per buffer."""
    out: list[_BufferView] = []
    for k, b in enumerate(buf.tables_of(model, 4, "buffers")):
        what = f"buffer {k}"
        vec = buf.vector(b, 0, 1, what)
        if vec is not None and vec[1]:
            out.append((vec[1], vec[0], False))
            continue
        offset = buf.scalar(b, 1, U64, 8, 0, what)
        size = buf.scalar(b, 2, U64, 8, 0, what)
        if offset > 1 and size:  # offset 0/1 mean "no data" in the writer
            if offset + size > buf.n:
                raise Corrupt(
                    f"{what} stores {size} bytes at byte {offset}, past the end of the "
                    f"file ({buf.n} bytes): the file is cut short"
                )
            out.append((size, offset, True))
        else:
            out.append((0, None, False))
    return out


def _all_zero(mv: memoryview, start: int, size: int) -> bool:
    head = min(size, 64)
    if any(mv[start : start + head]):  # most weights fail on the first bytes
        return False
    import numpy as np  # here: the command line imports this module and rarely needs it

    arr = np.frombuffer(mv, dtype=np.uint8, count=size, offset=start)
    try:
        return not arr.any()
    finally:
        del arr


def _preview(mv: memoryview, dtype: str, start: int, size: int) -> tuple[int, ...] | None:
    width = 4 if dtype == "INT32" else 8 if dtype == "INT64" else 0
    if not width or size % width or size // width > _PREVIEW_ELEMENTS:
        return None
    return vec_struct("i" if width == 4 else "q", size // width).unpack_from(mv, start)


def _op_codes(buf: Buf, model: Fields) -> list[_OpCode]:
    codes: list[_OpCode] = []
    for k, oc in enumerate(buf.tables_of(model, 1, "operator codes")):
        what = f"operator code {k}"
        deprecated = buf.scalar(oc, 0, I8, 1, 0, what)
        builtin = buf.scalar(oc, 3, I32, 4, 0, what)
        version = buf.scalar(oc, 2, I32, 4, 1, what)
        code = max(builtin, deprecated)  # old files only fill the deprecated int8
        if code == CUSTOM_CODE:
            custom = buf.string(oc, 1, what) or "CUSTOM"
            kind = OpKind.SELECT_TF if custom.startswith("Flex") else OpKind.CUSTOM
            codes.append((custom, kind, version, code))
        else:
            codes.append((builtin_op_name(code), OpKind.BUILTIN, version, code))
    return codes


def _check_indices(indices: Sequence[int], limit: int, what: str) -> tuple[int, ...]:
    if indices and (min(indices) < -1 or max(indices) >= limit):
        bad = next(t for t in indices if t < -1 or t >= limit)
        raise Corrupt(f"{what} refers to tensor {bad}, but the subgraph has {limit} tensors")
    return tuple(indices)


def _tensors(buf: Buf, s: int, sg: Fields, buffers: list[_BufferView]) -> list[TensorInfo]:
    mv = buf.mv
    n_buffers = len(buffers)
    scalar, ints, table, uoffset = buf.scalar, buf.ints, buf.table, buf.uoffset
    tensors: list[TensorInfo] = []
    append = tensors.append
    k = -1
    try:
        for k, t in enumerate(buf.tables_of(sg, 0, "tensor list")):
            shape = ints(t, 0, "i", 4, "shape")
            dtype_code = scalar(t, 1, I8, 1, 0, "type")
            dtype = TENSOR_TYPES.get(dtype_code) or f"UNKNOWN_TYPE_{dtype_code}"
            b = scalar(t, 2, U32, 4, 0, "buffer index")
            if b >= n_buffers:
                if b:
                    raise Corrupt(f"refers to buffer {b}, but the model has {n_buffers} buffers")
                size, start = 0, None
            else:
                size, start, _external = buffers[b]
            nf = len(t)
            qpos = t[4] if nf > 4 else 0
            quant = None
            if qpos:
                quant = _decode_quantization(buf, table(uoffset(qpos, "quant"), "quantization"))
            spos = t[6] if nf > 6 else 0
            sparsity = None
            if spos:
                sparsity = _decode_sparsity(buf, table(uoffset(spos, "sparsity"), "sparsity"))
            sig = ints(t, 7, "i", 4, "shape signature")
            append(
                TensorInfo(
                    subgraph=s,
                    index=k,
                    name=buf.string(t, 3, "name") or "",
                    shape=shape or (),
                    shape_signature=sig,
                    dtype=dtype,
                    buffer=b,
                    bytes=size,
                    is_variable=bool(scalar(t, 5, U8, 1, 0, "is_variable")),
                    quantization=quant,
                    sparsity=sparsity,
                    has_rank=shape is not None or bool(scalar(t, 8, U8, 1, 0, "has_rank")),
                    values=_preview(mv, dtype, start, size) if start is not None else None,
                )
            )
    except Corrupt as e:
        raise Corrupt(f"subgraph {s} tensor {k + 1 if k < 0 else k}: {e}") from None
    return tensors


def _operators(
    buf: Buf, s: int, sg: Fields, codes: list[_OpCode], n_tensors: int
) -> list[OperatorInfo]:
    scalar, ints = buf.scalar, buf.ints
    n_codes = len(codes)
    operators: list[OperatorInfo] = []
    append = operators.append
    k = -1
    try:
        for k, o in enumerate(buf.tables_of(sg, 3, "operator list")):
            idx = scalar(o, 0, U32, 4, 0, "opcode index")
            if idx >= n_codes:
                raise Corrupt(f"uses operator code {idx}, but the model has {n_codes}")
            name, kind, version, code = codes[idx]
            inputs = _check_indices(ints(o, 1, "i", 4, "inputs") or (), n_tensors, "inputs")
            outputs = _check_indices(ints(o, 2, "i", 4, "outputs") or (), n_tensors, "outputs")
            options_type, options = read_operator_options(buf, o)
            custom_bytes = 0
            if kind is not OpKind.BUILTIN:
                custom = buf.vector(o, 5, 1, "custom options")
                # Large custom options live outside the FlatBuffer (offset/size).
                custom_bytes = custom[1] if custom else scalar(o, 10, U64, 8, 0, "custom size")
            act = options.get("fused_activation_function")
            append(
                OperatorInfo(
                    subgraph=s,
                    index=k,
                    opcode_index=idx,
                    name=name,
                    kind=kind,
                    version=version,
                    builtin_code=code,
                    inputs=inputs,
                    outputs=outputs,
                    options_type=options_type,
                    options=options,
                    fused_activation=act if isinstance(act, str) else None,
                    custom_options_bytes=custom_bytes,
                )
            )
    except Corrupt as e:
        raise Corrupt(f"subgraph {s} operator {max(k, 0)}: {e}") from None
    return operators


def _subgraph(
    buf: Buf, s: int, sg: Fields, codes: list[_OpCode], buffers: list[_BufferView]
) -> SubgraphInfo:
    what = f"subgraph {s}"
    tensors = _tensors(buf, s, sg, buffers)
    n_tensors = len(tensors)
    operators = _operators(buf, s, sg, codes, n_tensors)
    inputs = buf.ints(sg, 1, "i", 4, f"{what} inputs") or ()
    outputs = buf.ints(sg, 2, "i", 4, f"{what} outputs") or ()
    return SubgraphInfo(
        index=s,
        name=buf.string(sg, 4, what) or "",
        inputs=_check_indices(inputs, n_tensors, f"{what} inputs"),
        outputs=_check_indices(outputs, n_tensors, f"{what} outputs"),
        tensors=tuple(tensors),
        operators=tuple(operators),
    )


def _conversion_metadata(mv: memoryview) -> ConversionMetadata | None:
    """Parse conversion_metadata.fbs by hand (its generated module ships only in TF)."""
    buf = Buf(mv, budget=4 * len(mv) + 1024)
    root = buf.table(buf.uoffset(0, "conversion metadata"), "conversion metadata")
    env_pos, opt_pos = field_pos(root, 0), field_pos(root, 1)
    version = None
    api_version = model_hash = 0
    model_type = "NONE"
    if env_pos:
        env = buf.table(buf.uoffset(env_pos, "environment"), "environment")
        version = buf.string(env, 0, "tensorflow version")
        api_version = buf.scalar(env, 1, U32, 4, 0, "api version")
        mt = buf.scalar(env, 2, I32, 4, 0, "model type")
        model_type = _MODEL_TYPES.get(mt, str(mt))
        model_hash = buf.scalar(env, 3, U64, 8, 0, "model hash")
    modes: tuple[str, ...] = ()
    flags = [False, False, False]
    blocks: list[tuple[int, ...]] = []
    if opt_pos:
        opts = buf.table(buf.uoffset(opt_pos, "options"), "options")
        raw = buf.ints(opts, 0, "i", 4, "optimization modes") or ()
        modes = tuple(_OPTIMIZATION_MODES.get(m, str(m)) for m in raw)
        flags = [bool(buf.scalar(opts, i, U8, 1, 0, "options")) for i in (1, 2, 3)]
        for blk in buf.tables_of(opts, 4, "sparsity block sizes"):
            blocks.append(tuple(buf.ints(blk, 0, "I", 4, "block size") or ()))
    return ConversionMetadata(
        tensorflow_version=version,
        api_version=api_version,
        model_type=model_type,
        model_hash=model_hash,
        optimization_modes=modes,
        allow_custom_ops=flags[0],
        enable_select_tf_ops=flags[1],
        force_select_tf_ops=flags[2],
        sparsity_block_sizes=tuple(blocks),
    )


# Far beyond real models (large language models have tens of thousands of
# ops); a file past them is refused before any of it is decoded.
MAX_SUBGRAPHS = 1_000
MAX_OPERATORS = 200_000
MAX_TENSORS = 500_000


class _TooLarge(Exception):
    """Internal: the model is past a size limit. Becomes TFLiteFormatError."""


def _check_counts(buf: Buf, model: Fields) -> None:
    """Count subgraphs, operators and tensors from the vectors' lengths alone."""
    vec = buf.vector(model, 2, 4, "subgraphs")
    n_sub = vec[1] if vec else 0
    if n_sub > MAX_SUBGRAPHS:
        raise _TooLarge(f"{n_sub:,} subgraphs (at most {MAX_SUBGRAPHS:,} are read)")
    ops = tensors = 0
    for sg in buf.tables_of(model, 2, "subgraphs"):
        t, o = buf.vector(sg, 0, 4, "tensor list"), buf.vector(sg, 3, 4, "operator list")
        tensors += t[1] if t else 0
        ops += o[1] if o else 0
    if ops > MAX_OPERATORS:
        raise _TooLarge(f"{ops:,} operators (at most {MAX_OPERATORS:,} are read)")
    if tensors > MAX_TENSORS:
        raise _TooLarge(f"{tensors:,} tensors (at most {MAX_TENSORS:,} are read)")


def _parse(mv: memoryview, check_zeros: bool) -> ModelInfo:
    n = len(mv)
    # A real model spends every decoded byte once; allow shared data, not a bomb.
    buf = Buf(mv, budget=2 * n + 65_536)
    model = buf.table(buf.uoffset(0, "root table"), "model")
    _check_counts(buf, model)
    schema_version = buf.scalar(model, 0, U32, 4, 0, "model")
    codes = _op_codes(buf, model)
    buffers = _buffer_views(buf, model)
    subgraphs = tuple(
        _subgraph(buf, s, sg, codes, buffers)
        for s, sg in enumerate(buf.tables_of(model, 2, "subgraphs"))
    )
    metadata, min_runtime, conv_meta = _metadata(buf, model, buffers)
    signatures = _signatures(buf, model, len(subgraphs))
    external_bytes = 0
    for k, eb in enumerate(buf.tables_of(model, 9, "external buffers")):
        external_bytes += buf.scalar(eb, 3, U64, 8, 0, f"external buffer {k}")
    buffer_infos = tuple(
        BufferInfo(
            index=k,
            size=size,
            offset=start,
            external=external,
            all_zero=_all_zero(mv, start, size) if (check_zeros and start is not None) else None,
        )
        for k, (size, start, external) in enumerate(buffers)
    )
    return ModelInfo(
        file_size=n,
        schema_version=schema_version,
        description=buf.string(model, 3, "description") or "",
        subgraphs=subgraphs,
        buffers=buffer_infos,
        metadata=tuple(metadata),
        signatures=tuple(signatures),
        min_runtime_version=min_runtime,
        conversion_metadata=conv_meta,
        external_buffer_bytes=external_bytes,
    )


def _metadata(
    buf: Buf, model: Fields, buffers: list[_BufferView]
) -> tuple[list[MetadataEntry], str | None, ConversionMetadata | None]:
    """Metadata entries, with the two the converter writes decoded."""
    mv = buf.mv
    metadata: list[MetadataEntry] = []
    min_runtime = None
    conv_meta = None
    for k, m in enumerate(buf.tables_of(model, 6, "metadata")):
        name = buf.string(m, 0, f"metadata {k}") or ""
        b = buf.scalar(m, 1, U32, 4, 0, f"metadata {k}")
        if b >= len(buffers):
            raise Corrupt(f"metadata {name!r} refers to buffer {b} of {len(buffers)}")
        size, start, _ = buffers[b]
        metadata.append(MetadataEntry(name, b, size))
        if start is None:
            continue
        if name == "min_runtime_version":
            raw = bytes(mv[start : start + min(size, 64)])
            min_runtime = raw.split(b"\0", 1)[0].decode("ascii", "replace")
        elif name == "CONVERSION_METADATA":
            try:
                conv_meta = _conversion_metadata(mv[start : start + size])
            except (Corrupt, struct.error) as e:
                raise Corrupt(f"metadata CONVERSION_METADATA is unreadable: {e}") from e
    return metadata, min_runtime, conv_meta


def _signatures(buf: Buf, model: Fields, n_subgraphs: int) -> list[SignatureInfo]:
    signatures = []
    for k, sd in enumerate(buf.tables_of(model, 7, "signature defs")):
        what = f"signature {k}"
        ios = []
        for slot in (0, 1):
            io: dict[str, int] = {}
            for tm in buf.tables_of(sd, slot, what):
                io[buf.string(tm, 0, what) or ""] = buf.scalar(tm, 1, U32, 4, 0, what)
            ios.append(io)
        sub = buf.scalar(sd, 4, U32, 4, 0, what)
        if sub >= max(n_subgraphs, 1):
            raise Corrupt(f"{what} refers to subgraph {sub}, but the model has {n_subgraphs}")
        signatures.append(SignatureInfo(buf.string(sd, 2, what) or "", sub, ios[0], ios[1]))
    return signatures


def _check_header(mv: memoryview, label: str) -> None:
    if len(mv) == 0:
        raise TFLiteFormatError(f"{label} is empty.", "Upload the complete .tflite file.")
    if len(mv) < 8 or bytes(mv[4:8]) != FILE_IDENTIFIER:
        found = bytes(mv[4:8]) if len(mv) >= 8 else b""
        raise TFLiteFormatError(
            f"{label} is not a TensorFlow Lite FlatBuffer: bytes 4-8 are {found!r}, "
            f"expected {FILE_IDENTIFIER!r}.",
            "Check that you picked the .tflite file (not a SavedModel, .keras or .h5 file). "
            "Convert other formats with tf.lite.TFLiteConverter first.",
        )


def _parse_guarded(mv: memoryview, label: str, check_zeros: bool) -> ModelInfo:
    _check_header(mv, label)
    try:
        with gc_paused():
            return _parse(mv, check_zeros)
    except _TooLarge as e:
        raise TFLiteFormatError(
            f"{label} has {e}: it is far larger than any model this server inspects.",
            "Inspect a smaller model; if this one is real, ask the admin to raise the limit.",
        ) from None
    except (Corrupt, struct.error, ValueError, IndexError, OverflowError, UnicodeDecodeError) as e:
        # Generated accessors raise struct.error/ValueError on out-of-range reads.
        raise TFLiteFormatError(f"{label} is corrupt or cut short: {e}", _HINT_CORRUPT) from None


def read_model(
    source: str | os.PathLike[str] | bytes | bytearray | memoryview, *, check_zeros: bool = True
) -> ModelInfo:
    """Read a .tflite file (path) or its bytes. Raises only ``TFLiteFormatError``.

    ``check_zeros`` scans each buffer once to flag all-zero weights; turn it off to
    touch nothing but the FlatBuffer structure.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        mv = memoryview(source)
        if mv.ndim != 1 or mv.itemsize != 1 or not mv.c_contiguous:
            mv = memoryview(mv.tobytes())
        return _parse_guarded(mv, "The model data", check_zeros)
    path = os.fspath(source)
    label = f"{os.path.basename(path) or path!r}"
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size == 0:
                raise TFLiteFormatError(
                    f"{label} is empty (0 bytes).", "Upload the complete .tflite file."
                )
            mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    except OSError as e:
        raise TFLiteFormatError(
            f"Cannot read {path}: {e.strerror or e}.", "Check the path and permissions."
        ) from None
    mv = memoryview(mm)
    try:
        return _parse_guarded(mv, label, check_zeros)
    finally:
        try:
            mv.release()
            mm.close()
        except BufferError:
            pass  # a view survives in an exception frame; the GC unmaps it later


UNREAD_WEIGHTS = "(not read by any op)"


def weight_owners(model: ModelInfo) -> dict[tuple[int, int], str]:
    """(subgraph, tensor index) -> the op type its weights are counted for.

    Each weight buffer is counted once: for the first op that reads it in
    execution order (subgraph by subgraph), else under ``UNREAD_WEIGHTS``.
    Constant tensors sharing an already counted buffer are left out."""
    owners: dict[tuple[int, int], str] = {}
    seen: set[int] = set()
    for sg in model.subgraphs:
        for op in sg.operators:
            for i in op.inputs:
                if 0 <= i < len(sg.tensors):
                    t = sg.tensors[i]
                    if t.is_constant and t.buffer not in seen:
                        seen.add(t.buffer)
                        owners[(sg.index, i)] = op.name
    for t in model.tensors:
        if t.is_constant and t.buffer not in seen:
            seen.add(t.buffer)
            owners[(t.subgraph, t.index)] = UNREAD_WEIGHTS
    return owners


def weights_by_op(model: ModelInfo) -> dict[str, int]:
    """Weight bytes per op type, by the rule of ``weight_owners``."""
    by_op: Counter[str] = Counter()
    for (sg, i), op in weight_owners(model).items():
        by_op[op] += model.subgraphs[sg].tensors[i].bytes
    return dict(by_op)
