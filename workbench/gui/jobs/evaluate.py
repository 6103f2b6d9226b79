"""The Evaluate page's background work: load a model, read the task, evaluate, inspect one prompt,
read a fine-tuned reference. Each is ``fn(state, *args)``, started by the page through a JobSlot.

The task is built by ``engine.icl_task.build_icl_task`` from an ``ICLTaskSpec``, as
``workbench eval`` builds it; the numbers come from ``engine.evaluate``.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.engine.errors import ConfigError
from workbench.engine.icl_task import ICLTaskSpec, build_icl_task


@dataclass(frozen=True)
class EvalSpec:
    """An evaluation's settings beside its task; plain data, made on the GUI thread."""

    task: ICLTaskSpec
    ks: tuple[int, ...] = (0, 1, 2, 4, 8)
    draws: int = 5
    length_norm: bool = False
    attention: int = 16                     # prompts for the mean attention per demonstration


def _task(spec: ICLTaskSpec):
    """The engine's task; what the page's form lacks is named as the page names it."""
    if not spec.data:
        raise ConfigError("Choose a labelled data file (.csv, .tsv or .jsonl), or the built-in key → value task.")
    if not spec.builtin and (not spec.text or not spec.label):
        raise ConfigError("Choose the text column and the label column of the data file.")
    return build_icl_task(spec)


def check_task(state, spec: ICLTaskSpec) -> dict:
    """Build the task (reads the whole file, so every error shows now) and describe it."""
    from workbench.engine.evaluate import default_template

    task = _task(spec)
    state.check()
    golds = [task.gold(ex) for ex in task.test]
    return {"task": task, "labels": list(task.labels), "counts": [golds.count(i) for i in range(len(task.labels))],
            "n_test": len(task.test), "n_pool": len(task.pool), "chance": task.chance(), "majority": task.majority(),
            "default": dataclasses.asdict(default_template(pair=bool(spec.text_pair)))}


def run_evaluation(state, trained, spec: EvalSpec) -> dict:
    """``evaluate_in_context`` with progress ((done, total) prompts) and cancellation."""
    import torch

    from workbench.engine.evaluate import evaluate_in_context

    torch.set_num_threads(max(1, (os.cpu_count() or 2) - 1))  # leave a core to the window
    task = _task(spec.task)
    state.check()
    result = evaluate_in_context(trained.model, trained.tokenizer, task, spec.ks, spec.draws,
                                 length_norm=spec.length_norm, attention_examples=spec.attention,
                                 progress=lambda done, total: state.progress((done, total)),
                                 should_stop=state.should_stop)
    return {"result": result, "task": task}


@dataclass
class Inspection:
    index: int
    k: int
    draw: int
    prompt: Any                      # engine Prompt
    demo_answers: list[str]          # the answer text that ends each demonstration kept, in order
    attention: Any = None            # engine DemoAttention (None without a model)
    scores: list[float] | None = None


def inspect_prompt(state, trained, task, index: int, k: int, draw: int, length_norm: bool) -> Inspection:
    """The exact prompt of one example, how the model scores its candidates and where the query's
    attention goes."""
    from workbench.engine.evaluate import demonstration_attention, score_prompts

    prompt = task.prompt(index, k, draw, tokenizer=trained.tokenizer, block_size=trained.model.config.block_size)
    demos = task.demonstrations(k, draw)
    kept = demos[len(demos) - prompt.demos_used:]
    answers = [task.template.fill_answer(task.answers(d)[task.gold(d)]) for d in kept]
    state.check()
    attention = demonstration_attention(trained.model, prompt)
    scores = score_prompts(trained.model, [prompt], length_norm=length_norm)[0]
    return Inspection(index, k, draw, prompt, answers, attention, scores)


def read_reference(state, run: str, data: str, which: str):
    """The fine-tuned accuracy of the matching task in a run's metrics.jsonl."""
    from workbench.engine.runs import task_score

    return task_score(Path(run), metric="accuracy", which=which, data=data or None)
