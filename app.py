"""Entry point (placeholder until the dashboard lands): `streamlit run app.py`."""

import streamlit as st

st.set_page_config(page_title="TFLite Studio", page_icon="🧩", layout="wide")
st.title("TFLite Studio")
st.write("Convert TensorFlow models to TensorFlow Lite. The dashboard is on its way; "
         "meanwhile use the `tflite-studio` command line.")
