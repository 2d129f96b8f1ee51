"""The team server: job records and artifacts, the Huey queue and its
consumer, the runners of each job kind, settings, login, the HTTP API, the
Netron routes and server tuning.

It imports the pipeline, ``core.tasks``, ``core.model`` and the kernel; it
never imports Streamlit (the web rooms import it).
"""
