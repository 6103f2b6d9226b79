"""The functions the pages run in the background, one module per page (and ``models`` for what
several pages share).

Each is ``fn(state, *args)``: ``state`` is the ``bridge.JobState`` of the job running it
(``should_stop()``, ``check()``, ``progress(value)``); the page starts it through a
``bridge.JobSlot``. Nothing here imports Qt or pyqtgraph, so tests call these functions directly
with a stand-in state, and the heavy engine modules (torch) are imported inside the functions, in
the worker thread, never at import time.
"""
