"""Rebuild the sample models, their data files and ``manifest.json``.

Usage::

    python sample_models/build.py [--out sample_models] [--no-check]

Everything here is generated in code from data bundled with scikit-learn (no
download): seeds are fixed, TensorFlow runs single-threaded with deterministic
ops. After building, every SavedModel zip is unpacked again and converted with
``tf.lite.TFLiteConverter.from_saved_model`` under each optimization setting in
``SETTINGS``; each result is run in ``ai_edge_litert.interpreter.Interpreter``.
The outcome (converts or the converter's error, ops, size, accuracy) is written
into each manifest entry under ``expected`` and ``checks``.

Models built (function -> files):

- ``build_digits``          -> digits_classifier.zip, digits_classifier.keras,
                               digits_calibration.npz, digits_eval.npz
- ``build_sequence_lstm``   -> sequence_lstm.zip, sequence_lstm_keras3.zip,
                               sequence_calibration.npz, sequence_eval.npz
- ``build_select_tf_ops``   -> select_tf_ops.zip, select_tf_ops_calibration.npz
- ``build_multi_signature`` -> multi_signature.zip, iris_calibration.npz
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Callable, Iterator

# Must be set before TensorFlow is imported.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_DETERMINISTIC_OPS", "1")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import numpy as np  # noqa: E402

SEED = 1234
SCRIPT = "sample_models/build.py"
ZIP_DATE = (1980, 1, 1, 0, 0, 0)

# Sequence model sizes.
VOCAB = 200
SEQ_LEN = 16
EMBED = 8
UNITS = 16
MARKER_TOKEN = 7

# Conversion settings checked for every SavedModel (name -> description); the
# names are the preset values of core.options.Preset.
SETTINGS = {
    "float32": "no optimization",
    "float16": "optimizations=[DEFAULT], supported_types=[float16]",
    "dynamic": "optimizations=[DEFAULT]",
    "int8-float-io": "optimizations=[DEFAULT] + representative_dataset (float fallback)",
    "int8": (
        "optimizations=[DEFAULT] + representative_dataset, supported_ops=[TFLITE_BUILTINS_INT8], "
        "inference_input_type=inference_output_type=int8"
    ),
    "int16x8": (
        "optimizations=[DEFAULT] + representative_dataset, "
        "supported_ops=[EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]"
    ),
}


# Additional (setting, suffix) conversions for some files. "+select_tf_ops" adds
# SELECT_TF_OPS to supported_ops; "+no_tensor_list_lowering" also sets
# converter._experimental_lower_tensor_list_ops = False.
EXTRA_VARIANTS = {
    "select_tf_ops.zip": [(s, "+select_tf_ops") for s in SETTINGS],
    "sequence_lstm_keras3.zip": [
        ("float32", "+select_tf_ops"),
        ("float32", "+select_tf_ops+no_tensor_list_lowering"),
        ("dynamic", "+select_tf_ops+no_tensor_list_lowering"),
    ],
}


# --------------------------------------------------------------------------- helpers


def _setup_tf() -> Any:
    """Import TensorFlow single-threaded and deterministic; reset the seeds."""
    import tensorflow as tf

    if tf.config.threading.get_intra_op_parallelism_threads() != 1:
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    tf.keras.utils.set_random_seed(SEED)
    tf.config.experimental.enable_op_determinism()
    return tf


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 16), b""):
            h.update(block)
    return h.hexdigest()


def _zip_dir(src: Path, dest: Path, top: str) -> None:
    """Zip ``src`` as ``top/...`` with sorted names and fixed timestamps."""
    files = sorted(p for p in src.rglob("*") if p.is_file())
    with zipfile.ZipFile(dest, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for p in files:
            info = zipfile.ZipInfo(f"{top}/{p.relative_to(src).as_posix()}", date_time=ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, p.read_bytes())


def _normalize_zip(path: Path) -> None:
    """Rewrite a zip (the .keras file) with fixed timestamps, same member order."""
    with zipfile.ZipFile(path) as zf:
        members = [(i.filename, zf.read(i.filename)) for i in zf.infolist()]
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for name, data in members:
            info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, data)


def _save_npz(path: Path, **arrays: np.ndarray) -> dict[str, Any]:
    np.savez_compressed(path, **arrays)
    return {k: {"shape": list(v.shape), "dtype": str(v.dtype)} for k, v in arrays.items()}


def _spec(t: Any) -> dict[str, Any]:
    return {"shape": [None if d is None else int(d) for d in t.shape.as_list()],
            "dtype": t.dtype.name}


def _signatures(saved_model_dir: Path) -> dict[str, dict[str, Any]]:
    """Read signature input/output names, shapes and dtypes from a SavedModel."""
    import tensorflow as tf

    loaded = tf.saved_model.load(str(saved_model_dir))
    out: dict[str, dict[str, Any]] = {}
    for key in sorted(loaded.signatures):
        fn = loaded.signatures[key]
        _, kwargs = fn.structured_input_signature
        out[key] = {
            "inputs": {name: _spec(s) for name, s in sorted(kwargs.items())},
            "outputs": {name: _spec(s) for name, s in sorted(fn.structured_outputs.items())},
        }
    return out


def _file_entry(out: Path, name: str, kind: str, **fields: Any) -> dict[str, Any]:
    path = out / name
    entry: dict[str, Any] = {"file": name, "kind": kind}
    entry.update(fields)
    entry["sha256"] = _sha256(path)
    entry["size_bytes"] = path.stat().st_size
    return entry


def _model_entry(out: Path, name: str, sm_dir: Path, **fields: Any) -> dict[str, Any]:
    sigs = _signatures(sm_dir)
    inputs: dict[str, Any] = {}
    outputs: dict[str, Any] = {}
    for sig in sigs.values():
        inputs.update(sig["inputs"])
        outputs.update(sig["outputs"])
    return _file_entry(
        out, name, "saved_model_zip",
        inputs=inputs, outputs=outputs, signature_keys=sorted(sigs), signatures=sigs, **fields,
    )


# --------------------------------------------------------------------------- digits


def build_digits(out: Path, work: Path) -> list[dict[str, Any]]:
    """Small CNN on scikit-learn's bundled 8x8 digits; SavedModel zip + .keras + data."""
    tf = _setup_tf()
    import keras
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.images.astype("float32") / 16.0)[..., None]  # (1797, 8, 8, 1) in [0, 1]
    y = digits.target.astype("int64")
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.25, random_state=0, stratify=y
    )

    inp = keras.Input(shape=(8, 8, 1), dtype="float32", name="image")
    h = keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="conv")(inp)
    h = keras.layers.MaxPooling2D(2, name="pool")(h)
    h = keras.layers.Flatten(name="flatten")(h)
    h = keras.layers.Dense(32, activation="relu", name="hidden")(h)
    probs = keras.layers.Dense(10, activation="softmax", name="probabilities")(h)
    model = keras.Model(inp, probs, name="digits_classifier")
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    model.fit(x_train, y_train, epochs=20, batch_size=32, shuffle=True, verbose=0)
    pred = model.predict(x_test, verbose=0).argmax(axis=1)
    accuracy = float((pred == y_test).mean())
    print(f"digits: test accuracy {accuracy:.4f} on {len(y_test)} images")
    if accuracy < 0.95:
        raise SystemExit(f"digits accuracy {accuracy:.4f} < 0.95; refusing to write the model")

    sm = work / "digits_classifier"
    model.export(str(sm), format="tf_saved_model", verbose=False)
    _zip_dir(sm, out / "digits_classifier.zip", "digits_classifier")
    model.save(out / "digits_classifier.keras")
    _normalize_zip(out / "digits_classifier.keras")

    # Check the .keras file loads in safe mode and agrees with the SavedModel.
    reloaded = keras.models.load_model(out / "digits_classifier.keras", safe_mode=True)
    served = tf.saved_model.load(str(sm)).signatures["serving_default"]
    a = reloaded.predict(x_test[:32], verbose=0)
    b = served(image=tf.constant(x_test[:32]))["output_0"].numpy()
    assert np.allclose(a, b, atol=1e-5), "SavedModel and .keras disagree"

    input_name = next(iter(_signatures(sm)["serving_default"]["inputs"]))
    rng = np.random.default_rng(SEED)
    calib = x_train[np.sort(rng.choice(len(x_train), 200, replace=False))]
    calib_arrays = _save_npz(out / "digits_calibration.npz", **{input_name: calib})
    eval_arrays = _save_npz(
        out / "digits_eval.npz", **{input_name: x_test, "labels": y_test.astype("int64")}
    )

    data_source = "scikit-learn load_digits (bundled; 1797 8x8 images, 10 classes)"
    origin = {
        "script": SCRIPT, "function": "build_digits", "data": data_source,
        "split": "train_test_split(test_size=0.25, random_state=0, stratify=labels)",
        "seed": SEED,
    }
    expected = {"test_accuracy": round(accuracy, 4)}
    return [
        _model_entry(
            out, "digits_classifier.zip", sm,
            title="Handwritten digit reader",
            description=(
                "A small image classifier that looks at an 8x8 picture of a handwritten digit "
                "and says which digit (0-9) it is. A good first model: it converts under every "
                "setting, and its accuracy on held-out pictures shows what quantization costs."
            ),
            calibration="digits_calibration.npz", eval="digits_eval.npz",
            expected=expected, origin=origin,
        ),
        _file_entry(
            out, "digits_classifier.keras", "keras",
            title="Handwritten digit reader (Keras file)",
            description=(
                "The same trained digit reader saved as a single Keras 3 file (.keras). "
                "Loads in safe mode: only standard layers, no custom code."
            ),
            inputs={input_name: {"shape": [None, 8, 8, 1], "dtype": "float32"}},
            outputs={"output_0": {"shape": [None, 10], "dtype": "float32"}},
            calibration="digits_calibration.npz", eval="digits_eval.npz",
            expected={"test_accuracy": round(accuracy, 4), "safe_mode_load": "loads"},
            origin=origin,
        ),
        _file_entry(
            out, "digits_calibration.npz", "npz",
            title="Digit pictures for calibration",
            description=(
                "200 training pictures, used as representative data when quantizing the "
                "digit reader to integers."
            ),
            arrays=calib_arrays,
            origin={**origin, "selection": "200 training images, rng choice with seed"},
        ),
        _file_entry(
            out, "digits_eval.npz", "npz",
            title="Digit pictures for checking accuracy",
            description=(
                "Held-out pictures the model never saw in training, with their true labels; "
                "used to measure accuracy before and after conversion."
            ),
            arrays=eval_arrays,
            origin={**origin, "selection": "the test split"},
        ),
    ]


