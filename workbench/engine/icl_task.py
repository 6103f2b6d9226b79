"""The settings of an in-context task and the one function that turns them into the engine's task.

``workbench eval`` and the Evaluate page both describe a task with an ``ICLTaskSpec`` (the
built-in key -> value task, or a labelled CSV / TSV / JSONL file with its columns, verbalizer,
description, prompt template, number of test examples and seed) and build it with
``build_icl_task``, so the same settings give the same prompts in both.

This module imports no torch: the window makes specs on its GUI thread (and compares them) while
torch loads in the background; ``build_icl_task`` imports ``evaluate`` when it runs.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ConfigError

BUILTIN = "builtin:icl"
BUILTIN_KEYS = 4


def builtin_data(n_keys: int = BUILTIN_KEYS) -> str:
    """The ``--data`` name of the built-in key -> value task with ``n_keys`` keys."""
    return BUILTIN if n_keys == BUILTIN_KEYS else f"{BUILTIN}:{n_keys}"


@dataclass(frozen=True)
class ICLTaskSpec:
    """Everything that decides an in-context task; plain data (hashable, comparable)."""

    data: str = BUILTIN                     # builtin:icl, builtin:icl:N (N keys) or a labelled file
    demos: str = ""                         # file of demonstrations ("": hold out a fifth of data)
    text: str = "text"
    text_pair: str = ""
    label: str = "label"
    choices: tuple[str, ...] = ()           # multiple choice: the options' columns (label unused)
    answer: str = ""                        # multiple choice: the column naming the right option
    answer_base: int = 0
    labels: tuple[str, ...] = ()            # the candidate labels in order (): every label in the file
    verbalizer: tuple[tuple[str, str], ...] = ()   # (label, word scored for it)
    description: str = ""
    input: str | None = None                # None: the default template's part
    answer_template: str | None = None
    separator: str | None = None
    limit: int | None = None                # test examples, the first N (None or 0: all; built-in: 200)
    seed: int = 0

    @property
    def builtin(self) -> bool:
        return self.data.startswith(BUILTIN)

    def n_keys(self) -> int:
        """The built-in task's number of keys (``builtin:icl:N``)."""
        keys = self.data.removeprefix(BUILTIN).lstrip(":")
        if keys and not keys.isdigit():
            raise ConfigError(f"--data {self.data}: use builtin:icl or builtin:icl:N with N keys, e.g. builtin:icl:6.")
        return int(keys or BUILTIN_KEYS)


def build_icl_task(spec: ICLTaskSpec):
    """The engine's ``InContextTask`` for ``spec`` (reads the whole file: every error shows now)."""
    from .evaluate import PromptTemplate, builtin_icl_task, default_template, labelled_icl_task
    from .labelled import Columns

    if spec.builtin:
        return builtin_icl_task(n=spec.limit or 200, seed=spec.seed, n_keys=spec.n_keys())
    base = default_template(pair=bool(spec.text_pair), description=spec.description)
    template = PromptTemplate(
        input=base.input if spec.input is None else spec.input,
        answer=base.answer if spec.answer_template is None else spec.answer_template,
        description=base.description,
        separator=base.separator if spec.separator is None else spec.separator)
    cols = Columns(text=spec.text, text_pair=spec.text_pair, label="" if spec.choices else spec.label,
                   choices=spec.choices, answer=spec.answer, answer_base=spec.answer_base)
    return labelled_icl_task(spec.data, cols, labels=list(spec.labels) or None, verbalizer=dict(spec.verbalizer),
                             template=template, demos=spec.demos or None, limit=spec.limit or None, seed=spec.seed)
