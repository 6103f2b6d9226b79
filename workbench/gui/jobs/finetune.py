"""The Fine-tune page's background work: the runs it can start from, and a check of its labelled data
(read as the run will read it, and built into the task the inspector shows)."""

from __future__ import annotations

from pathlib import Path

from workbench.engine.config import TaskConfig


def list_checkpoints(_state, runs_dir) -> list:
    """Runs under ``runs_dir`` that have a checkpoint to start from (engine.runs summaries)."""
    from workbench.engine.runs import list_runs

    out = []
    for r in list_runs(Path(runs_dir)):
        ck = Path(r.path) / "checkpoints"
        if ck.is_dir() and any(ck.glob("*.json")):
            out.append(r)
    return out


def by_score(cfg: TaskConfig) -> bool:
    """Does the labelled task predict a number (as ``LabelledTask`` decides)?"""
    return cfg.kind == "regression" or (cfg.kind == "similarity" and bool(cfg.score) and not cfg.label)


def check_labelled(state, cfg: TaskConfig, init: str) -> dict:
    """Background job: read the labelled data as the run will (every row, so every error the run
    would hit is found now) and, when a checkpoint is given, build the task with its tokenizer for
    the inspector. Knows nothing of Qt."""
    from workbench.engine.labelled import Columns, read_labelled, split_examples

    score = by_score(cfg)
    cols = Columns(text=cfg.text, text_pair=cfg.text_pair, label="" if score else cfg.label,
                   score=cfg.score if score else "", choices=cfg.choices, answer=cfg.answer,
                   answer_base=cfg.answer_base)
    train = read_labelled(cfg.train, cols, list(cfg.labels) or None)
    state.check()
    if cfg.val:
        n_train = len(train.examples)
        n_val = len(read_labelled(cfg.val, cols, train.labels or None).examples)
    else:
        tr, va = split_examples(train, cfg.val_fraction or 0.1, seed=0)
        n_train, n_val = len(tr.examples), len(va.examples)
    if cfg.max_examples:
        n_train = min(n_train, cfg.max_examples)
    out = {"n_train": n_train, "n_val": n_val, "labels": list(train.labels), "task": None, "tokenizer": None,
           "block_size": 0, "regression": score}
    if init:
        state.check()
        from workbench.engine.config import load_experiment
        from workbench.engine.loading import checkpoint_of
        from workbench.engine.tasks import TaskContext, build_task
        from workbench.engine.tokenizer import Tokenizer

        run = checkpoint_of(init).parent.parent
        tokenizer = Tokenizer.load(run / "tokenizer.json")
        model = load_experiment(run / "config.toml").model
        out["task"] = build_task(cfg, TaskContext(tokenizer, None, model.n_embd, model.block_size))
        out["tokenizer"] = tokenizer
        out["block_size"] = model.block_size
    return out
