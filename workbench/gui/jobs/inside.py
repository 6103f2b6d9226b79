"""The Inside page's jobs: measure every head's effect and the logit lens on a probe text, knock
heads out, read one token's attention across a run's snapshots (all in ``engine.interpret``).

``hold()`` is a context manager yielding ``(model, tokenizer, step)`` or None (a paused run's
model that is not lent any more): the forward passes run inside it."""

from __future__ import annotations


def measure(state, hold, text: str):
    """Every head's effect and the logit lens on ``text``: a dict the page shows."""
    from workbench.engine import interpret

    with hold() as lent:
        if lent is None:
            raise RuntimeError("the run is not paused any more")
        model, tok, step = lent
        ids = tok.encode(text)[:model.config.block_size]
        table = interpret.ablation_table(model, [ids])
        state.check()
        lens = interpret.logit_lens(model, tok, ids)
        base = interpret.knock_out(model, tok, ids, [])
    return {"ids": ids, "step": step, "table": table, "lens": lens, "base": base}


def knock_out(state, hold, ids: list[int], heads: list[tuple[int, int]]):
    from workbench.engine import interpret

    with hold() as lent:
        if lent is None:
            raise RuntimeError("the run is not paused any more")
        model, tok, _ = lent
        return interpret.knock_out(model, tok, ids, heads)


def history(state, run_dir: str, query: int):
    from workbench.engine import interpret

    return interpret.attention_history(run_dir, query)
