"""The Demo in the window: it trains the demo preset until a copy head forms and the Attention page
shows that head by itself, with the reason; a head the person picks stays picked."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.engine import events as ev
from workbench.engine.patterns import CLEAR, expected_links, pattern_scores
from workbench.engine.config import resolve_experiment


PROBE = "cfhka>cfhka\nbjdpg>bjdpg\n"


@pytest.fixture
def window(fresh_window):
    return fresh_window


def snapshot(step: int, copy_at: tuple[int, int] | None, shape=(2, 4)) -> ev.AttentionSnapshot:
    """Uniform causal attention on PROBE, with one head copying when ``copy_at`` is given."""
    T = len(PROBE)
    att = np.tril(np.ones((T, T), np.float32))
    att = np.broadcast_to(att / att.sum(-1, keepdims=True), (*shape, T, T)).copy()
    if copy_at is not None:
        for q, k in expected_links(PROBE)["copy"]:
            att[copy_at][q] = 0.0
            att[copy_at][q, k] = 1.0
    return ev.AttentionSnapshot(step=step, tokens=list(PROBE), ids=list(range(T)), attention=att)


def test_the_attention_page_shows_the_telling_head_until_the_person_picks_one(window):
    page = window.attention
    page.add_snapshot(snapshot(0, None))
    assert page.grid.selected() == (0, 0) and "No head does a task" in page.head_note.text()
    page.add_snapshot(snapshot(50, (1, 2)))
    assert page.grid.selected() == (1, 2)
    np.testing.assert_allclose(page.heatmap.matrix(), page.current().attention[1, 2])
    assert "Chosen for you" in page.head_note.text() and "layer 1 head 2: copy score 1.00" in page.head_note.text()
    page.grid.headSelected.emit(0, 3)  # the person's own pick
    page.add_snapshot(snapshot(100, (1, 1)))
    assert page.grid.selected() == (0, 3)
    assert "most telling head is layer 1 head 1: copy score 1.00" in page.head_note.text()
    page.reset()  # a new run: chosen for the person again
    page.add_snapshot(snapshot(0, (0, 1)))
    assert page.grid.selected() == (0, 1)


def test_the_demo_trains_until_the_attention_page_shows_a_copy_head(window, qtbot):
    w = window
    demo = resolve_experiment("demo_toy")
    assert demo.corpus.window_start == "line" and demo.training.compile == "off"
    assert w.run_demo() and w.current_panel() == "curves"
    # the demo's second act: the window moves to the Attention page once a head copies
    qtbot.waitUntil(lambda: w.current_panel() == "attention", timeout=300_000)
    w.stop()
    qtbot.waitUntil(lambda: not w.session.is_active(), timeout=60_000)
    page = w.attention
    entry = page.current()
    layer, head = page.grid.selected()
    score = pattern_scores(entry.attention, expected_links("".join(entry.tokens))).scores["copy"][layer, head]
    assert score >= CLEAR and page.telling.task == "copy" and (page.telling.layer, page.telling.head) == (layer, head)
    assert f"copy score {score:.2f}" in page.head_note.text() and "Chosen for you" in page.head_note.text()
    losses = w.curves.loss_plot.series_data()["train/lm"]["y"]
    assert np.mean(losses[-10:]) < 0.75 * np.mean(losses[:10])  # the loss fell with it
