"""The setup in the forms and where it came from (a file, a preset, a run folder), and the rules
that keep what a person made: replacing a setup that is saved nowhere asks Save / Discard / Cancel
first (a run folder reopened at launch is no save of theirs). The probe text belongs to the corpus
it was written for: picking another corpus clears it, with a note and an Undo. An automatic name
follows the corpus unless the person typed one."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from PySide6 import QtWidgets

from workbench.engine import control as control_mod
from workbench.engine.config import ConfigError, Experiment, from_dict, preset_names

from .. import theme
from ..panels.finetune.page import experiment_sections, load_experiment_into


def corpus_name(sources) -> str:
    """A run name for a corpus: "shakespeare", "notes" (notes.txt), "notes-mix" for several."""
    first = str(sources[0]) if sources else ""
    stem = first.split(":", 1)[1] if first.startswith("builtin:") else (Path(first).stem or Path(first).name)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", stem).strip("-")[:40] or "experiment"
    return f"{name}-mix" if len(sources) > 1 else name


class ExperimentState:
    """Methods of MainWindow that fill the forms from an experiment and read them back. The state
    they keep (``_base_exp``, ``_probe_*``, ``_name_auto``, ...) is set up in MainWindow.__init__."""

    def experiment(self) -> Experiment:
        """Every form as one validated, frozen Experiment (raises ConfigError)."""
        return from_dict(self._forms().to_dict(), source="the forms")

    def _forms(self) -> Experiment:
        """Every form as one Experiment, not yet validated."""
        training = dataclasses.replace(self.training.config(), probe_text=self.attention.probe_text())
        return self._base_exp.replace(name=self.training.name(), corpus=self.corpus.config(),
                                      tokenizer=self.tokenizer.config(), model=self.model.config(), training=training,
                                      logging=self.training.logging_config(),
                                      **experiment_sections(self.tasks, self.finetune))

    def set_experiment(self, exp: Experiment, *, base_label: str | None = None, path: str | None = None,
                       base: Experiment | None = None, run: bool = False) -> None:
        """Fill every form from ``exp``. ``base``: what it was made from, when that is not ``exp``
        itself (a reopened setup with unsaved edits): the file or preset that ``base_label`` names.
        ``run``: the base is a run folder's config.toml (a record of the run, not the person's save)."""
        self._base_exp = base or exp
        self._base_is_run = run
        self._loading = True
        try:
            self.training.set_name(exp.name)
            self.corpus.set_config(exp.corpus)
            self.tokenizer.set_config(exp.tokenizer)
            self.model.set_config(exp.model)
            self.training.set_config(exp.training)
            self.training.set_logging_config(exp.logging)
            load_experiment_into(exp, self.tasks, self.finetune)
            self.attention.set_probe_text(exp.training.probe_text)
        finally:
            self._loading = False
        self._base_label = base_label or path or self._base_label
        self._experiment_path = path
        self._probe_auto = self._base_exp.training.probe_text
        self._probe_corpus = tuple(exp.corpus.paths)
        self._probe_undo = ""
        self.attention.show_probe_note(None)
        from_preset = path is None and self._base_label in preset_names()
        self._name_auto = self._base_exp.name if from_preset else None
        self._corpus_paths = tuple(self.corpus.config().paths)
        self._update_title()
        self._corpus_changed()
        self._training_changed()

    def is_modified(self) -> bool:
        """True when the forms hold a setup that is saved nowhere: it differs from the file or
        preset it came from and from every run this window trained or opened (the person knows
        those runs). A run folder the setup came from in an earlier session is no save: the
        person may not know it, and the Runs page can delete it."""
        try:
            exp = self.experiment()
        except ConfigError:
            return True
        if exp in self._trained:
            return False
        return self._base_is_run or exp != self._base_exp

    def _confirm_replace(self, what: str) -> bool:
        """Before something replaces the forms: a setup saved nowhere is not lost without a
        question (Save / Discard / Cancel). True: go ahead."""
        if not self.is_modified():
            return True
        B = QtWidgets.QMessageBox.StandardButton
        box = QtWidgets.QMessageBox(self)
        box.setIcon(QtWidgets.QMessageBox.Icon.Question)
        box.setWindowTitle("Unsaved changes")
        box.setText(f"The current setup has changes that are not saved. Save them before {what}?")
        box.setInformativeText("Discard drops them; Cancel keeps everything as it is.")
        box.setStandardButtons(B.Save | B.Discard | B.Cancel)
        box.setDefaultButton(B.Save)
        self.last_message_box = box
        box.exec()
        clicked = box.standardButton(box.clickedButton()) if box.clickedButton() else B.Cancel
        if clicked == B.Save:
            return self.save_experiment()
        return clicked == B.Discard

    def _update_title(self) -> None:
        """The experiment first, the app name last, once: the X11/Wayland platforms append the
        application display name to a title that does not already end with it."""
        where = f" — {Path(self._experiment_path).name}" if self._experiment_path else ""
        self.setWindowTitle(f"{self.training.name()}{where} — {theme.APPLICATION}")

    def _corpus_changed(self) -> None:
        cfg = self.corpus.config()
        self.tokenizer.set_corpus(cfg, ok=not self.corpus.has_errors())
        sample = self.corpus.preview_sample()
        if sample and self.tokenizer.sample_edit.toPlainText() == "":
            self.tokenizer.set_sample_text(sample[:300])
        if not self._loading and tuple(cfg.paths) != self._corpus_paths:
            self._corpus_paths = tuple(cfg.paths)
            self._follow_corpus(cfg.paths)

    def _follow_corpus(self, sources) -> None:
        """The probe text belongs to the corpus it was written for (typed, applied or the
        experiment's): another corpus clears it, so a run records the start of its own validation
        text, with a note and an Undo; going back to the experiment's corpus brings the
        experiment's probe back. An automatic name follows the corpus; a typed one stays."""
        base = self._base_exp
        sources = tuple(sources)
        same = sources == tuple(base.corpus.paths)
        probe = self.attention.probe_text()
        untouched = probe in (self._probe_auto, "")
        if self._probe_undo and untouched and sources == self._probe_undo_corpus:
            self._undo_probe_clear()  # back to the corpus the cleared probe was written for
            self._probe_auto = self.attention.probe_text() if same else ""
        elif probe == self._probe_auto or sources != self._probe_corpus:
            new = base.training.probe_text if same and untouched else ""
            written_for = self._probe_corpus
            self._probe_auto, self._probe_corpus = new, sources
            if new != probe:
                self.attention.set_probe_text(new)
            if probe and not new:
                self._probe_undo, self._probe_undo_corpus = probe, written_for
                shown = probe if len(probe) <= 40 else probe[:39] + "…"
                note = (f"The probe text “{shown}” was written for the earlier corpus, so it was cleared: "
                        f"the next run records the start of its own validation text.")
                self.attention.show_probe_note(note)
                self.statusBar().showMessage(note + " Undo on the Attention page.", 10000)
            elif new:
                self.attention.show_probe_note(None)
        if self._name_auto is not None and self.training.name() == self._name_auto:
            self._name_auto = base.name if same else corpus_name(sources)
            self.training.set_name(self._name_auto)

    def _probe_typed(self, _text: str) -> None:
        """A probe the person types is written for the corpus in the list now."""
        self._probe_corpus = tuple(self.corpus.config().paths)
        self._probe_undo = ""
        self.attention.show_probe_note(None)

    def _undo_probe_clear(self) -> None:
        """The person keeps the cleared probe text for the corpus now in the list."""
        if self._probe_undo:
            self.attention.set_probe_text(self._probe_undo)
            self._probe_corpus = tuple(self.corpus.config().paths)
            self._probe_undo = ""
        self.attention.show_probe_note(None)

    def _apply_probe_text(self, text: str) -> None:
        """The probe text is part of the experiment (the next run records it). A run switches to it
        and snapshots at once when paused, at its next step when running, and keeps it in its
        run folder, so a resumed run goes on with it. It is written for the corpus in the list."""
        self._probe_corpus = tuple(self.corpus.config().paths)
        self._probe_undo = ""
        self.attention.show_probe_note(None)
        if self.session.is_active():
            self._snapshot_wanted = True
            self.session.request(control_mod.SET_PROBE_TEXT, text)
            self.attention.caption.setText("Recording this text now…" if self.session.state == "paused"
                                           else "The run records this text from its next step on.")
        else:
            self.attention.caption.setText("The next run records this text.")

    def _training_changed(self) -> None:
        t = self.training.config()
        tokens = t.max_steps * t.batch_size * t.grad_accum_steps * self.model.config().block_size
        self.model.set_training(t.batch_size, tokens)
        self.finetune.set_run_shape(max_steps=t.max_steps, n_layer=self.model.config().n_layer,
                                    learning_rate=t.learning_rate)
        self._update_title()