# --------------------------------------------------------------------------- sequence LSTM


def _lstm_function(tf: Any) -> Callable[..., Any]:
    """An LSTM written as Keras 2's ``standard_lstm`` function interface.

    The TFLite converter fuses a function carrying the attribute
    ``api_implements="lstm_..."`` with arguments (inputs, init_h, init_c, kernel,
    recurrent_kernel, bias) and five results into one UNIDIRECTIONAL_SEQUENCE_LSTM
    op. Keras 3's LSTM layer no longer sets that attribute (it converts to a WHILE
    loop), so the export uses this function with the trained Keras weights.
    Gate order (i, f, c, o), sigmoid recurrent activation and tanh activation
    match both Keras and the TFLite kernel.
    """

    @tf.function(
        autograph=False,
        experimental_attributes={
            "api_implements": "lstm_tflite_studio_sample",
            "api_preferred_device": "CPU",
            "time_major": False,
            "go_backwards": False,
        },
    )
    def standard_lstm(inputs, init_h, init_c, kernel, recurrent_kernel, bias):
        h, c = init_h, init_c
        steps = []
        for x_t in tf.unstack(inputs, axis=1):
            z = tf.matmul(x_t, kernel) + tf.matmul(h, recurrent_kernel) + bias
            i, f, g, o = tf.split(z, 4, axis=1)
            c = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
            h = tf.sigmoid(o) * tf.tanh(c)
            steps.append(h)
        outputs = tf.stack(steps, axis=1)
        return outputs[:, -1], outputs, h, c, tf.constant(0.0)

    return standard_lstm


