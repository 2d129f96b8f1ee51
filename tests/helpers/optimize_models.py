"""Float ``.tflite`` models built in code for the optimize and deploy tests
(TensorFlow runs in a subprocess, so the test process does not carry it):

- ``convnet.tflite``: two convolutions and a large dense layer (weight-heavy);
- ``transformer.tflite``: one encoder block on float features (multi-head
  attention and a feed-forward network; weight-heavy fully connected layers);
- ``embedding.tflite``: an embedding table (GATHER, which the quantizer's
  recipes do not cover) and a dense head;
- ``no_weights.tflite``: only element-wise ops (nothing to quantize);
- ``convnet_old.tflite``: the convnet with its op codes written the old way
  (only ``deprecated_builtin_code``), built by ``old_op_codes``;
- ``*_x.npz``: sample inputs keyed by input name.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

_BUILD = textwrap.dedent(
    """
    import os, sys
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import numpy as np, tensorflow as tf, keras
    out = sys.argv[1]
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)

    def save(model, name, x):
        conv = tf.lite.TFLiteConverter.from_keras_model(model)
        open(f"{out}/{name}.tflite", "wb").write(conv.convert())
        np.savez(f"{out}/{name}_x.npz", **x)

    inp = keras.Input((12, 12, 3), name="image")
    x = keras.layers.Conv2D(32, 3, activation="relu", name="conv1")(inp)
    x = keras.layers.Conv2D(64, 3, activation="relu", name="conv2")(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(128, activation="relu", name="fc1")(x)
    m = keras.Model(inp, keras.layers.Dense(10, activation="softmax", name="head")(x))
    save(m, "convnet", {"image": rng.random((16, 12, 12, 3), dtype=np.float32)})

    inp = keras.Input((16, 64), name="features")
    a = keras.layers.MultiHeadAttention(4, 32, name="attention")(inp, inp)
    x = keras.layers.LayerNormalization(name="norm1")(inp + a)
    f = keras.layers.Dense(512, activation="relu", name="ffn_in")(x)
    f = keras.layers.Dense(64, name="ffn_out")(f)
    x = keras.layers.LayerNormalization(name="norm2")(x + f)
    x = keras.layers.GlobalAveragePooling1D()(x)
    m = keras.Model(inp, keras.layers.Dense(4, name="logits")(x))
    save(m, "transformer", {"features": rng.standard_normal((16, 16, 64)).astype(np.float32)})

    inp = keras.Input((8,), dtype="int32", name="tokens")
    x = keras.layers.Embedding(2000, 32, name="embed")(inp)
    x = keras.layers.Flatten()(x)
    m = keras.Model(inp, keras.layers.Dense(3, name="head")(x))
    save(m, "embedding", {"tokens": rng.integers(0, 2000, (16, 8)).astype(np.int32)})

    inp = keras.Input((4,), name="x")
    m = keras.Model(inp, keras.layers.Activation("tanh")(inp * 2.0 + 1.0))
    save(m, "no_weights", {"x": rng.random((8, 4), dtype=np.float32)})
    """
)

NAMES = ("convnet", "transformer", "embedding", "no_weights")


def old_op_codes(data: bytes) -> bytes:
    """The model with every op code moved to ``deprecated_builtin_code`` and
    ``builtin_code`` left 0, as converters before the field existed wrote it."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as s

    m = s.ModelT.InitFromPackedBuf(bytearray(data), 0)
    for oc in m.operatorCodes:
        code = max(oc.builtinCode, oc.deprecatedBuiltinCode)
        assert code < 127, "the old field holds codes below 127 only"
        oc.deprecatedBuiltinCode, oc.builtinCode = code, 0
    b = flatbuffers.Builder(len(data) + 4096)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def build_optimize_models(out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    if not all((out / f"{n}.tflite").exists() for n in NAMES):
        subprocess.run(
            [sys.executable, "-c", _BUILD, str(out)], check=True, capture_output=True, timeout=600
        )
    old = out / "convnet_old.tflite"
    if not old.exists():
        old.write_bytes(old_op_codes((out / "convnet.tflite").read_bytes()))
    return out
