"""The benchmarks behind ``workbench bench``, in one place.

- ``train``: ``bench train``, the engine's loop against a bare PyTorch loop (no Qt).
- ``demo``: ``bench demo``, seconds from Demo to a fallen loss and an attention pattern (no Qt).
- ``gui``: ``bench gui``, the window while it trains (event-loop lateness, tokens/s against
  headless, the widget benchmarks below).
- ``widgets``: redraw of a LossPlot and paint of the attention views, alone.

``train`` and ``demo`` import neither PySide6 nor ``workbench.gui`` (tests/engine/test_no_qt.py),
so they run where Qt is not installed; this file imports nothing either.
"""