def _token_data(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Random token sequences; label 1 when the marker token appears anywhere."""
    tokens = rng.integers(0, VOCAB - 1, size=(n, SEQ_LEN))
    tokens[tokens >= MARKER_TOKEN] += 1  # never the marker by chance
    labels = (rng.random(n) < 0.5).astype("int64")
    for row in np.flatnonzero(labels):
        k = int(rng.integers(1, 3))
        tokens[row, rng.choice(SEQ_LEN, k, replace=False)] = MARKER_TOKEN
    return tokens.astype("int32"), labels


def build_sequence_lstm(out: Path, work: Path) -> list[dict[str, Any]]:
    """Embedding + LSTM that answers "is token 7 in this sequence?"."""
    tf = _setup_tf()
    import keras

    rng = np.random.default_rng(SEED)
    x_train, y_train = _token_data(rng, 4000)
    x_test, y_test = _token_data(rng, 500)

    inp = keras.Input(shape=(SEQ_LEN,), dtype="int32", name="tokens")
    h = keras.layers.Embedding(VOCAB, EMBED, name="embedding")(inp)
    h = keras.layers.LSTM(UNITS, name="lstm")(h)
    prob = keras.layers.Dense(1, activation="sigmoid", name="probability")(h)
    model = keras.Model(inp, prob, name="sequence_lstm")
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="binary_crossentropy",
                  metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=8, batch_size=64, shuffle=True, verbose=0)
    keras_prob = model.predict(x_test, verbose=0)[:, 0]
    accuracy = float(((keras_prob > 0.5).astype("int64") == y_test).mean())
    print(f"sequence_lstm: test accuracy {accuracy:.4f} on {len(y_test)} sequences")
    if accuracy < 0.9:
        raise SystemExit(f"sequence accuracy {accuracy:.4f} < 0.9; refusing to write the model")

    emb = model.get_layer("embedding").get_weights()[0]
    kernel, recurrent_kernel, bias = model.get_layer("lstm").get_weights()
    dense_kernel, dense_bias = model.get_layer("probability").get_weights()
    standard_lstm = _lstm_function(tf)

    class SequenceModel(tf.Module):
        def __init__(self) -> None:
            super().__init__(name="sequence_lstm")
            self.embeddings = tf.Variable(emb, name="embeddings")
            self.kernel = tf.Variable(kernel, name="lstm_kernel")
            self.recurrent_kernel = tf.Variable(recurrent_kernel, name="lstm_recurrent_kernel")
            self.bias = tf.Variable(bias, name="lstm_bias")
            self.dense_kernel = tf.Variable(dense_kernel, name="dense_kernel")
            self.dense_bias = tf.Variable(dense_bias, name="dense_bias")

        @tf.function(input_signature=[tf.TensorSpec([1, SEQ_LEN], tf.int32, name="tokens")])
        def serve(self, tokens):
            x = tf.gather(self.embeddings, tokens)
            zeros = tf.zeros([1, UNITS])
            last, _, _, _, _ = standard_lstm(
                x, zeros, zeros,
                tf.identity(self.kernel), tf.identity(self.recurrent_kernel),
                tf.identity(self.bias),
            )
            logits = tf.matmul(last, self.dense_kernel) + self.dense_bias
            return {"probability": tf.sigmoid(logits)}

    module = SequenceModel()
    export_prob = np.concatenate(
        [module.serve(tf.constant(x_test[i : i + 1])).get("probability").numpy()[:, 0]
         for i in range(64)]
    )
    assert np.allclose(export_prob, keras_prob[:64], atol=1e-5), "export differs from Keras"

    sm = work / "sequence_lstm"
    tf.saved_model.save(module, str(sm), signatures={"serving_default": module.serve})
    _zip_dir(sm, out / "sequence_lstm.zip", "sequence_lstm")

    # The same trained model as Keras 3 exports it: LSTM as a while loop over
    # tensor lists, dynamic batch. Kept as the realistic "LSTM fails" case.
    sm_keras = work / "sequence_lstm_keras3"
    model.export(str(sm_keras), format="tf_saved_model", verbose=False)
    _zip_dir(sm_keras, out / "sequence_lstm_keras3.zip", "sequence_lstm_keras3")

    calib = x_train[:200]
    calib_arrays = _save_npz(out / "sequence_calibration.npz", tokens=calib)
    eval_arrays = _save_npz(out / "sequence_eval.npz", tokens=x_test, labels=y_test)
    origin = {
        "script": SCRIPT, "function": "build_sequence_lstm",
        "data": (f"synthetic token sequences (vocab {VOCAB}, length {SEQ_LEN}); label = "
                 f"token {MARKER_TOKEN} present; numpy default_rng seed {SEED}"),
        "training": "keras.layers.Embedding + keras.layers.LSTM + Dense, 8 epochs",
        "export": ("tf.Module with the trained weights; the LSTM is a tf.function marked "
                   "api_implements='lstm_...' (Keras 2 interface) so TFLite fuses it"),
        "seed": SEED,
    }
    return [
        _model_entry(
            out, "sequence_lstm.zip", sm,
            title="Token sequence detector (LSTM)",
            description=(
                f"Reads a sequence of {SEQ_LEN} word numbers and says how likely it is that "
                f"word number {MARKER_TOKEN} appears anywhere in it. Shows a recurrent "
                "network (LSTM) becoming a single fused TFLite LSTM op. The input batch is "
                "fixed to 1, as the fused LSTM needs."
            ),
            calibration="sequence_calibration.npz", eval="sequence_eval.npz",
            expected={"test_accuracy": round(accuracy, 4)}, origin=origin,
        ),
        _model_entry(
            out, "sequence_lstm_keras3.zip", sm_keras,
            title="Token sequence detector, as Keras 3 exports it",
            description=(
                "The same trained detector saved with Keras 3's model.export and its "
                "flexible batch size. Keras 3 writes the LSTM as a loop over tensor lists, "
                "which the built-in TFLite ops cannot express: plain conversion fails and "
                "the error says which switches to turn on (Select TF ops, no tensor-list "
                "lowering). Shows a real-world conversion failure and its fix."
            ),
            calibration="sequence_calibration.npz", eval="sequence_eval.npz",
            expected={"test_accuracy": round(accuracy, 4)},
            origin={**origin, "function": "build_sequence_lstm",
                    "export": "keras.Model.export (Keras 3 default: dynamic batch)"},
        ),
        _file_entry(
            out, "sequence_calibration.npz", "npz",
            title="Token sequences for calibration",
            description="200 training sequences used as representative data for quantization.",
            arrays=calib_arrays, origin=origin,
        ),
        _file_entry(
            out, "sequence_eval.npz", "npz",
            title="Token sequences for checking accuracy",
            description="500 held-out sequences with labels (1 = the marker word is present).",
            arrays=eval_arrays, origin=origin,
        ),
    ]


# --------------------------------------------------------------------------- select TF ops


def build_select_tf_ops(out: Path, work: Path) -> list[dict[str, Any]]:
    """A tiny model using tf.math.cumprod, which has no TFLite builtin kernel."""
    tf = _setup_tf()
    rng = np.random.default_rng(SEED)
    weights = (rng.normal(size=(8, 8)) / np.sqrt(8)).astype("float32")
    bias = np.full((8,), 2.0, dtype="float32")

    class RunningProduct(tf.Module):
        def __init__(self) -> None:
            super().__init__(name="select_tf_ops")
            self.w = tf.Variable(weights, name="w")
            self.b = tf.Variable(bias, name="b")

        @tf.function(input_signature=[tf.TensorSpec([None, 8], tf.float32, name="values")])
        def serve(self, values):
            keep = tf.sigmoid(tf.matmul(values, self.w) + self.b)  # per-step chance, (0, 1)
            return {"survival": tf.math.cumprod(keep, axis=1)}

    module = RunningProduct()
    sm = work / "select_tf_ops"
    tf.saved_model.save(module, str(sm), signatures={"serving_default": module.serve})
    _zip_dir(sm, out / "select_tf_ops.zip", "select_tf_ops")
    calib = rng.uniform(-1.0, 1.0, size=(100, 8)).astype("float32")
    calib_arrays = _save_npz(out / "select_tf_ops_calibration.npz", values=calib)
    origin = {
        "script": SCRIPT, "function": "build_select_tf_ops",
        "data": f"no training; weights from numpy default_rng seed {SEED}",
        "seed": SEED,
    }
    return [
        _model_entry(
            out, "select_tf_ops.zip", sm,
            title="Model that needs TensorFlow ops (Select TF ops)",
            description=(
                "Turns 8 numbers into 8 step-by-step chances and multiplies them up as it "
                "goes (a running product, tf.math.cumprod). TFLite has no built-in op for "
                "that, so plain conversion fails and names the op; switching on Select TF "
                "ops makes it convert, at the cost of needing the Flex delegate to run."
            ),
            calibration="select_tf_ops_calibration.npz",
            expected={}, origin=origin,
        ),
        _file_entry(
            out, "select_tf_ops_calibration.npz", "npz",
            title="Numbers for calibration (Select TF ops model)",
            description="100 rows of 8 random numbers in [-1, 1], used as representative data.",
            arrays=calib_arrays, origin=origin,
        ),
    ]


# --------------------------------------------------------------------------- multi signature


def build_multi_signature(out: Path, work: Path) -> list[dict[str, Any]]:
    """PCA on the iris flowers as two signatures, ``encode`` and ``decode``."""
    tf = _setup_tf()
    from sklearn.datasets import load_iris
    from sklearn.decomposition import PCA

    features = load_iris().data.astype("float32")
    pca = PCA(n_components=2, svd_solver="full").fit(features)
    mean = pca.mean_.astype("float32")
    components = pca.components_.astype("float32")  # (2, 4)

    class IrisPCA(tf.Module):
        def __init__(self) -> None:
            super().__init__(name="iris_pca")
            self.mean = tf.Variable(mean, name="mean")
            self.components = tf.Variable(components, name="components")

        @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="features")])
        def encode(self, features):
            return {"code": tf.matmul(features - self.mean, self.components, transpose_b=True)}

        @tf.function(input_signature=[tf.TensorSpec([None, 2], tf.float32, name="code")])
        def decode(self, code):
            return {"features": tf.matmul(code, self.components) + self.mean}

    module = IrisPCA()
    roundtrip = module.decode(module.encode(tf.constant(features))["code"])["features"].numpy()
    err = float(np.abs(roundtrip - features).mean())
    sm = work / "multi_signature"
    tf.saved_model.save(
        module, str(sm), signatures={"encode": module.encode, "decode": module.decode}
    )
    _zip_dir(sm, out / "multi_signature.zip", "multi_signature")
    code = pca.transform(features).astype("float32")
    calib_arrays = _save_npz(out / "iris_calibration.npz", features=features, code=code)
    origin = {
        "script": SCRIPT, "function": "build_multi_signature",
        "data": "scikit-learn load_iris (bundled; 150 flowers, 4 measurements)",
        "fit": "sklearn.decomposition.PCA(n_components=2, svd_solver='full')",
    }
    return [
        _model_entry(
            out, "multi_signature.zip", sm,
            title="Flower measurements squeezer (two entry points)",
            description=(
                "Squeezes 4 flower measurements into 2 numbers (encode) and back (decode), "
                "fitted on the iris flowers. It has two named entry points and no default one, "
                "so it shows how a converter picks signatures."
            ),
            calibration="iris_calibration.npz",
            expected={"mean_abs_roundtrip_error": round(err, 4)}, origin=origin,
        ),
        _file_entry(
            out, "iris_calibration.npz", "npz",
            title="Flower measurements for calibration",
            description=(
                "All 150 iris flowers: 'features' feeds the encode entry point, 'code' (their "
                "2-number summaries) feeds decode."
            ),
            arrays=calib_arrays, origin=origin,
        ),
    ]


# --------------------------------------------------------------------------- conversion checks


def _strip_loc(msg: str) -> str:
    """Drop a leading MLIR location ``loc(...):`` from a converter message."""
    if not msg.startswith("loc("):
        return msg
    depth, quoted = 0, False
    for i, ch in enumerate(msg):
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch == "(":
            depth += 1
        elif not quoted and ch == ")":
            depth -= 1
            if depth == 0:
                return msg[i + 1 :].lstrip(": ").strip()
    return msg


def _summarize_error(exc: BaseException) -> str:
    """Short, stable form of a converter error (full text is printed by the build)."""
    text = str(exc)
    lines = [ln.strip() for ln in text.splitlines()]
    if "TF Select ops:" in text:
        ops = next(ln for ln in lines if ln.startswith("TF Select ops:"))
        return f"Some ops are not supported by the native TFLite runtime; {ops}"
    found: list[str] = []
    for ln in lines:
        if "error:" in ln:
            msg = _strip_loc(ln.split("error: ", 1)[1].strip())
            if msg and msg not in found:
                found.append(msg)
    summary = "; ".join(found) if found else (lines[0] if lines else "")
    return f"{type(exc).__name__}: {summary}"[:700]


def _representative(sigs: dict[str, Any], calib: dict[str, np.ndarray]) -> Callable[[], Iterator]:
    keys = list(sigs)

    def gen() -> Iterator:
        for key in keys:
            names = list(sigs[key]["inputs"])
            n = min(len(calib[name]) for name in names)
            for i in range(min(n, 100)):
                sample = {name: calib[name][i : i + 1] for name in names}
                yield (key, sample) if len(keys) > 1 else sample

    return gen


def _convert(tf: Any, sm_dir: Path, setting: str, sigs: dict[str, Any],
             calib: dict[str, np.ndarray] | None, extra: str) -> bytes:
    conv = tf.lite.TFLiteConverter.from_saved_model(str(sm_dir))
    ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    needs_data = setting in ("int8-float-io", "int8", "int16x8")
    if needs_data and calib is None:
        raise ValueError("no representative data")
    if setting != "float32":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
    if setting == "float16":
        conv.target_spec.supported_types = [tf.float16]
    if needs_data:
        conv.representative_dataset = _representative(sigs, calib)
    if setting == "int8":
        ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = tf.int8
        conv.inference_output_type = tf.int8
    if setting == "int16x8":
        ops = [tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
    if extra.startswith("+select_tf_ops"):
        ops = ops + [tf.lite.OpsSet.SELECT_TF_OPS]
    if extra.endswith("+no_tensor_list_lowering"):
        conv._experimental_lower_tensor_list_ops = False
    conv.target_spec.supported_ops = ops
    return conv.convert()


def _to_input(value: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
    dtype = detail["dtype"]
    scale, zero = detail["quantization"]
    if np.issubdtype(dtype, np.integer) and value.dtype.kind == "f" and scale:
        info = np.iinfo(dtype)
        return np.clip(np.round(value / scale + zero), info.min, info.max).astype(dtype)
    return value.astype(dtype)


def _from_output(value: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
    scale, zero = detail["quantization"]
    if value.dtype.kind in "iu" and scale:
        return (value.astype("float32") - zero) * scale
    return value.astype("float32")


def _predict(runner: Any, in_name: str, out_name: str, x: np.ndarray, step: int,
             reset: Callable[[], None] | None) -> np.ndarray:
    details = runner.get_input_details()[in_name]
    out_detail = runner.get_output_details()[out_name]
    preds = []
    for i in range(0, len(x), step):
        if reset is not None:
            reset()
        out = runner(**{in_name: _to_input(x[i : i + step], details)})
        preds.append(_from_output(out[out_name], out_detail))
    return np.concatenate(preds)


def _accuracy(p: np.ndarray, labels: np.ndarray) -> float:
    guess = p.argmax(axis=1) if p.shape[1] > 1 else (p[:, 0] > 0.5).astype("int64")
    return round(float((guess == labels).mean()), 4)


def _run_litert(model: bytes, sigs: dict[str, Any], data: dict[str, np.ndarray],
                eval_data: dict[str, np.ndarray] | None) -> dict[str, Any]:
    """Run every signature once; measure accuracy when labelled data exists.

    Fused LSTM state lives in variable tensors that persist between invokes, so
    accuracy is measured with ``reset_all_variables()`` before every call; when
    skipping the reset changes the answer, that accuracy is recorded as well.
    """
    from ai_edge_litert.interpreter import Interpreter

    result: dict[str, Any] = {}
    try:
        interp = Interpreter(model_content=model, num_threads=1)
        interp.allocate_tensors()
        for key in sigs:
            runner = interp.get_signature_runner(key)
            details = runner.get_input_details()
            out_details = runner.get_output_details()
            batch = {}
            for name, spec in sigs[key]["inputs"].items():
                n = spec["shape"][0] or 4
                batch[name] = _to_input(data[name][:n], details[name])
            interp.reset_all_variables()
            outs = runner(**batch)
            for name, v in outs.items():
                if not np.all(np.isfinite(_from_output(v, out_details[name]))):
                    raise ValueError(f"non-finite output {name}")
        result["litert_runs"] = True
        if eval_data is not None:
            key = next(iter(sigs))
            ((in_name, spec),) = sigs[key]["inputs"].items()
            (out_name,) = sigs[key]["outputs"]
            runner = interp.get_signature_runner(key)
            x, labels = eval_data[in_name], eval_data["labels"]
            step = spec["shape"][0] or len(x)
            p = _predict(runner, in_name, out_name, x, step, interp.reset_all_variables)
            result["accuracy"] = _accuracy(p, labels)
            if step < len(x):
                p = _predict(runner, in_name, out_name, x, step, None)
                if _accuracy(p, labels) != result["accuracy"]:
                    result["accuracy_without_reset_all_variables"] = _accuracy(p, labels)
    except Exception as exc:  # noqa: BLE001 - recorded, not hidden
        result["litert_runs"] = False
        result["litert_error"] = f"{type(exc).__name__}: {str(exc).strip()[:400]}"
    return result


def _ops(model: bytes) -> list[str]:
    from ai_edge_litert.interpreter import Interpreter

    try:
        interp = Interpreter(model_content=model)
        return sorted({op["op_name"] for op in interp._get_ops_details()})
    except Exception:  # noqa: BLE001 - e.g. Flex ops unknown to the interpreter
        return []


def _tflite_signature_keys(model: bytes) -> list[str] | None:
    from ai_edge_litert.interpreter import Interpreter

    try:
        return sorted(Interpreter(model_content=model).get_signature_list())
    except Exception:  # noqa: BLE001 - e.g. an invalid model; reported elsewhere
        return None


def _flex_ops(model: bytes) -> list[str]:
    """Names of Flex (Select TF) custom ops, read from the raw FlatBuffer bytes."""
    import re

    return sorted({m.decode() for m in re.findall(rb"Flex[A-Z][A-Za-z0-9]+", model)})


def check_conversions(out: Path, entries: list[dict[str, Any]], work: Path) -> None:
    """Convert each SavedModel zip under every setting; write results into entries."""
    tf = _setup_tf()
    by_file = {e["file"]: e for e in entries}
    for entry in entries:
        if entry["kind"] != "saved_model_zip":
            continue
        unpacked = work / "check" / entry["file"]
        with zipfile.ZipFile(out / entry["file"]) as zf:
            zf.extractall(unpacked)
        (sm_dir,) = [p for p in unpacked.iterdir() if p.is_dir()]
        calib = dict(np.load(out / entry["calibration"])) if entry.get("calibration") else None
        eval_data = dict(np.load(out / entry["eval"])) if entry.get("eval") else None
        data = eval_data or calib or {}
        variants = [(s, "") for s in SETTINGS]
        variants += [(s, x) for s, x in EXTRA_VARIANTS.get(entry["file"], [])]
        # The converter may keep fewer signatures than the SavedModel has: for a
        # Keras `model.export` artifact (signatures `serve` and `serving_default`)
        # TFLiteConverter.from_saved_model keeps only `serving_default`.
        sigs = entry["signatures"]
        if {"serve", "serving_default"} <= set(sigs):
            sigs = {"serving_default": sigs["serving_default"]}
        checks: dict[str, Any] = {}
        for setting, extra in variants:
            label = setting + extra
            print(f"--- {entry['file']}: {label}", flush=True)
            try:
                model = _convert(tf, sm_dir, setting, sigs, calib, extra)
            except Exception as exc:  # noqa: BLE001 - the message is the result
                print(f"FAILED: {exc}", flush=True)
                checks[label] = {"converts": False, "error": _summarize_error(exc)}
                continue
            check = {"converts": True, "size_bytes": len(model), "ops": _ops(model)}
            keys = _tflite_signature_keys(model)
            if keys is not None:
                entry.setdefault("tflite_signature_keys", keys)
                if set(keys) != set(sigs):
                    raise AssertionError(f"{entry['file']}: converted keys {keys} != {list(sigs)}")
            flex = _flex_ops(model)
            if flex:
                check["flex_ops"] = flex
            check.update(_run_litert(model, sigs, data, eval_data))
            print(json.dumps(check), flush=True)
            checks[label] = check
        expected = by_file[entry["file"]]["expected"]
        for label, check in checks.items():
            if not check["converts"]:
                expected[label] = "fails: " + check["error"]
            elif check.get("litert_runs"):
                expected[label] = "converts"
            else:
                expected[label] = "converts; LiteRT: " + check["litert_error"]
        if "float32+select_tf_ops" in expected:
            expected["default_builtins"] = expected["float32"]
            expected["with_select_tf_ops"] = expected["float32+select_tf_ops"]
        entry["checks"] = checks
        # Recompute size-related bookkeeping that depends only on the file.
        entry["size_bytes"] = (out / entry["file"]).stat().st_size


# --------------------------------------------------------------------------- main


BUILDERS = [build_digits, build_sequence_lstm, build_select_tf_ops, build_multi_signature]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    parser.add_argument("--no-check", action="store_true",
                        help="skip the conversion matrix (expected results stay empty)")
    args = parser.parse_args(argv)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="tflite_studio_samples_"))
    try:
        entries: list[dict[str, Any]] = []
        for builder in BUILDERS:
            entries.extend(builder(out, work))
        if not args.no_check:
            check_conversions(out, entries, work)
        manifest = out / "manifest.json"
        manifest.write_text(json.dumps(entries, indent=2) + "\n", encoding="utf-8")
        total = sum(e["size_bytes"] for e in entries)
        for e in entries:
            print(f"{e['size_bytes']:>9}  {e['file']}")
        print(f"{total:>9}  total ({len(entries)} files) -> {manifest}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
