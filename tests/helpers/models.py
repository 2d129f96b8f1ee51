"""Tiny models built in code for the tests (run in a subprocess so the test
process does not carry TensorFlow's memory)."""

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

    # a tiny CNN: one named input, dynamic batch
    inp = keras.Input((8, 8, 1), name="image")
    x = keras.layers.Conv2D(4, 3, activation="relu")(inp)
    x = keras.layers.Flatten()(x)
    m = keras.Model(inp, keras.layers.Dense(3, activation="softmax")(x))
    m.export(f"{out}/tiny_sm", verbose=False)
    m.save(f"{out}/tiny.keras")
    m.save(f"{out}/tiny.h5")
    np.savez(f"{out}/tiny_cal.npz", image=np.random.rand(20, 8, 8, 1).astype("float32"))

    # a Keras LSTM with a dynamic batch: needs --input-shape to lower to builtins
    inp = keras.Input((6,), dtype="int32", name="tokens")
    x = keras.layers.Embedding(20, 4)(inp)
    keras.Model(inp, keras.layers.Dense(1)(keras.layers.LSTM(3)(x))).save(f"{out}/lstm.keras")

    # a Keras model with a Lambda layer: refused in safe mode
    inp = keras.Input((4,), name="x")
    lam = keras.Model(inp, keras.layers.Lambda(lambda t: t * 2.0)(inp))
    lam.save(f"{out}/lambda.keras")

    # a module with a Select-TF-only op (no TFLite builtin)
    class Cum(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="x")])
        def serve(self, x):
            return {"y": tf.math.cumprod(x, axis=1)}
    c = Cum()
    tf.saved_model.save(c, f"{out}/cumprod_sm", signatures={"serving_default": c.serve})

    # two signatures, no serving_default
    class Two(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32, name="a")])
        def double(self, a):
            return {"out": a * 2.0}
        @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32, name="a")])
        def negate(self, a):
            return {"out": -a}
    t = Two()
    tf.saved_model.save(t, f"{out}/two_sigs_sm",
                        signatures={"double": t.double, "negate": t.negate})

    # dynamic spatial dims, to be fixed with --input-shape
    inp = keras.Input((None, None, 3), name="pic")
    y = keras.layers.Conv2D(2, 3, padding="same")(inp)
    keras.Model(inp, keras.layers.GlobalAveragePooling2D()(y)).export(
        f"{out}/dynamic_sm", verbose=False)
    """
)


def build_tiny_models(out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    if not (out / "dynamic_sm" / "saved_model.pb").exists():
        subprocess.run(
            [sys.executable, "-c", _BUILD, str(out)], check=True, capture_output=True, timeout=300
        )
    return out
