"""The exact prompt of one example, its parts coloured, and the line under it that lists the
candidates with the model's scores."""

from __future__ import annotations

import html

from PySide6 import QtGui, QtWidgets

from ... import theme

DEMO_FILLS = ("#cfe3f7", "#fde2c4")      # demonstration backgrounds, alternating (bars: plot.DEMO_BARS)
QUERY_FILL = "#fff0a6"
DESCRIPTION_FILL = "#eeeeee"
ANSWER_INK = "#174a17"

# the legend above the prompt
PARTS_KEY = (f"<span style='background:{DESCRIPTION_FILL}'>&nbsp;description&nbsp;</span> "
             f"<span style='background:{DEMO_FILLS[0]}'>&nbsp;demonstration&nbsp;</span>"
             f"<span style='background:{DEMO_FILLS[1]}'>&nbsp;…&nbsp;</span> "
             f"<b style='color:{ANSWER_INK}'>answer</b> "
             f"<b style='background:{QUERY_FILL}'>&nbsp;query&nbsp;</b>")


class PromptView(QtWidgets.QTextEdit):
    """The exact text the model reads, its parts coloured."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setReadOnly(True)
        self.setLineWrapMode(QtWidgets.QTextEdit.LineWrapMode.WidgetWidth)
        self._scale = 1.0
        self._apply_font()

    def set_prompt(self, parts: list[tuple[str, str, int]], demo_answers: list[str] | None = None) -> None:
        """``parts``: (kind, text, index) in order; demonstrations end with ``demo_answers[index]``."""
        self.clear()
        cur = self.textCursor()
        base = QtGui.QTextCharFormat()
        base.setForeground(QtGui.QColor(theme.FOREGROUND))
        answers = demo_answers or []
        for kind, text, index in parts:
            fmt = QtGui.QTextCharFormat(base)
            if kind == "description":
                fmt.setBackground(QtGui.QColor(DESCRIPTION_FILL))
                fmt.setFontItalic(True)
                fmt.setForeground(QtGui.QColor(theme.MUTED))
            elif kind == "demonstration":
                fmt.setBackground(QtGui.QColor(DEMO_FILLS[index % 2]))
                fmt.setToolTip(f"demonstration {index + 1}")
            elif kind == "query":
                fmt.setBackground(QtGui.QColor(QUERY_FILL))
                fmt.setFontWeight(QtGui.QFont.Weight.Bold)
                fmt.setToolTip("the query: the model continues from here")
            answer = answers[index] if kind == "demonstration" and 0 <= index < len(answers) else ""
            if answer and text.endswith(answer) and len(answer) < len(text):
                cur.insertText(text[:-len(answer)], fmt)
                afmt = QtGui.QTextCharFormat(fmt)
                afmt.setFontWeight(QtGui.QFont.Weight.Bold)
                afmt.setForeground(QtGui.QColor(ANSWER_INK))
                afmt.setToolTip(f"demonstration {index + 1}: its answer")
                cur.insertText(answer, afmt)
            else:
                cur.insertText(text, fmt)
        self.moveCursor(QtGui.QTextCursor.MoveOperation.End)
        self.ensureCursorVisible()

    def set_plain(self, text: str) -> None:
        self.clear()
        self.textCursor().insertText(text)

    def set_presentation(self, scale: float) -> None:
        self._scale = max(0.5, float(scale))
        self._apply_font()

    def _apply_font(self) -> None:
        self.document().setDefaultFont(theme.font(self._scale, size=11.5, mono=True))


def answers_html(p, scores: list[float] | None, length_norm: bool) -> str:
    """The candidates, the right one marked, the model's pick underlined, with their scores (if any)
    and what did not fit the context."""
    pick = max(range(len(scores)), key=scores.__getitem__) if scores else None
    items = []
    for i, a in enumerate(p.answers):
        text = html.escape(repr(a), quote=False)
        if i == p.gold:
            text = f"<b style='color:{ANSWER_INK}'>{text} ✓</b>"
        if scores:
            text += f" <span style='color:{theme.MUTED}'>{scores[i]:.2f}</span>"
        if i == pick:
            text = f"<u>{text}</u>"
        items.append(text)
    fit = ""
    if p.demos_used < p.demos_requested:
        fit = f" Only {p.demos_used} of {p.demos_requested} demonstrations fit the context."
    if p.cut_tokens:
        fit += f" {p.cut_tokens} tokens were cut from the start."
    head = f"{len(p.ids):,} tokens. " if p.ids else ""
    if scores:
        verdict = "right" if pick == p.gold else "wrong"
        norm = "mean" if length_norm else "summed"
        head += (f"The model picks <u>{html.escape(repr(p.answers[pick]), quote=False)}</u> ({verdict}; {norm} "
                 f"log-likelihoods below). ")
    n = len(items)
    shown = " · ".join(items[:40]) + (" · …" if n > 40 else "")
    return f"{head}Candidates (✓ right): {shown}.{fit}"

