"""The panels of the main window, one file each, in the order a person works through them:
corpus -> tokenizer -> model -> training -> curves -> attention.

This module holds what they share: the ``Panel`` base (a header with a title and a one-line
explanation, a ``summaryChanged`` signal the sidebar shows under the panel's name), "card" group
boxes and a few small form helpers that take help texts from the experiment's own field metadata.
"""

from __future__ import annotations

import dataclasses

from PySide6 import QtCore, QtGui, QtWidgets

from workbench.fmt import human_bytes, human_count  # noqa: F401  (the pages' number formats are fmt.py's)

from .. import theme
from ..widgets.flow import WrapLabel



class Panel(QtWidgets.QWidget):
    """A page of the main window. Subclasses fill ``self.body`` (a QVBoxLayout)."""

    summaryChanged = QtCore.Signal(str)
    title = ""
    subtitle = ""

    def __init__(self, parent: QtWidgets.QWidget | None = None, *, scroll: bool = False):
        super().__init__(parent)
        self.setObjectName(f"panel_{type(self).__name__}")
        outer = QtWidgets.QVBoxLayout(self)
        outer.setContentsMargins(20, 14, 20, 12)
        outer.setSpacing(10)
        head = QtWidgets.QVBoxLayout()
        head.setSpacing(2)
        self.title_label = QtWidgets.QLabel(self.title)
        self.title_label.setObjectName("panelTitle")
        self.subtitle_label = WrapLabel(self.subtitle)
        self.subtitle_label.setObjectName("panelSubtitle")
        head.addWidget(self.title_label)
        head.addWidget(self.subtitle_label)
        outer.addLayout(head)
        content = QtWidgets.QWidget()
        self.body = QtWidgets.QVBoxLayout(content)
        self.body.setContentsMargins(0, 0, 0, 0)
        self.body.setSpacing(10)
        # ``scroll`` is kept for callers: every page scrolls in the window (window.page_host.PageScroll),
        # and a scroll area of the panel's own hid its minimum size from it (controls were cut)
        outer.addWidget(content, 1)
        self._summary = ""

    def summary(self) -> str:
        return self._summary

    def set_summary(self, text: str) -> None:
        if text != self._summary:
            self._summary = text
            self.summaryChanged.emit(text)

    def set_presentation(self, scale: float) -> None:
        """Enlarge what the application font does not (plots, heatmaps). Default: nothing."""

    def set_page_size(self, size: QtCore.QSize) -> None:
        """The window tells the room its page has (the visible area of the page's scroll area):
        a panel whose main view should fill a share of the screen sets its minimum from this
        rather than from its own size. Default: nothing."""
        self._page_size = QtCore.QSize(size)

    def page_size(self) -> QtCore.QSize:
        """The last size given to ``set_page_size`` (the panel's own size before that)."""
        size = getattr(self, "_page_size", None)
        return self.size() if size is None else size

    def set_editable(self, editable: bool) -> None:
        """Settings are fixed while a run is going; what only shows things stays usable."""


def card(title: str = "", layout: QtWidgets.QLayout | None = None) -> tuple[QtWidgets.QGroupBox, QtWidgets.QLayout]:
    """A titled group box styled as a card; returns (box, its layout)."""
    box = QtWidgets.QGroupBox(title)
    box.setObjectName("card")
    lay = layout or QtWidgets.QVBoxLayout()
    box.setLayout(lay)
    return box, lay


def error_label() -> QtWidgets.QLabel:
    """A red, word-wrapped label for messages a person can act on; hidden while empty."""
    lab = WrapLabel()
    lab.setObjectName("errorLabel")
    lab.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
    lab.setStyleSheet(f"color: {theme.ERROR_COLOR};")
    lab.hide()
    return lab


def show_error(label: QtWidgets.QLabel, text: str) -> None:
    label.setText(text)
    label.setVisible(bool(text))


def muted_label(text: str = "") -> QtWidgets.QLabel:
    lab = WrapLabel(text)
    lab.setObjectName("mutedLabel")
    return lab


def field_help(section_cls: type, name: str) -> str:
    """The help text of an experiment setting (from the dataclass metadata in engine.config)."""
    for f in dataclasses.fields(section_cls):
        if f.name == name:
            return f.metadata.get("help", "")
    return ""


def field_limits(section_cls: type, name: str) -> tuple[float | None, float | None]:
    """The (min, max) of an experiment setting from its metadata (None where it has no bound): the
    limits a spin box for it takes, the same ones `config.check_range` enforces."""
    for f in dataclasses.fields(section_cls):
        if f.name == name:
            return f.metadata.get("min"), f.metadata.get("max")
    return None, None


class SciSpinBox(QtWidgets.QDoubleSpinBox):
    """A spin box for small positive numbers such as learning rates: shows 3e-3 style text and
    steps by multiplying (x2 / /2 per arrow click), so it moves sensibly across decades."""

    def __init__(self, parent=None, *, minimum: float = 0.0, maximum: float = 10.0):
        super().__init__(parent)
        self.setDecimals(12)
        self.setRange(minimum, maximum)
        self.setKeyboardTracking(False)

    def textFromValue(self, value: float) -> str:
        return f"{value:.3g}"

    def valueFromText(self, text: str) -> float:
        try:
            return float(text.strip().replace(",", "."))
        except ValueError:
            return self.value()

    def validate(self, text: str, pos: int):
        t = text.strip().replace(",", ".")
        if t in ("", "-", ".", "e", "E") or t.endswith(("e", "E", "e-", "E-", "e+", "E+")):
            return QtGui.QValidator.State.Intermediate, text, pos
        try:
            v = float(t)
        except ValueError:
            return QtGui.QValidator.State.Invalid, text, pos
        if self.minimum() <= v <= self.maximum():
            return QtGui.QValidator.State.Acceptable, text, pos
        return QtGui.QValidator.State.Intermediate, text, pos

    def stepBy(self, steps: int) -> None:
        v = self.value()
        if v <= 0:
            v = 1e-4 if steps > 0 else 0.0
        else:
            v = v * (2.0 ** steps)
        self.setValue(min(self.maximum(), max(self.minimum(), v)))


def spin_value(spin: QtWidgets.QDoubleSpinBox, base: float) -> float:
    """The spin box's value, or ``base`` when the box shows ``base`` rounded (1/2.6 stays 1/2.6)."""
    v = spin.value()
    return float(base) if round(float(base), spin.decimals()) == round(v, spin.decimals()) else round(v, 6)


def plain(obj):
    """A config dataclass as plain data (tuples as lists), for ``from_dict``."""
    if dataclasses.is_dataclass(obj):
        return {f.name: plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, tuple):
        return [plain(x) for x in obj]
    return obj
