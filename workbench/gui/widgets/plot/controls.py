"""The curve plot's control row (smoothing, x axis, log scale, export) and its export dialog."""

from __future__ import annotations

from typing import Sequence

from PySide6 import QtCore, QtGui, QtWidgets

from ... import theme
from ..flow import FlowRow, together
from .series import X_AXES, X_AXIS_LABELS
from workbench.curves import SMOOTH_SHARE


def format_smoothing(weight: float) -> str:
    """0.6 -> "0.6", 0.999 -> "0.999" (never "1.00": the weight is below 1)."""
    return f"{weight:.3f}".rstrip("0").rstrip(".") if weight > 0 else "0"


class CurveControls(FlowRow):
    """Smoothing slider, x-axis choice, log scale and an export menu, as one row (wrapping onto
    a second line where the page is narrow).

    Used by LossPlot (``show_controls=True``) and PlotStack; a panel may place its own.
    """

    smoothingChanged = QtCore.Signal(float)
    xAxisChanged = QtCore.Signal(str)
    logYChanged = QtCore.Signal(bool)
    exportRequested = QtCore.Signal(str)  # "png", "svg" or "csv"

    def __init__(self, parent: QtWidgets.QWidget | None = None, *,
                 exports: Sequence[str] = ("png", "svg", "csv")):
        super().__init__(parent)
        h = self.flow
        h.setContentsMargins(8, 4, 8, 2)
        h.setSpacing(8)
        self._labels = [QtWidgets.QLabel("Smoothing")]
        self.slider = QtWidgets.QSlider(QtCore.Qt.Orientation.Horizontal)
        self.slider.setRange(0, 999)
        self.slider.setMaximumWidth(170)
        self.slider.setMinimumWidth(110)  # squeezed, a slider shrinks to a dot
        self.slider.setToolTip("Exponential moving average of the curves (display only; the faint line behind "
                               f"is the raw data). A curve is averaged over at most 1/{SMOOTH_SHARE} of its "
                               "points, so the smoothed line keeps up with the data.")
        self.value_label = QtWidgets.QLabel("0")
        self.value_label.setMinimumWidth(self.value_label.fontMetrics().horizontalAdvance("0.999") + 4)
        self.slider.valueChanged.connect(self._on_slider)
        h.addWidget(together(self._labels[0], self.slider, self.value_label, spacing=8))  # wraps as one piece
        self._labels.append(QtWidgets.QLabel("x axis"))
        self.axis_combo = QtWidgets.QComboBox()
        for a in X_AXES:
            self.axis_combo.addItem(X_AXIS_LABELS[a], a)
        self.axis_combo.currentIndexChanged.connect(
            lambda i: self.xAxisChanged.emit(self.axis_combo.itemData(i)))
        h.addWidget(together(self._labels[-1], self.axis_combo, spacing=8))
        self.log_check = QtWidgets.QCheckBox("Log scale")
        self.log_check.setToolTip("Logarithmic y axis")
        self.log_check.toggled.connect(self.logYChanged)
        h.addWidget(self.log_check)
        h.addStretch()
        self.export_button = QtWidgets.QToolButton()
        self.export_button.setText("Export")
        self.export_button.setPopupMode(QtWidgets.QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QtWidgets.QMenu(self.export_button)
        names = {"png": "Image (PNG)…", "svg": "Vector image (SVG)…", "csv": "Data (CSV)…"}
        for kind in exports:
            menu.addAction(names[kind], lambda k=kind: self.exportRequested.emit(k))
        self.export_button.setMenu(menu)
        self.export_button.setVisible(bool(exports))
        h.addWidget(self.export_button)

    def _on_slider(self, v: int) -> None:
        self.value_label.setText(format_smoothing(v / 1000))
        self.smoothingChanged.emit(v / 1000.0)

    def set_state(self, smoothing: float, x_axis: str, log_y: bool) -> None:
        """Show these values without emitting signals."""
        blockers = [QtCore.QSignalBlocker(w) for w in (self.slider, self.axis_combo,
                                                        self.log_check)]
        self.slider.setValue(int(round(smoothing * 1000)))
        self.value_label.setText(format_smoothing(smoothing))
        self.axis_combo.setCurrentIndex(X_AXES.index(x_axis))
        self.log_check.setChecked(log_y)
        del blockers

    def set_presentation(self, scale: float) -> None:
        f = theme.font(scale, size=9.5)
        for w in [self, *self.findChildren(QtWidgets.QWidget)]:
            w.setFont(f)
        self.slider.setMaximumWidth(int(170 * scale))
        self.value_label.setMinimumWidth(QtGui.QFontMetrics(f).horizontalAdvance("0.999") + 4)
        self.slider.setMinimumWidth(int(110 * scale))
        self.updateGeometry()


def ask_export_path(parent: QtWidgets.QWidget, kind: str, stem: str) -> str:
    filters = {"png": "PNG image (*.png)", "svg": "SVG image (*.svg)",
               "csv": "CSV table (*.csv)"}
    stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in stem.lower()) or "curves"
    path, _ = QtWidgets.QFileDialog.getSaveFileName(parent, "Export", f"{stem}.{kind}",
                                                    filters[kind])
    return path
