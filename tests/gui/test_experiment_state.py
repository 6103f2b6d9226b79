"""The experiment in the window belongs to the person (pytest-qt, offscreen, real clicks and keys):
the probe text and an automatic name follow the corpus, a file of one's own replaces the demo's
built-in corpus, the whole setup comes back at the next launch, nothing unsaved is replaced without
a question, a finished resumed run does not stay "to be continued", and a paused run answers Apply
and Snapshot now at once.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from PySide6 import QtCore, QtWidgets

from workbench.engine.config import ModelConfig, load_experiment, resolve_experiment
from workbench.gui.window.main_window import MainWindow

TINY_MODEL = ModelConfig(n_layer=1, n_head=2, n_embd=32, block_size=32)
LEFT = QtCore.Qt.MouseButton.LeftButton
B = QtWidgets.QMessageBox.StandardButton
DEMO_PROBE = resolve_experiment("demo_toy").training.probe_text


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture
def make_window(qtbot, qapp, tmp_path, monkeypatch, shared_cache):
    """Opens windows that share one settings file (a relaunch is a second window)."""
    monkeypatch.setenv("WORKBENCH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("WORKBENCH_CACHE_DIR", str(shared_cache))
    opened = []

    def make() -> MainWindow:
        settings = QtCore.QSettings(str(tmp_path / "settings.ini"), QtCore.QSettings.Format.IniFormat)
        w = MainWindow(settings=settings)
        w.tokenizer.auto_train = False
        w.show()
        qtbot.waitUntil(w.engine_ready, timeout=30000)
        opened.append(w)
        return w

    yield make
    for w in opened:
        w.confirm_close = False
        w.shutdown(60000)
        w.close()
        w.deleteLater()
    qtbot.wait(20)


@pytest.fixture
def window(make_window):
    return make_window()


def tiny(w: MainWindow, **training) -> None:
    w.model.set_config(TINY_MODEL)
    t = dict(max_steps=30, batch_size=8, warmup_steps=2, eval_every=10, attention_every=5, checkpoint_every=0)
    t.update(training)
    w.training.set_config(dataclasses.replace(w.training.config(), **t))


def type_into(qtbot, edit: QtWidgets.QLineEdit, text: str) -> None:
    edit.selectAll()
    qtbot.keyClick(edit, QtCore.Qt.Key.Key_Delete)
    qtbot.keyClicks(edit, text)


def answer_next_box(qtbot, button, seen: list) -> None:
    """Click ``button`` in the next message box that opens (a real click, from the event loop)."""
    tries = [0]

    def poll():
        box = QtWidgets.QApplication.activeModalWidget()
        if isinstance(box, QtWidgets.QMessageBox):
            seen.append(box.text())
            qtbot.mouseClick(box.button(button), LEFT)
        elif tries[0] < 200:
            tries[0] += 1
            QtCore.QTimer.singleShot(25, poll)

    QtCore.QTimer.singleShot(0, poll)


def wait_idle(qtbot, w: MainWindow, timeout: int = 60000) -> None:
    qtbot.waitUntil(lambda: not w.session.is_active(), timeout=timeout)


# -- the probe text and the name belong to the experiment's corpus --------------------------------


def test_the_probe_text_and_the_name_follow_the_corpus_unless_typed(window, qtbot):
    w = window
    assert w.attention.probe_text() == DEMO_PROBE and w.training.name() == "demo-toy"
    qtbot.mouseClick(w.corpus.builtin_buttons["reverse"], LEFT)  # another corpus: the toy probe goes
    assert w.corpus.sources() == ["builtin:reverse"]
    assert w.attention.probe_text() == "" and w.experiment().training.probe_text == ""
    assert w.training.name() == "reverse"
    qtbot.mouseClick(w.corpus.builtin_buttons["demo"], LEFT)  # back to the demo's corpus: its own again
    assert w.attention.probe_text() == DEMO_PROBE and w.training.name() == "demo-toy"

    # a typed probe is written for the corpus of its time: another corpus clears it, with an Undo
    type_into(qtbot, w.attention.probe_edit, "def f(x):")
    type_into(qtbot, w.training.name_edit, "my run")
    qtbot.mouseClick(w.corpus.builtin_buttons["reverse"], LEFT)
    assert w.attention.probe_text() == "" and w.training.name() == "my run"  # a typed name stays
    w.show_panel("attention")
    assert w.attention.probe_note.isVisible() and "def f(x):" in w.attention.probe_note_label.text()
    qtbot.mouseClick(w.attention.probe_undo_button, LEFT)  # the person keeps it for this corpus
    assert w.attention.probe_text() == "def f(x):" and not w.attention.probe_note.isVisible()
    assert w.experiment().training.probe_text == "def f(x):"
    qtbot.mouseClick(w.corpus.builtin_buttons["copy"], LEFT)  # written for reverse now: copy clears it
    assert w.attention.probe_text() == ""
    qtbot.mouseClick(w.corpus.builtin_buttons["reverse"], LEFT)  # back to its corpus: it comes back
    assert w.attention.probe_text() == "def f(x):" and not w.attention.probe_note.isVisible()

    answer_next_box(qtbot, B.Discard, [])
    assert w.open_experiment("icl_keyvalue")  # another experiment brings its own probe text
    assert w.attention.probe_text() == resolve_experiment("icl_keyvalue").training.probe_text


def test_a_probe_applied_in_the_demo_does_not_carry_into_a_run_on_ones_own_corpus(make_window, qtbot, small_text,
                                                                                   tmp_path):
    w = make_window()
    bar = w.toolbar.widgetForAction
    qtbot.mouseClick(bar(w.demo_action), LEFT)
    qtbot.waitUntil(lambda: w.session.state == "running", timeout=60000)
    qtbot.mouseClick(bar(w.pause_action), LEFT)
    qtbot.waitUntil(lambda: w.session.state == "paused", timeout=20000)
    w.show_panel("attention")
    a = w.attention
    type_into(qtbot, a.probe_edit, "abc>cba hello (())")
    qtbot.mouseClick(a.apply_probe, LEFT)
    demo_run = Path(w.session.run_dir)
    qtbot.waitUntil(lambda: load_experiment(demo_run / "config.toml").training.probe_text == "abc>cba hello (())",
                    timeout=20000)
    w.stop()
    wait_idle(qtbot, w)

    w.show_panel("corpus")
    w.corpus.add_paths([str(small_text)])  # replaces the built-in toy corpus
    assert w.training.name() == "small"
    assert a.probe_text() == "" and w.experiment().training.probe_text == ""
    assert "abc>cba hello (())" in a.probe_note_label.text() and "cleared" in w.statusBar().currentMessage()
    tiny(w, max_steps=10, eval_every=0, attention_every=5)
    qtbot.mouseClick(bar(w.start_action), LEFT)
    wait_idle(qtbot, w)
    run = Path(w.session.run_dir)
    assert run != demo_run and load_experiment(run / "config.toml").training.probe_text == ""
    newest = a.entries[-1]
    newest.load()
    tokens = "".join(newest.tokens)
    assert "<|unk|>" not in tokens and "abc>cba" not in tokens  # the start of its own validation text
    w.close()
    assert load_experiment(tmp_path / "last.toml").training.probe_text == ""


# -- a file of one's own replaces the demo's built-in corpus --------------------------------------


def test_a_file_of_ones_own_replaces_the_built_in_corpus_with_a_way_back(window, qtbot, small_text):
    w = window
    w.show_panel("corpus")
    assert w.corpus.sources() == ["builtin:demo"]
    w.corpus.add_paths([str(small_text)])  # what "Add files…" and a drop call
    assert w.corpus.sources() == [str(small_text)], "no silent mix of the demo corpus and the person's"
    assert w.experiment().corpus.paths == (str(small_text),)
    assert w.training.name() == "small" and w.attention.probe_text() == ""
    assert w.corpus.undo_bar.isVisible() and "demo" in w.corpus.undo_label.text()
    qtbot.mouseClick(w.corpus.undo_button, LEFT)  # "Keep demo too"
    assert w.corpus.sources() == ["builtin:demo", str(small_text)] and not w.corpus.undo_bar.isVisible()
    assert w.training.name() == "demo-mix"

    # removing a row (the Delete key) can be taken back
    w.corpus.table.selectRow(0)
    w.corpus.table.setFocus()
    qtbot.keyClick(w.corpus.table, QtCore.Qt.Key.Key_Delete)
    assert w.corpus.sources() == [str(small_text)]
    assert w.corpus.undo_bar.isVisible() and "demo" in w.corpus.undo_label.text()
    qtbot.mouseClick(w.corpus.undo_button, LEFT)
    assert w.corpus.sources() == ["builtin:demo", str(small_text)]

    # a built-in button replaces the person's files: that too can be taken back
    qtbot.mouseClick(w.corpus.builtin_buttons["copy"], LEFT)
    assert w.corpus.sources() == ["builtin:copy"] and "small.txt" in w.corpus.undo_label.text()
    qtbot.mouseClick(w.corpus.undo_button, LEFT)
    assert w.corpus.sources() == ["builtin:demo", str(small_text)]


def test_a_typed_name_stays_when_a_file_replaces_the_built_in_corpus(window, qtbot, small_text):
    w = window
    type_into(qtbot, w.training.name_edit, "poems")
    w.corpus.add_paths([str(small_text)])
    assert w.corpus.sources() == [str(small_text)] and w.training.name() == "poems"


def test_a_removed_task_can_be_taken_back(window, qtbot):
    from workbench.engine.config import TaskConfig

    w = window
    w.show_panel("tasks")
    w.tasks.add_task(TaskConfig(kind="masked_lm", weight=0.5, mask_prob=0.2))
    before = w.tasks.to_config()
    first = w.tasks.rows()[0]
    qtbot.waitUntil(lambda: first.remove_button.height() > 0, timeout=5000)  # laid out
    qtbot.mouseClick(first.remove_button, LEFT)
    assert [t.kind for t in w.tasks.to_config()[0]] == ["masked_lm"]
    assert w.tasks.undo_button.isVisible() and "lm" in w.tasks.undo_label.text()
    qtbot.mouseClick(w.tasks.undo_button, LEFT)
    assert w.tasks.to_config() == before and not w.tasks.undo_button.isVisible()


# -- the setup comes back at the next launch --------------------------------------------------------


def test_the_whole_setup_comes_back_at_the_next_launch(make_window, qtbot, small_text, tmp_path):
    first = make_window()
    assert first.experiment() == resolve_experiment("demo_toy")  # the first launch: the demo
    first.corpus.add_paths([str(small_text)])
    tiny(first, max_steps=77)
    type_into(qtbot, first.attention.probe_edit, "the cat")
    type_into(qtbot, first.training.name_edit, "cats")
    setup = first.experiment()
    first.close()
    assert not first.isVisible() and (tmp_path / "last.toml").is_file()

    again = make_window()
    assert again.experiment() == setup  # unsaved edits included
    assert again.training.config().max_steps == 77 and again.attention.probe_text() == "the cat"
    assert again.is_modified()  # still saved nowhere: Demo or Open will ask
    path = tmp_path / "cats.toml"
    assert again.save_experiment_to(str(path))
    again.close()

    third = make_window()  # a saved setup comes back as that file, unmodified
    assert third.experiment() == load_experiment(path) and not third.is_modified()
    assert "cats.toml" in third.windowTitle()


def test_an_unreadable_last_setup_is_kept_and_the_demo_opens(make_window, tmp_path):
    (tmp_path / "last.toml").write_text("[model]\nn_layer = -3\n", encoding="utf-8")
    w = make_window()
    assert w.experiment() == resolve_experiment("demo_toy")
    kept = tmp_path / "last-unreadable.toml"
    assert kept.read_text(encoding="utf-8").startswith("[model]")
    assert "n_layer" in w.statusBar().currentMessage() and str(kept) in w.statusBar().currentMessage()


# -- nothing unsaved is replaced without a question ------------------------------------------------


def test_demo_asks_before_replacing_an_unsaved_setup(window, qtbot, tmp_path):
    w = window
    demo_button = w.toolbar.widgetForAction(w.demo_action)
    tiny(w, max_steps=55)
    type_into(qtbot, w.training.name_edit, "mine")
    mine = w.experiment()

    seen: list = []
    answer_next_box(qtbot, B.Cancel, seen)
    qtbot.mouseClick(demo_button, LEFT)
    assert seen and "not saved" in seen[0]
    assert w.experiment() == mine and not w.session.is_active()  # Cancel: nothing changed

    # Save: the setup goes to its file first (it has one), then the demo runs
    assert w.save_experiment_to(str(tmp_path / "mine.toml"))
    tiny(w, max_steps=66)
    answer_next_box(qtbot, B.Save, seen)
    qtbot.mouseClick(demo_button, LEFT)
    assert len(seen) == 2 and w.session.is_active() and w.training.name() == "demo-toy"
    assert load_experiment(tmp_path / "mine.toml").training.max_steps == 66
    w.stop()
    wait_idle(qtbot, w)

    # the demo itself is no unsaved work: opening a preset over it asks nothing
    w.open_experiment("icl_keyvalue")
    assert len(seen) == 2 and w.training.name() == resolve_experiment("icl_keyvalue").name
    # Discard: the preset replaces the edits
    tiny(w, max_steps=12)
    answer_next_box(qtbot, B.Discard, seen)
    w.presets_menu.actions()[0].trigger()
    assert len(seen) == 3 and w.experiment() == resolve_experiment("demo_toy")


def test_demo_asks_after_a_relaunch_when_the_setup_is_only_in_an_old_run_folder(make_window, qtbot):
    first = make_window()  # an earlier session trained a run
    tiny(first, max_steps=4, eval_every=0, attention_every=0)
    assert first.start()
    wait_idle(qtbot, first)
    run_dir = first.session.run_dir
    first.close()

    second = make_window()
    seen: list = []
    answer_next_box(qtbot, B.Discard, seen)  # the reopened setup is not saved: asked, then discarded
    second.training.set_resume(run_dir)  # what "Resume a run…" does with the folder chosen
    assert load_experiment(Path(run_dir) / "config.toml") == second.experiment()
    assert not second.is_modified()  # the run the person just picked is where they know it
    second.show_panel("training")
    qtbot.mouseClick(second.training.resume_clear, LEFT)  # New run
    mine = second.experiment()
    second.close()

    third = make_window()
    assert third.experiment() == mine and third.is_modified()
    before = len(seen)
    answer_next_box(qtbot, B.Cancel, seen)
    qtbot.mouseClick(third.toolbar.widgetForAction(third.demo_action), LEFT)
    assert len(seen) == before + 1 and "not saved" in seen[-1]
    assert third.experiment() == mine and not third.session.is_active()


def test_the_window_title_names_the_experiment_and_the_app_once(window, tmp_path):
    w = window
    assert w.windowTitle() == "demo-toy — GPT Workbench"
    assert w.save_experiment_to(str(tmp_path / "mine.toml"))
    assert w.windowTitle() == "demo-toy — mine.toml — GPT Workbench"
    # the app's display name (app.py) last: X11 and Wayland append it to a title not ending with it
    assert w.windowTitle().count("GPT Workbench") == 1


def test_a_new_run_follows_live_again_after_the_timeline_was_scrubbed(window, qtbot):
    w = window
    start_button = w.toolbar.widgetForAction(w.start_action)
    tiny(w, max_steps=20, eval_every=0, attention_every=5)
    qtbot.mouseClick(start_button, LEFT)
    wait_idle(qtbot, w)
    w.show_panel("attention")
    a = w.attention
    assert len(a.entries) >= 3
    a.timeline.setFocus()
    qtbot.keyClick(a.timeline, QtCore.Qt.Key.Key_Home)  # back to the first snapshot
    assert not a.follow_check.isChecked() and a.current() is a.entries[0]
    qtbot.mouseClick(start_button, LEFT)  # a new run: watched live again
    assert a.follow_check.isChecked()
    wait_idle(qtbot, w)
    assert a.current() is a.entries[-1] and a.current().step == 20


def test_the_presentation_sidebar_width_is_not_kept_for_the_next_launch(make_window, qtbot):
    first = make_window()
    first.resize(1024, 768)
    first.splitter.setSizes([260, 764])  # the person's own width in normal mode
    qtbot.waitUntil(lambda: first.splitter.sizes()[0] == 260, timeout=5000)
    qtbot.keyClick(first, QtCore.Qt.Key.Key_F11)
    assert first.presentation and first.splitter.sizes()[0] > 280
    first.close()  # closed in presentation mode

    again = make_window()
    assert not again.presentation and again.splitter.sizes()[0] == 260
    qtbot.keyClick(again, QtCore.Qt.Key.Key_F11)
    qtbot.keyClick(again, QtCore.Qt.Key.Key_F11)  # and back: the normal width again
    assert not again.presentation and again.splitter.sizes()[0] == 260


# -- a finished resumed run is not "to be continued" -----------------------------------------------


def test_a_resumed_run_that_finished_is_not_resumed_again(window, qtbot):
    w = window
    tiny(w, max_steps=10, eval_every=0, attention_every=0)
    assert w.start()
    wait_idle(qtbot, w)
    run_dir = w.session.run_dir
    w.training.set_resume(run_dir)
    w.training.set_config(dataclasses.replace(w.training.config(), max_steps=15))
    assert w.start()
    wait_idle(qtbot, w)
    assert "done: 15 steps" in w.training.progress.format()
    assert w.training.resume_dir() == "" and w.training.resume_label.text() == "a new run"

    # continuing a run that trained its steps: said in words, nothing starts
    w.training.set_resume(run_dir)
    assert not w.start()
    assert "already trained 15 steps" in w.training.error.text() and "raise Steps" in w.training.error.text()
    # a changed setting: the run refuses in words that name the setting and the way out
    w.training.set_config(dataclasses.replace(w.training.config(), max_steps=20, batch_size=16))
    boxes = []
    answer_next_box(qtbot, B.Ok, boxes)
    assert w.start()
    wait_idle(qtbot, w)
    message = w.training.error.text()
    assert "batch_size (sequences per micro-batch): 8 in the run, 16 now" in message and "New run" in message
    assert boxes and "8 in the run, 16 now" in boxes[0]
    # New run clears the red error and the resume
    w.show_panel("training")
    qtbot.mouseClick(w.training.resume_clear, LEFT)
    assert not w.training.error.isVisible() and w.training.resume_dir() == ""
    assert w.start()  # a new run with the changed settings
    wait_idle(qtbot, w)
    assert w.session.run_dir != run_dir and "done: 20 steps" in w.training.progress.format()


# -- a paused run answers Apply and Snapshot now at once -------------------------------------------


def test_a_paused_run_records_a_new_probe_text_at_once(window, qtbot):
    w = window
    tiny(w, max_steps=5000, attention_every=1000, eval_every=1000)
    assert w.start()
    qtbot.waitUntil(lambda: w.session.state == "running" and bool(w.attention.entries), timeout=60000)
    w.pause()
    qtbot.waitUntil(lambda: w.session.state == "paused", timeout=20000)
    step = w.session.live_model()[2]
    w.show_panel("attention")
    a = w.attention
    a.follow_check.setChecked(False)  # asked for: shown even when not following the run

    type_into(qtbot, a.probe_edit, "abc>abc")
    qtbot.mouseClick(a.apply_probe, LEFT)
    qtbot.waitUntil(lambda: a.current() is not None and "".join(a.current().tokens) == "abc>abc", timeout=20000)
    assert w.session.state == "paused" and a.current().step == step  # without resuming
    assert a.heatmap.matrix().shape == (7, 7)
    assert w.session.live_model() is not None  # the paused model is still lent to Generate
    run_dir = Path(w.session.run_dir)
    assert load_experiment(run_dir / "config.toml").training.probe_text == "abc>abc"

    qtbot.mouseClick(a.snapshot_button, LEFT)
    qtbot.waitUntil(lambda: "recorded at step" in w.statusBar().currentMessage(), timeout=20000)
    assert w.session.state == "paused"

    w.stop()
    wait_idle(qtbot, w)
    meta = json.loads(sorted((run_dir / "checkpoints").glob("step_*.json"))[-1].read_text())
    assert meta["experiment"]["training"]["probe_text"] == "abc>abc"  # a resume keeps it


def test_the_live_gate_keeps_the_model_lent_through_a_pause_and_ends_the_loan_on_resume():
    """Events reported during a pause (a snapshot asked for) keep the paused model lent; Resumed
    ends the loan even when the run was paused again at once, and waits for the borrower."""
    import threading

    import numpy as np

    from workbench.engine import events as ev
    from workbench.engine.control import RunControl
    from workbench.engine.events import ListReporter
    from workbench.gui.bridge import _LiveGate

    control = RunControl()
    gate = _LiveGate(control)
    out = ListReporter()
    rep = gate.wrap(out)
    control.pause()
    rep.report(ev.Paused(3))
    assert gate.blocked.is_set()
    rep.report(ev.AttentionSnapshot(3, ["a"], [1], np.zeros((1, 1, 1, 1), np.float32)))
    assert gate.blocked.is_set()  # still lent: the snapshot was taken inside the pause

    # a borrower holds the model; the run is resumed and paused again before it reports Resumed
    borrowed, reported = threading.Event(), threading.Event()

    def worker():
        borrowed.wait(10)
        rep.report(ev.Resumed(3))
        reported.set()

    t = threading.Thread(target=worker)
    t.start()
    with gate.lock:
        control.resume()
        control.pause()
        borrowed.set()
        assert not reported.wait(0.3)  # Resumed waits for the borrower's token
    assert reported.wait(10) and not gate.blocked.is_set()
    t.join(10)
    assert [type(e).__name__ for e in out.events] == ["Paused", "AttentionSnapshot", "Resumed"]


def test_window_settings_live_in_workbench_config_dir_when_it_is_set(monkeypatch, tmp_path):
    """WORKBENCH_CONFIG_DIR keeps everything the workbench keeps, the window's own settings too:
    a session with its own folders must not open on another session's page or recent files."""
    from workbench.gui.window.main_window import window_settings

    monkeypatch.setenv("WORKBENCH_CONFIG_DIR", str(tmp_path / "cfg"))
    s = window_settings()
    s.setValue("page", 3)
    s.sync()
    assert s.format() == QtCore.QSettings.Format.IniFormat
    assert Path(s.fileName()) == tmp_path / "cfg" / "settings.ini" and Path(s.fileName()).is_file()
    monkeypatch.delenv("WORKBENCH_CONFIG_DIR")
    assert not window_settings().fileName().startswith(str(tmp_path))
