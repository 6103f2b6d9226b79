"""Lessons: each idea of GPT pretraining and fine-tuning shown by an experiment that lands in minutes.

Each lesson is one module here defining ``LESSON`` (a `base.Lesson`); `MODULES` lists them in the
order the window and `workbench lesson` show them. Lesson modules import torch and the engine, so
they are imported when first asked for, not when this package is.
"""

from __future__ import annotations

import importlib

from .base import (Finished, Lesson, LessonEvent, LessonResult, LessonStopped, Mark, Outcome, Planned,
                   Point, RunContext, RunDone, Started, run_lesson)

# module name -> the lesson's command-line name comes from the module's LESSON.name
MODULES: tuple[str, ...] = (
    "pretraining", "freezing", "aux_lm",   # transfer: what pretraining gives a fine-tuned classifier
    "tasks", "few_shot",                   # multi-task conflict and balancing; learning in context
    "heads",                               # how attention heads form (the Demo's model)
)


class UnknownLesson(KeyError):
    def __str__(self) -> str:
        return f"no lesson named {self.args[0]!r}; the lessons are: {', '.join(names()) or '(none)'}"


def all_lessons() -> dict[str, Lesson]:
    """Every lesson by name, in the order they are taught."""
    out: dict[str, Lesson] = {}
    for mod in MODULES:
        lesson = importlib.import_module(f"{__name__}.{mod}").LESSON
        out[lesson.name] = lesson
    return out


def names() -> list[str]:
    return list(all_lessons())


def get(name: str) -> Lesson:
    lessons = all_lessons()
    if name not in lessons:
        raise UnknownLesson(name)
    return lessons[name]


__all__ = ["Finished", "Lesson", "LessonEvent", "LessonResult", "LessonStopped", "Mark", "Outcome", "Planned",
           "Point", "RunContext", "RunDone", "Started", "UnknownLesson", "all_lessons", "get", "names",
           "run_lesson"]
