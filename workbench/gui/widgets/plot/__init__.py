"""Live training curves: many named series, smoothing, log scale, three x axes, overlays, export.

``LossPlot`` is the TensorBoard-style chart of the workbench. Feeding it is cheap and drawing is
separate, so a training run can send points at any rate::

    plot = LossPlot(title="Loss")
    plot.add_points("train/lm", step=[1, 2, 3], y=[4.1, 3.9, 3.7],
                    tokens=[4096, 8192, 12288], time=[0.1, 0.2, 0.3])
    plot.add_points("val/lm", step=[3], y=[3.8])        # "val/..." series are drawn with symbols
    timer.timeout.connect(plot.refresh)                   # the owner redraws ~10 times a second

Every point carries three x coordinates: ``step`` (always), ``tokens`` (tokens seen so far) and
``time`` (seconds since the run started). ``tokens`` and ``time`` may be left out; such points
are then missing from the plot while that x axis is chosen. ``set_x_axis("step"|"tokens"|"time")``
chooses which one is drawn.

Smoothing is the debiased exponential moving average of TensorBoard, applied to the display
only (``smoothed(series)``; exports are raw): the raw curve stays faint behind the smoothed one.
The weight goes up to 0.999, but a curve is never averaged over more than 1/16 of its points
(``ema_weight_for``), so a smoothed line ends where the data is, even on a short run.

Speed (measured on a 2-core machine; ``workbench.bench.widgets.redraw_benchmark``): points live in growable numpy
buffers, ``add_points`` only copies. ``refresh`` smooths the new points incrementally and updates
a min/max pyramid per curve (``curves.Envelope``), then hands pyqtgraph at most a few hundred bins for
the visible range, each bin's true minimum and maximum (nothing is averaged away; outside the
view, coarse bins keep the extremes for autorange). Sparse data (up to ~1 point per pixel
column) is drawn as lines through every point; dense data as a band from minimum to maximum,
with the smoothed curve's midline on top. A redraw costs O(plot width), not O(points).

Why not pyqtgraph's ``setDownsampling(mode='peak')`` + ``setClipToView``: they rescan every
point on each ``setData`` (14 ms for two 10^6-point curves before painting) and the peak
zigzag they draw costs 20-700 ms to paint antialiased and wider than 1 px. Two more drawing
facts shaped this file: Qt strokes any antialiased line wider than 1 px as one
self-intersecting outline (50-120 ms for 2000 noisy points), so thick lines are a 1-px line
stamped at sub-pixel offsets (``install_stamped_paint``), and bands are filled without
antialiasing (3x cheaper, and their edge is noise anyway).

``MetricPlot`` is the compact variant for learning rate, gradient norm or tokens/s, and
``PlotStack`` stacks several plots with linked x axes and shared controls.

Modules, one job each:

- ``loss_plot``: ``LossPlot`` and ``MetricPlot``, the widgets (data in, view state, look, export).
- ``stack``: ``PlotStack``.
- ``controls``: ``CurveControls`` (the control row) and the export dialog.
- ``series``: one curve's data, its sync and how it is handed to its items; CSV rows; readout.
- ``smoothing``: the EMA, the smoothing weight's cap and the min/max pyramid (numpy only).
- ``items``: the band, the legend swatch and the stamped thick line (pyqtgraph items).
- ``axes``: the x and y axes with readable numbers.
"""
