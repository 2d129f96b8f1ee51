"""The only room that imports TensorFlow (and runs LiteRT and TFLite Micro):
the worker process's entry and one module per task, with one model loader
shared by conversion and evaluation.

It imports the kernel, ``core.model`` and ``core.tasks``; nothing imports it
except its own process entry (``python -m core.worker``), started by
``core.pipeline.isolation``.
"""
