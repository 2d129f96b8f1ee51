"""Models and data for the benchmarks, built in code (a helper, not a benchmark).

    .venv/bin/python bench/bench_models.py convnet OUT_DIR   # SavedModel zip + .npz data
    .venv/bin/python bench/bench_models.py tflite OUT_DIR    # + .tflite files for inspect

``convnet`` writes a MobileNet-like classifier (depthwise-separable blocks,
96x96x3 input named ``image``, 10 classes, about 2.4 M parameters, random
weights from fixed seeds) as ``convnet.zip`` (Keras 3 ``model.export``, one
top folder), ``convnet_calibration.npz`` and ``convnet_eval.npz`` (smooth
random images, key ``image``). ``tflite`` also converts it with dynamic-range
quantization (``convnet-dynamic.tflite``, about 2.5 MB) and the digits sample
to full integer (``digits-int8.tflite``, a small one), with a plain TFLiteConverter.

The benchmarks call this in a subprocess (the only place TensorFlow is imported
outside the measured processes) and cache the results under
``$TMPDIR/tflite-studio-bench/<hash of this file>``: see ``ensure``.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SIZE = 96
CLASSES = 10
CALIBRATION_SAMPLES = 100
EVAL_SAMPLES = 100
# (pointwise filters, stride) per depthwise-separable block, as in MobileNet v1
BLOCKS = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 6
BLOCKS += [(1024, 2)]

__all__ = ["ensure", "CACHE"]

CACHE = Path(tempfile.gettempdir()) / "tflite-studio-bench"


def ensure(kind: str, python: str) -> Path:
    """The folder holding ``kind``'s files ("convnet" or "tflite"), built once
    in a subprocess with ``python`` and cached by this file's content."""
    digest = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:12]
    out = CACHE / f"{kind}-{digest}"
    if not (out / "DONE").exists():
        out.mkdir(parents=True, exist_ok=True)
        print(f"building {kind} models into {out} (TensorFlow, subprocess)...", flush=True)
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
        cmd = [python, __file__, kind, str(out)]
        res = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if res.returncode:
            sys.exit(f"building {kind} failed:\n{res.stderr[-3000:]}")
        (out / "DONE").write_text("ok\n")
    return out


def images(n: int, seed: int):
    """Smooth random RGB images in [0, 1]: 12x12 noise blown up to 96x96."""
    import numpy as np

    rng = np.random.default_rng(seed)
    low = rng.random((n, 12, 12, 3), dtype=np.float32)
    big = low.repeat(SIZE // 12, axis=1).repeat(SIZE // 12, axis=2)
    noise = rng.normal(0.0, 0.05, big.shape).astype(np.float32)
    return np.clip(big + noise, 0.0, 1.0).astype(np.float32)


def _zip_dir(src: Path, dest: Path, top: str) -> None:
    with zipfile.ZipFile(dest, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(q for q in src.rglob("*") if q.is_file()):
            zf.write(p, f"{top}/{p.relative_to(src).as_posix()}")


def _convnet_model():
    import keras
    from keras import layers

    keras.utils.set_random_seed(1234)
    inp = keras.Input(shape=(SIZE, SIZE, 3), dtype="float32", name="image")
    x = layers.Conv2D(32, 3, strides=2, padding="same", use_bias=False)(inp)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU(6.0)(x)
    for filters, stride in BLOCKS:
        x = layers.DepthwiseConv2D(3, strides=stride, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        x = layers.ReLU(6.0)(x)
        x = layers.Conv2D(filters, 1, use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        x = layers.ReLU(6.0)(x)
    x = layers.GlobalAveragePooling2D()(x)
    out = layers.Dense(CLASSES, activation="softmax", name="probabilities")(x)
    return keras.Model(inp, out, name="convnet")


def _set_batchnorm_statistics(model, x) -> None:
    """Give every BatchNorm the statistics of its input on ``x`` (layer by layer),
    so the random network stays well scaled and its prediction depends on the
    image: top-1 agreement then means something."""
    import keras
    import numpy as np

    rng = np.random.default_rng(7)
    for layer in model.layers:
        if layer.__class__.__name__ != "BatchNormalization":
            continue
        feats = keras.Model(model.input, layer.input).predict(x, verbose=0)
        mean, var = feats.mean(axis=(0, 1, 2)), feats.var(axis=(0, 1, 2)) + 1e-3
        gamma = rng.uniform(0.8, 1.2, mean.shape)
        beta = rng.normal(0.3, 0.2, mean.shape)
        layer.set_weights([w.astype("float32") for w in (gamma, beta, mean, var)])


def build_convnet(out: Path) -> None:
    import numpy as np

    model = _convnet_model()
    _set_batchnorm_statistics(model, images(64, seed=3))
    head = model.get_layer("probabilities")
    kernel, bias = head.get_weights()
    head.set_weights([kernel * 4.0, bias])  # logits far enough apart to pick a class
    with tempfile.TemporaryDirectory() as tmp:
        sm = Path(tmp) / "convnet"
        model.export(str(sm), format="tf_saved_model", verbose=False)
        _zip_dir(sm, out / "convnet.zip", "convnet")
    np.savez(out / "convnet_calibration.npz", image=images(CALIBRATION_SAMPLES, seed=1))
    evaluation = images(EVAL_SAMPLES, seed=2)
    np.savez(out / "convnet_eval.npz", image=evaluation)
    top1 = model.predict(evaluation, verbose=0).argmax(1)
    print(
        f"convnet: {model.count_params():,} parameters, classes {np.bincount(top1, minlength=10)}"
    )


def _convert(saved_model: Path, dest: Path, calibration: Path | None = None) -> None:
    """Dynamic range, or full integer with int8 in/out given calibration data:
    a plain TFLiteConverter, like a .tflite from elsewhere."""
    import numpy as np
    import tensorflow as tf

    conv = tf.lite.TFLiteConverter.from_saved_model(str(saved_model))
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    if calibration is not None:
        data = np.load(calibration)["image"][:CALIBRATION_SAMPLES]
        conv.representative_dataset = lambda: ({"image": d[None]} for d in data)
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = conv.inference_output_type = tf.int8
    dest.write_bytes(conv.convert())


def _unzipped(zip_path: Path, tmp: str) -> Path:
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(tmp)
        top = zf.namelist()[0].split("/")[0]
    return Path(tmp) / top


def build_tflite(out: Path) -> None:
    build_convnet(out)
    samples = ROOT / "sample_models"
    with tempfile.TemporaryDirectory() as tmp:
        _convert(_unzipped(out / "convnet.zip", tmp), out / "convnet-dynamic.tflite")
        digits = _unzipped(samples / "digits_classifier.zip", tmp)
        _convert(digits, out / "digits-int8.tflite", samples / "digits_calibration.npz")


def main() -> None:
    if len(sys.argv) != 3 or sys.argv[1] not in ("convnet", "tflite"):
        sys.exit(__doc__)
    out = Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    (build_convnet if sys.argv[1] == "convnet" else build_tflite)(out)


if __name__ == "__main__":
    main()
