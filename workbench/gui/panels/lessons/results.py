"""The lesson's figures: each finished run as a dot of its condition (the strip chart), each
condition's mean ± std, and at the end the effect and the verdict in large type."""

from __future__ import annotations

from PySide6 import QtWidgets

from workbench.lessons import Finished, Planned, RunDone

from ...widgets.flow import WrapLabel
from ...widgets.strip_chart import StripChart, mean_std
from .. import muted_label
from .live import condition_colors


class ResultsView(QtWidgets.QWidget):
    """The strip chart and the figures under it: ``begin(lesson)``, then ``add(events)``."""

    def __init__(self, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.caption = muted_label("Each finished run is a dot; the bar is the mean of its condition, the "
                                   "whisker one standard deviation either side.")
        lay.addWidget(self.caption)
        self.chart = StripChart(empty_text="A dot appears here as each run finishes")
        lay.addWidget(self.chart, 1)
        self.figures = muted_label()
        self.figures.setObjectName("lessonFigures")
        lay.addWidget(self.figures)
        self._lesson = None
        self._extras: dict[str, dict[str, list]] = {}   # condition -> extra's name -> per-seed numbers

    def begin(self, lesson) -> None:
        self._lesson = lesson
        colors = condition_colors(lesson.conditions)
        self.chart.set_groups(list(lesson.conditions), [colors[c] for c in lesson.conditions])
        self._extras = {}
        self.caption.setText(f"Each finished run's {lesson.metric} is a dot; the bar is its condition's mean, the "
                             f"whisker one standard deviation either side.")
        self._show_figures()

    def add(self, events) -> None:
        changed = False
        for e in events:
            if isinstance(e, RunDone):
                self.chart.add_value(e.condition, e.value)
                for key, value in scalar_extras(e.extra).items():
                    self._extras.setdefault(e.condition, {}).setdefault(key, []).append(value)
                changed = True
        if changed:
            self._show_figures()

    def _show_figures(self) -> None:
        lines = []
        for name in self.chart.groups():
            values = self.chart.values(name)
            if values:
                mean, std = mean_std(values)
                lines.append(f"<b>{name}</b> {mean:.3f} ± {std:.3f} &nbsp; seeds: "
                             + ", ".join(f"{v:.3f}" for v in values)
                             + "".join(f" &nbsp; {key}: " + ", ".join(f"{v:.4g}" for v in vs)
                                       for key, vs in self._extras.get(name, {}).items()))
        self.figures.setText("<br>".join(lines))
        self.figures.setVisible(bool(lines))

    def set_presentation(self, scale: float) -> None:
        self.chart.set_presentation(scale)


def scalar_extras(extra: dict) -> dict[str, float]:
    """The numbers among a run's extras, named for a person ("train_seconds" -> "train seconds"); a
    matrix or a text stays in the JSON of `workbench lesson --json`."""
    return {k.replace("_", " "): float(v) for k, v in extra.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)}


class Verdict(QtWidgets.QWidget):
    """What the lesson showed: the effect (large) and the verdict's words, or where it stands."""

    def __init__(self, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(4)
        self.effect = WrapLabel()
        self.effect.setObjectName("lessonEffect")
        self.text = WrapLabel()
        self.text.setObjectName("lessonVerdict")
        self.note = muted_label()
        lay.addWidget(self.effect)
        lay.addWidget(self.text)
        lay.addWidget(self.note)
        self.waiting()

    def waiting(self, text: str = "Press Run: the verdict comes when every run has finished.") -> None:
        self.effect.setText("")
        self.effect.hide()
        self.text.setText("")
        self.text.hide()
        self.note.setText(text)

    def planned(self, lesson, p: Planned) -> None:
        n = len(p.conditions) * len(p.seeds)
        self.waiting(f"Running {n} runs ({len(p.conditions)} conditions × {len(p.seeds)} seeds)"
                     + (f", after {p.prepare_label} once per seed" if p.prepare_label else "")
                     + ": the verdict comes when they have finished.")

    def finished(self, e: Finished) -> None:
        r = e.result
        a, b = r.lesson.effect
        have = bool(r.conditions[a].values and r.conditions[b].values)
        self.effect.setVisible(have)
        if have:
            self.effect.setText(f"Effect ({a} − {b}): {r.effect:+.3f}")
        self.text.setText(r.verdict())
        self.text.show()
        done = sum(len(c.values) for c in r.conditions.values())
        if r.stopped:
            self.note.setText(f"Stopped: {done} run{'s' if done != 1 else ''} had finished; the figures are theirs.")
        elif r.size == "small":
            self.note.setText("Quick size: fewer seeds and smaller runs than the lesson's, so its figures are "
                              "not the lesson's.")
        else:
            over = r.seconds > r.lesson.budget_s
            self.note.setText(f"{done} runs in {r.seconds:.0f} s"
                              + (f" (over the {r.lesson.budget_s:.0f} s budget on this computer)" if over else ""))

    def failed(self, message: str, where: str) -> None:
        self.effect.hide()
        self.text.setText(f"The lesson failed{' in ' + where if where else ''}: {message}")
        self.text.show()
        self.note.setText("The dots above are the runs that had finished.")
