"""Render the application icon (workbench/resources/icons/gpt-workbench.svg) to PNGs.

    python packaging/make_icons.py            # writes gpt-workbench-{16..512}.png next to the SVG

Uses QtSvg's QSvgRenderer (part of PySide6-Essentials), offscreen, so it runs without a display.
The PNGs are committed: the window, the desktop entry and the bundle use them as they are.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6 import QtCore, QtGui, QtSvg, QtWidgets  # noqa: E402

ICONS = Path(__file__).resolve().parent.parent / "workbench" / "resources" / "icons"
SIZES = (16, 32, 48, 64, 128, 256, 512)


def render(svg: Path, size: int) -> QtGui.QImage:
    renderer = QtSvg.QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise SystemExit(f"{svg}: not a valid SVG")
    image = QtGui.QImage(size, size, QtGui.QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(QtCore.Qt.GlobalColor.transparent)
    painter = QtGui.QPainter(image)
    painter.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing)
    painter.setRenderHint(QtGui.QPainter.RenderHint.SmoothPixmapTransform)
    renderer.render(painter, QtCore.QRectF(0, 0, size, size))
    painter.end()
    return image


def main(argv: list[str]) -> int:
    QtWidgets.QApplication.instance() or QtWidgets.QApplication(argv[:1])
    svg = ICONS / "gpt-workbench.svg"
    for size in SIZES:
        out = ICONS / f"gpt-workbench-{size}.png"
        if not render(svg, size).save(str(out), "PNG"):
            raise SystemExit(f"could not write {out}")
        print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
