"""What several test packages share (import from the module, not from here).

- ``net``: :func:`free_port`, :func:`port_open`, :func:`wait_for_port`.
- ``wait``: :func:`wait_until` (blocking) and :func:`eventually` (in a running event loop).
- ``processes``: child processes a test starts itself: :func:`spawn` (output in a log file),
  :func:`wait_ready`, :func:`answers_readyz`, and ending them by their own handle:
  :func:`stop` (SIGTERM, then SIGKILL), :func:`stop_all`, :func:`kill`, :func:`kill9`.
- ``threaded``: :class:`ThreadedServer`, an ASGI app under uvicorn in a thread.
"""
