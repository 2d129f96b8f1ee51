"""Guide: what the choices mean, in plain words and pictures: the workflow as
a diagram, and what each preset did to a sample model (measured when the
samples were built)."""

from __future__ import annotations

import streamlit as st

from core.options import PRESETS
from ui.guide_charts import WORKFLOW_DOT, preset_effects, preset_effects_chart
from ui.samples import SAMPLES_DIR, find_sample

st.title("Guide")
st.caption("What the choices on the Convert page mean, without the jargon.")

st.header("The way through")
st.graphviz_chart(WORKFLOW_DOT, width="stretch")
st.markdown(
    """
**Pick** a trained model, **convert** it with a preset, **check** what it cost (size,
where it runs, accuracy, speed), **deploy** the `.tflite` with its report — and if the
check says so, **optimize**: another preset, or the worst layers kept in float (the
Compare page tries them all at once).
"""
)

st.header("What conversion does")
st.markdown(
    """
A TensorFlow model is a program plus its learned numbers (the *weights*). To run it on a
phone, a browser or a microcontroller, it is converted into one compact **TensorFlow Lite**
file (`.tflite`, also called LiteRT). The file holds the steps of the model (*operators*,
like "convolution" or "add") and the weights, ready for a small runtime to execute.
"""
)

st.header("What quantization does")
st.markdown(
    """
Weights are normally stored as 32-bit decimal numbers. **Quantization** stores them with
fewer bits — 16-bit decimals, or 8-bit whole numbers with a scale — like saving a photo as
a JPEG instead of a RAW file:

- the file gets **2× to 4× smaller**,
- it often runs **faster**, and some chips (Edge TPU, many NPUs, microcontrollers) *only*
  run 8-bit models,
- the answers change slightly. Usually the accuracy drop is small; check it before you ship.

*Full integer* presets also turn the in-between values (*activations*) into 8-bit numbers.
To pick good ranges for those, the converter runs the model on a few hundred typical inputs:
the **calibration data**. Without it, TFLite Studio uses random numbers and warns you: the
file works, but its accuracy may be poor.
"""
)

st.header("What each preset does to size and accuracy")
_sample = find_sample("digits_classifier.zip")
_effects = preset_effects(SAMPLES_DIR / "manifest.json")
if _effects:
    st.plotly_chart(
        preset_effects_chart(_effects, _sample.title if _sample else "the sample model"),
        width="stretch",
        config={"displaylogo": False},
    )
    st.caption(
        "Measured, not typed in: when the sample models were built, the digit reader was "
        "converted with every preset, run in LiteRT and scored on 450 held-out pictures "
        "(sample_models/build.py writes the results into manifest.json). Your own model "
        "may lose more: the Compare page measures it."
    )

st.header("Which preset for which device")
rows = [
    {
        "Preset": p.value,
        "What it does": i.summary,
        "Expected size": i.size_effect,
        "Suits": i.devices,
        "Needs calibration data": "yes" if i.needs_calibration else "no",
    }
    for p, i in PRESETS.items()
]
st.table(rows)
st.markdown(
    """
**Not sure?** Start with **dynamic** (no data needed, 4× smaller). For a GPU, use
**float16**. For an Edge TPU or a microcontroller, use **int8** with real calibration data.
If int8 fails because an operator has no integer version, **int8-float-io** keeps that part
in float.
"""
)

st.header("What Select TF ops cost")
st.markdown(
    """
TensorFlow Lite has its own, smaller set of operators. When a model uses a TensorFlow
operator that TFLite lacks, the conversion fails and names it. **Select TF ops** lets those
operators run with TensorFlow's own code (the *Flex delegate*). The price:

- the app on the device must ship the Flex library, which adds **several megabytes**
  (often 5–20 MB per CPU architecture) to its size,
- those operators do not run on the GPU, Edge TPU or microcontrollers, and
- they are usually slower than built-in operators.

**Custom ops** go one step further: the converter keeps an operator it knows nothing about,
and *you* must write and register its implementation in the app. Use it only when you
already have that code.
"""
)

st.header("How to upload a SavedModel")
st.markdown(
    """
A SavedModel is a folder (`saved_model.pb` plus a `variables/` folder). Zip the folder
itself and upload the `.zip`:
"""
)
st.code(
    """# in Python, after training
model.export("my_model")             # Keras 3; or tf.saved_model.save(model, "my_model")

# in a terminal
zip -r my_model.zip my_model/        # or: tar czf my_model.tar.gz my_model/""",
    language="bash",
)
st.markdown(
    """
A Keras model can also be uploaded directly as one `.keras` (or older `.h5`) file. Models
with custom Python code (for example `Lambda` layers) are refused, because a model file is
a program: run `model.export(...)` on your machine and upload the SavedModel instead.

An existing `.tflite` file goes straight to **Inspect**.
"""
)

st.header("Calibration data")
st.markdown(
    """
Give 100–500 typical inputs, the kind the model will see in use:

- a **`.npz`** file with one array per model input, named like the input
  (`numpy.savez("calibration.npz", image=images)`), or a **`.npy`** file for a single input;
- or a **`.zip` of images**; they are resized to the model's input and scaled to the
  *image range* you set under Advanced options (for example 0–1 or −1–1).
"""
)

st.header("Reading the compatibility verdicts")
st.markdown(
    """
After a conversion, Inspect checks every operator against common targets:

- :green[**runs**] — every operator is supported there;
- :orange[**partly**] — it runs, but some operators fall back to the CPU or need extra
  libraries;
- :red[**does not run**] — at least one operator is not supported there; the reasons name it.
"""
)
