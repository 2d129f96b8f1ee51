"""Models built in code for the run-backed verdicts and honest evaluation
(one subprocess with TensorFlow, so the test process stays light):

- ``tokens.keras``: int32 token ids and segment ids into embeddings, a
  padding mask into attention, a pooled 8-value output (a BERT-style model);
- ``int8.tflite``: a small full-integer convnet (TFLite Micro runs it);
- ``bad_qdim.tflite``: the same file with a bias quantized along dimension 3
  of its single dimension (what LiteRT refuses to load);
- ``hybrid.tflite``: a dynamic-range model (float activations, int8 weights);
- ``spectrogram.tflite``: the custom op AudioSpectrogram, which LiteRT ships;
- ``regress.zip`` with ``narrow_cal.npz`` and ``wide_eval.npz``: a regression
  model calibrated on a range far narrower than the data it is judged on, so
  its int8 outputs collapse.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import flatbuffers
from ai_edge_litert import schema_py_generated as s

_BUILD = textwrap.dedent(
    """
    import os, sys, shutil
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import numpy as np, tensorflow as tf, keras
    out = sys.argv[1]
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)

    ids = keras.Input((None,), dtype="int32", name="token_ids")
    seg = keras.Input((None,), dtype="int32", name="segment_ids")
    mask = keras.Input((None,), dtype="int32", name="padding_mask")
    x = keras.layers.Embedding(1000, 32)(ids) + keras.layers.Embedding(2, 32)(seg)
    m = keras.ops.cast(mask, "bool")
    att = keras.ops.logical_and(keras.ops.expand_dims(m, 1), keras.ops.expand_dims(m, 2))
    x = keras.layers.LayerNormalization()(x + keras.layers.MultiHeadAttention(2, 16)(x, x, attention_mask=att))
    mf = keras.ops.expand_dims(keras.ops.cast(mask, "float32"), 2)
    pooled = keras.ops.sum(x * mf, axis=1) / keras.ops.maximum(keras.ops.sum(mf, axis=1), 1.0)
    keras.Model([ids, seg, mask], keras.layers.Dense(8)(pooled)).save(f"{out}/tokens.keras")

    inp = keras.Input((16, 16, 3), batch_size=1, name="image")
    y = keras.layers.Conv2D(8, 3, activation="relu")(inp)
    y = keras.layers.DepthwiseConv2D(3, activation="relu")(y)
    y = keras.layers.GlobalAveragePooling2D()(y)
    conv = keras.Model(inp, keras.layers.Dense(4, activation="softmax")(y))
    conv.export(f"{out}/conv_sm", verbose=False)
    cal = rng.random((32, 16, 16, 3), dtype=np.float32)
    def rep():
        for i in range(32):
            yield [cal[i : i + 1]]
    c = tf.lite.TFLiteConverter.from_saved_model(f"{out}/conv_sm")
    c.optimizations = [tf.lite.Optimize.DEFAULT]
    c.representative_dataset = rep
    c.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    c.inference_input_type = c.inference_output_type = tf.int8
    open(f"{out}/int8.tflite", "wb").write(c.convert())

    inp = keras.Input((32,), batch_size=1, name="features")
    h = keras.layers.Dense(64, activation="relu")(inp)
    keras.Model(inp, keras.layers.Dense(8)(h)).export(f"{out}/dense_sm", verbose=False)
    c = tf.lite.TFLiteConverter.from_saved_model(f"{out}/dense_sm")
    c.optimizations = [tf.lite.Optimize.DEFAULT]
    open(f"{out}/hybrid.tflite", "wb").write(c.convert())

    class Spec(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([1600, 1], tf.float32, name="audio")])
        def __call__(self, audio):
            return tf.raw_ops.AudioSpectrogram(input=audio, window_size=256, stride=128, magnitude_squared=True)
    spec = Spec()
    c = tf.lite.TFLiteConverter.from_concrete_functions([spec.__call__.get_concrete_function()], spec)
    c.allow_custom_ops = True
    open(f"{out}/spectrogram.tflite", "wb").write(c.convert())

    inp = keras.Input((4,), name="x")
    r = keras.layers.Dense(16, activation="tanh")(inp)
    keras.Model(inp, keras.layers.Dense(2)(r)).export(f"{out}/regress_sm", verbose=False)
    shutil.make_archive(f"{out}/regress", "zip", f"{out}/regress_sm")
    np.savez(f"{out}/narrow_cal.npz", x=(rng.random((64, 4)) * 1e-3).astype("float32"))
    np.savez(f"{out}/wide_eval.npz", x=rng.uniform(-5, 5, (128, 4)).astype("float32"))
    """
)


def _set_bias_quantized_dimension(data: bytes, dim: int) -> bytes:
    """The file with every 1-D per-channel quantized tensor (a bias) claiming
    to be quantized along ``dim``."""
    model = s.ModelT.InitFromPackedBuf(data, 0)
    changed = 0
    for sg in model.subgraphs:
        for t in sg.tensors:
            q = t.quantization
            if q is not None and q.scale is not None and len(q.scale) > 1 and len(t.shape) == 1:
                q.quantizedDimension = dim
                changed += 1
    assert changed, "the int8 model has no per-channel bias to break"
    b = flatbuffers.Builder(len(data) + 1024)
    b.Finish(model.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def build_verdict_models(out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-c", _BUILD, str(out)], check=True, timeout=600)
    (out / "bad_qdim.tflite").write_bytes(
        _set_bias_quantized_dimension((out / "int8.tflite").read_bytes(), 3)
    )
    return out
