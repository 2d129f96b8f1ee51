"""Reading a model file without running it: the ``.tflite`` reader, upload
archives, compatibility rules (data plus schema), the report and its
templates, diff, and the naming rules for files.

It imports only the kernel; it starts no process and never imports
TensorFlow, so the web process may use it on trusted data.
"""
