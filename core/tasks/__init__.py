"""What crosses a process boundary: one frozen request per worker task, the
typed results, and the pure-NumPy metrics both sides share.

It sits between ``core.model`` and the two rooms that use it (``core.worker``
runs tasks, ``core.pipeline`` asks for them), so neither imports the other;
it imports only the kernel and ``core.model``.
"""
