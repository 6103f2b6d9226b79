"""The sidebar: the path through the pages as numbered steps on a line, each with its page's
name and a one-line summary of that step's state ("loss 2.345"), on the dark pane at the left."""

from __future__ import annotations

from PySide6 import QtCore, QtGui, QtWidgets

from .. import theme

TITLE_ROLE = QtCore.Qt.ItemDataRole.DisplayRole
SUBTITLE_ROLE = QtCore.Qt.ItemDataRole.UserRole + 1
NUMBER_ROLE = QtCore.Qt.ItemDataRole.UserRole + 2
MIN_WIDTH = 215
WIDTH = 230  # the pane's width in a new window, before the person drags the splitter


def width_scale(scale: float) -> float:
    """How much wider the pane grows in presentation mode: less than the fonts, since the page
    needs the room more than the sidebar."""
    return 1 + (scale - 1) * 0.6


class SidebarDelegate(QtWidgets.QStyledItemDelegate):
    """Draws a step of the path: a numbered circle on a connecting line, the name, and a one-line
    summary of that step's current state."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.scale = 1.0

    def sizeHint(self, option, index) -> QtCore.QSize:
        fm = QtGui.QFontMetrics(option.font)
        return QtCore.QSize(200, int(fm.height() * 2.2 + 22 * self.scale))

    def paint(self, p: QtGui.QPainter, option, index) -> None:
        p.save()
        p.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing)
        r = QtCore.QRectF(option.rect)
        selected = bool(option.state & QtWidgets.QStyle.StateFlag.State_Selected)
        hover = bool(option.state & QtWidgets.QStyle.StateFlag.State_MouseOver)
        if selected or hover:
            bg = QtGui.QColor(theme.SIDEBAR_SELECTED_BG if selected else theme.SIDEBAR_HOVER_BG)
            p.setPen(QtCore.Qt.PenStyle.NoPen)
            p.setBrush(bg)
            p.drawRoundedRect(r.adjusted(8, 2, -8, -2), 7, 7)
            if selected:
                p.setBrush(QtGui.QColor(theme.SIDEBAR_MARK))
                p.drawRoundedRect(QtCore.QRectF(r.left() + 8, r.top() + 10, 3, r.height() - 20), 1.5, 1.5)
        number = index.data(NUMBER_ROLE)
        model = index.model()
        rad = 13 * self.scale
        cx, cy = r.left() + 34 * self.scale, r.center().y()
        line = QtGui.QPen(QtGui.QColor(theme.SIDEBAR_LINE), 2)
        p.setPen(line)
        if index.row() > 0:
            p.drawLine(QtCore.QPointF(cx, r.top()), QtCore.QPointF(cx, cy - rad))
        if index.row() < model.rowCount() - 1:
            p.drawLine(QtCore.QPointF(cx, cy + rad), QtCore.QPointF(cx, r.bottom() + 1))
        p.setPen(QtGui.QPen(QtGui.QColor(theme.SIDEBAR_MARK if selected else theme.SIDEBAR_RING), 2))
        p.setBrush(QtGui.QColor(theme.UI_ACCENT if selected else theme.SIDEBAR_BG))
        p.drawEllipse(QtCore.QPointF(cx, cy), rad, rad)
        f = QtGui.QFont(option.font)
        f.setBold(True)
        p.setFont(f)
        p.setPen(QtGui.QColor(theme.SIDEBAR_SELECTED_TEXT if selected else theme.SIDEBAR_NUMBER))
        p.drawText(QtCore.QRectF(cx - rad, cy - rad, 2 * rad, 2 * rad), QtCore.Qt.AlignmentFlag.AlignCenter, str(number))
        tx = cx + rad + 12 * self.scale
        fm = QtGui.QFontMetrics(f)
        title_rect = QtCore.QRectF(tx, cy - fm.height() - 1, r.right() - tx - 10, fm.height())
        p.setPen(QtGui.QColor(theme.SIDEBAR_SELECTED_TEXT if selected else theme.SIDEBAR_TITLE))
        p.drawText(title_rect, QtCore.Qt.AlignmentFlag.AlignLeft | QtCore.Qt.AlignmentFlag.AlignVCenter,
                   index.data(TITLE_ROLE))
        small = QtGui.QFont(option.font)
        small.setPointSizeF(option.font.pointSizeF() * 0.88)
        p.setFont(small)
        sfm = QtGui.QFontMetrics(small)
        sub = index.data(SUBTITLE_ROLE) or ""
        sub_rect = QtCore.QRectF(tx, cy + 2, r.right() - tx - 10, sfm.height())
        p.setPen(QtGui.QColor(theme.SIDEBAR_SELECTED_SUMMARY if selected else theme.SIDEBAR_SUMMARY))
        p.drawText(sub_rect, QtCore.Qt.AlignmentFlag.AlignLeft | QtCore.Qt.AlignmentFlag.AlignVCenter,
                   sfm.elidedText(sub, QtCore.Qt.TextElideMode.ElideRight, int(sub_rect.width())))
        p.restore()


class SidebarPane(QtWidgets.QWidget):
    """The pane: the application's name, the steps (``steps``, a list with one item per page) and
    a hint at its foot."""

    def __init__(self, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("sidebarPane")
        # a QWidget subclass paints its style-sheet background only when asked to
        self.setAttribute(QtCore.Qt.WidgetAttribute.WA_StyledBackground, True)
        sl = QtWidgets.QVBoxLayout(self)
        sl.setContentsMargins(0, 0, 0, 0)
        sl.setSpacing(0)
        t = QtWidgets.QLabel("GPT Workbench")
        t.setObjectName("appTitle")
        st = QtWidgets.QLabel("train and look inside small GPTs")
        st.setObjectName("appSubtitle")
        sl.addWidget(t)
        sl.addWidget(st)
        self.titles = (t, st)
        self.steps = QtWidgets.QListWidget()
        self.steps.setObjectName("sidebar")
        self.delegate = SidebarDelegate(self.steps)
        self.steps.setItemDelegate(self.delegate)
        self.steps.setMouseTracking(True)
        self.steps.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.steps.setVerticalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.steps.setVerticalScrollMode(QtWidgets.QAbstractItemView.ScrollMode.ScrollPerPixel)
        sl.addWidget(self.steps, 1)
        self.foot = QtWidgets.QLabel("F11 presentation mode")
        self.foot.setObjectName("sidebarFoot")
        sl.addWidget(self.foot)

    def add_step(self, panel) -> QtWidgets.QListWidgetItem:
        """A step for ``panel`` (a ``Panel``): its title, its number in the path, and its summary,
        which follows the panel's ``summaryChanged`` at once, in the same event-loop pass as the
        page's own header (a summary that lags its page reads as a different number)."""
        item = QtWidgets.QListWidgetItem(panel.title)
        item.setData(NUMBER_ROLE, self.steps.count() + 1)
        item.setData(SUBTITLE_ROLE, panel.summary())
        item.setToolTip(panel.subtitle)
        self.steps.addItem(item)
        panel.summaryChanged.connect(lambda text, it=item: it.setData(SUBTITLE_ROLE, text))
        return item

    def set_scale(self, scale: float) -> None:
        """Presentation mode: bigger circles, and a pane wide enough for the bigger title."""
        self.delegate.scale = scale
        titles = max(label.sizeHint().width() for label in self.titles)
        self.setMinimumWidth(max(int(MIN_WIDTH * width_scale(scale)), titles))
        self.steps.doItemsLayout()
