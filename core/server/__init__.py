"""The team server: job records and artifacts, the Huey queue and its
consumer, the runners of each job kind, settings, login, the HTTP API, the
Netron routes and server tuning.

``jobs`` is the front door (``JobStore`` and the module-level API); behind it
``db`` (records), ``artifacts``, ``intake`` (submitting), ``queue`` (Huey and
the consumer), ``running``, ``runners``, ``recovery`` and ``retention``.
``api`` and ``api_form`` serve HTTP, ``auth`` the login, ``netron`` the viewer.

It imports the pipeline, ``core.tasks``, ``core.model`` and the kernel; it
never imports Streamlit (the web rooms import it).
"""
