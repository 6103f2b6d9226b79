"""The Generate page's job: sample a continuation one token at a time."""

from __future__ import annotations


def stream_tokens(state, hold, prompt_ids: list[int], settings, attention: str = "all",
                  out: list | None = None) -> int:
    """Send each ``GeneratedToken`` through ``state.progress`` (and append it to ``out``) as soon as
    it is sampled; return how many came.

    ``hold()`` is a context manager yielding ``(model, tokenizer, step)`` or None; each token is
    computed inside it (for a paused run: ``session.hold_live_model``). None ends the job as
    cancelled (the run is not paused any more).

    ``out`` is what the page draws from: queued progress signals can still be on their way when
    the job's end is known, and a list appended by one thread and read by the other (atomic under
    the GIL) always holds every token in order."""
    from workbench.engine.errors import Cancelled
    from workbench.engine.generate import generate

    tokens = None
    n = 0
    while True:
        with hold() as lent:
            if lent is None:
                raise Cancelled("The model is not available any more.")
            model, tokenizer, _step = lent
            if tokens is None:
                tokens = generate(model, tokenizer, prompt_ids, settings, attention=attention,
                                  should_stop=state.should_stop)
            tok = next(tokens, None)
        if tok is None:
            return n
        n += 1
        if out is not None:
            out.append(tok)
        state.progress(tok)
