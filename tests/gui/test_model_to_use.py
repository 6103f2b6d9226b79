"""Which model a page works on: the paused run's (held while used) or a loaded checkpoint."""

from __future__ import annotations

import threading
import types

from workbench.gui.bridge import LIVE_MODEL_NOT_PAUSED, model_to_use


class _Session:
    def __init__(self, lent):
        self.lent = lent
        self.held = threading.Event()

    def live_model(self):
        return self.lent

    def hold_live_model(self):
        session = self

        class _Hold:
            def __enter__(self):
                session.held.set()
                return session.lent

            def __exit__(self, *exc):
                session.held.clear()
        return _Hold()


def test_the_live_model_needs_a_paused_run_and_is_used_inside_its_hold():
    assert model_to_use(None, None, live=True, loading=False, none_message="x") == LIVE_MODEL_NOT_PAUSED
    assert model_to_use(_Session(None), None, live=True, loading=False, none_message="x") == LIVE_MODEL_NOT_PAUSED
    session = _Session(("model", "tok", 40))
    hold, lent = model_to_use(session, None, live=True, loading=False, none_message="x")
    assert lent == ("model", "tok", 40)
    with hold() as inside:
        assert inside == lent and session.held.is_set()
    assert not session.held.is_set()


def test_a_checkpoint_is_used_as_loaded_and_its_absence_is_explained():
    trained = types.SimpleNamespace(model="m", tokenizer="t", step=7)
    hold, lent = model_to_use(_Session(("live", "tok", 1)), trained, live=False, loading=False, none_message="x")
    assert lent == ("m", "t", 7)
    with hold() as inside:
        assert inside == lent
    assert model_to_use(None, None, live=False, loading=True, none_message="none") == "The checkpoint is still loading."
    assert model_to_use(None, None, live=False, loading=False, none_message="none") == "none"
