"""What callers ask for: convert, inspect, evaluate, sweep, per-layer error,
latency, and the recommendation. Each model task runs in a worker, reached by
its name through ``isolation`` (the one module that starts processes).

It imports the kernel, ``core.model`` and ``core.tasks``; never the worker
room, the server or the web.
"""
