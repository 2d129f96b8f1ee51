"""TFLite Studio's engine, in rooms (each room's ``__init__`` says what it
holds and what it may import; import-linter checks it in ``make test``)::

    core.cli        the command line
    core.server     jobs, artifacts, queue, login, HTTP API, Netron routes
    core.pipeline   what callers ask for; runs worker tasks by name
    core.worker     the only room importing TensorFlow; one module per task
    core.tasks      requests and results that cross a process boundary
    core.model      reading a .tflite, archives, rules, report, diff, names
    kernel          errors, options, units, serial (import nothing of ours)
"""
