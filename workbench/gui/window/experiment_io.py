"""Experiments in files: open and save a TOML, presets, the recent list, a run folder's setup,
the setup of the last session (``last.toml``, written on closing whether saved or not and
reopened at the next launch; the demo the first time), and the equivalent command line."""

from __future__ import annotations

import os
from pathlib import Path

from PySide6 import QtWidgets

from workbench import paths
from workbench.engine.config import ConfigError, Experiment, load_experiment, preset_dir, resolve_experiment

from ..panels.training_panel import command_line

DEMO_PRESET = "demo_toy"
LAST_EXPERIMENT = "last.toml"  # the forms at the last close, beside the settings
MAX_RECENT = 8


class ExperimentFiles:
    """Methods of MainWindow that read and write experiments; errors are shown, not raised."""

    # -- the last experiment, reopened at launch

    def _reopen_last(self) -> None:
        """The setup of the last session (saved or not), else the demo."""
        demo = resolve_experiment(DEMO_PRESET)
        if self.last_path is None or not self.last_path.is_file():
            self.set_experiment(demo, base_label=DEMO_PRESET)
            return
        try:
            exp = load_experiment(self.last_path)
        except ConfigError as e:  # keep the file for the person (the next close writes last.toml)
            kept = self.last_path.with_name("last-unreadable.toml")
            try:
                os.replace(self.last_path, kept)
            except OSError:
                kept = self.last_path
            self.set_experiment(demo, base_label=DEMO_PRESET)
            self.statusBar().showMessage(f"The last setup could not be reopened ({e}); it is kept in {kept}.")
            return
        path = self.settings.value("experiment/path") or None
        label = path or self.settings.value("experiment/base") or DEMO_PRESET
        run = not path and self.settings.value("experiment/base_is_run") in (True, "true")
        try:
            base = resolve_experiment(label)
        except ConfigError:  # its file is gone: unsaved then, compared with the demo
            label, path, base, run = DEMO_PRESET, None, demo, False
        self.set_experiment(exp, base_label=label, path=path, base=base, run=run)
        self.statusBar().showMessage("Reopened the setup of the last session", 6000)

    def save_last_experiment(self) -> None:
        """The forms as they are (valid or not) to last.toml, and where they came from to QSettings."""
        if self.last_path is None:
            return
        try:
            self.last_path.parent.mkdir(parents=True, exist_ok=True)
            self._forms().save(self.last_path)
        except (OSError, TypeError, ValueError) as e:  # closing goes on; say why on the console
            print(f"GPT Workbench: could not keep the setup in {self.last_path}: {e}")
            return
        self.settings.setValue("experiment/base", self._base_label)
        self.settings.setValue("experiment/path", self._experiment_path or "")
        self.settings.setValue("experiment/base_is_run", self._base_is_run)

    # -- files the person opens and saves

    def open_experiment(self, name_or_path: str) -> bool:
        """A TOML file or a preset name; errors are shown, not raised."""
        try:
            exp = resolve_experiment(name_or_path)
        except ConfigError as e:
            self.show_error("Cannot open the experiment", str(e))
            return False
        if not self._confirm_replace(f"opening {Path(name_or_path).name}"):
            return False
        is_file = Path(name_or_path).exists()
        self.training.set_resume("")
        self.set_experiment(exp, base_label=name_or_path, path=str(Path(name_or_path).resolve()) if is_file else None)
        if is_file:
            self._add_recent(str(Path(name_or_path).resolve()))
        self.statusBar().showMessage(f"Opened {name_or_path}", 4000)
        return True

    def open_experiment_dialog(self) -> None:
        start = str(Path(self._experiment_path).parent) if self._experiment_path else str(preset_dir())
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self, "Open experiment", start, "Experiment (*.toml)")
        if path:
            self.open_experiment(path)

    def save_experiment(self) -> bool:
        if not self._experiment_path:
            return self.save_experiment_as()
        return self.save_experiment_to(self._experiment_path)

    def save_experiment_as(self) -> bool:
        default = self._experiment_path or str(Path.home() / f"{self.training.name()}.toml")
        path, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Save experiment", default, "Experiment (*.toml)")
        if not path:
            return False
        if not path.endswith(".toml"):
            path += ".toml"
        return self.save_experiment_to(path)

    def save_experiment_to(self, path: str) -> bool:
        from workbench.engine.errors import WorkbenchError
        from workbench.engine.ownership import check_output

        try:
            exp = self.experiment()
            # a run folder's config.toml is its run's; the file dialog has asked about any other file
            check_output(Path(path), "experiment", own_file=lambda _p: True)
            exp.save(path)
        except (WorkbenchError, OSError) as e:
            self.show_error("Cannot save the experiment", str(e))
            return False
        self._experiment_path = str(Path(path).resolve())
        self._base_label, self._base_exp, self._base_is_run = self._experiment_path, exp, False
        self._name_auto = None  # a saved name is the person's
        self._add_recent(self._experiment_path)
        self._update_title()
        self.statusBar().showMessage(f"Saved {path}", 4000)
        return True

    def copy_command(self) -> str:
        try:
            exp = self.experiment()
        except ConfigError as e:
            self.training.show_message(str(e))
            return ""
        resume = self.training.resume_dir() or None
        base = self._resume_exp if resume and self._resume_exp is not None else self._base_exp
        try:
            cmd = command_line(self._base_label, base, exp, resume, self.training.from_step() if resume else None,
                               nproc=self.training.gpu_processes())
        except ValueError as e:
            self.training.show_message(str(e))
            return ""
        QtWidgets.QApplication.clipboard().setText(cmd)
        self.training.show_command(cmd)
        self.statusBar().showMessage("Command line copied to the clipboard", 4000)
        return cmd

    # -- run folders

    def open_run_dialog(self) -> None:
        start = str(paths.runs_dir()) if paths.runs_dir().exists() else ""
        folder = QtWidgets.QFileDialog.getExistingDirectory(self, "Open a run folder", start)
        if folder:
            self.open_run(folder)

    def open_run(self, folder: str) -> bool:
        """Show a finished run: its settings, curves and attention snapshots."""
        try:
            exp = load_experiment(Path(folder) / "config.toml")
        except ConfigError as e:
            self.show_error("Not a run folder", str(e))
            return False
        if not self._confirm_replace(f"showing the run {Path(folder).name}"):
            return False
        self.set_experiment(exp, base_label=str(Path(folder) / "config.toml"), run=True)
        self._trained.append(exp)  # the person just opened this run: it is where they know
        self.curves.load_run(folder)
        self.attention.load_run(folder)
        self.show_panel("curves")
        self.statusBar().showMessage(f"Showing the run in {folder}", 6000)
        return True

    def _resume_chosen(self, folder: str) -> None:
        """Resuming trains the run's own experiment: show it in the forms."""
        self._resume_exp = None
        if not folder:
            return
        try:
            exp = load_experiment(Path(folder) / "config.toml")
        except ConfigError as e:
            self.training.show_message(str(e))
            return
        if not self._confirm_replace(f"showing the settings of {Path(folder).name}"):
            self.training.set_resume("")
            return
        self.set_experiment(exp, base_label=str(Path(folder) / "config.toml"), run=True)
        self._trained.append(exp)  # the person just picked this run: it is where they know
        self._resume_exp = exp
        self.curves.load_run(folder)
        self.attention.load_run(folder)

    # -- recent experiments

    def recent_experiments(self) -> list[str]:
        value = self.settings.value("recent", [])
        if isinstance(value, str):
            value = [value]
        return [v for v in (value or []) if v]

    def _add_recent(self, path: str) -> None:
        items = [path] + [p for p in self.recent_experiments() if p != path]
        self.settings.setValue("recent", items[:MAX_RECENT])
        self._update_recent_menu()

    def _update_recent_menu(self) -> None:
        self.recent_menu.clear()
        items = self.recent_experiments()
        for p in items:
            self.recent_menu.addAction(p, lambda p=p: self.open_experiment(p))
        self.recent_menu.setEnabled(bool(items))

    def _can_continue(self, folder: str, exp: Experiment) -> bool:
        """A run that has trained its steps goes on only when Steps was raised: say so in words."""
        from workbench.engine.checkpoint import RunDir
        from workbench.engine.errors import WorkbenchError

        try:
            steps = RunDir.open(Path(folder)).checkpoint_steps()
        except WorkbenchError as e:
            self.training.show_message(str(e))
            return False
        start = self.training.from_step() or (steps[-1] if steps else 0)  # an earlier checkpoint, if chosen
        if steps and start >= exp.training.max_steps:
            self.training.show_message(
                f"The run in {folder} has already trained {start:,} steps. To continue it, raise Steps "
                f"above {start:,}; to train a new run with these settings, press New run.")
            return False
        return True
