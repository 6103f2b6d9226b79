"""Runs another process trains, shown in the window (a mixin of MainWindow): following a run folder
(File > Follow a run folder, Follow live on the Runs page; follow.py reads it) and a run on all GPUs,
which the window starts as a `workbench train --nproc N` child (gpu_run.py) and then follows. Pause,
Resume and Stop act on such a run through its control.json; the state shown is its status.json."""

from __future__ import annotations

from pathlib import Path

from PySide6 import QtWidgets

from workbench import paths
from workbench.engine.config import ConfigError, Experiment

from .gpu_run import GpuRun


class OtherProcessRuns:
    """Methods of MainWindow; the state (``follow``, ``gpu_run``, ``_gpu_timer``, ``follow_label``) is
    set up in ``MainWindow.__init__``."""

    def _start_on_all_gpus(self, exp: Experiment, nproc: int, resume: str | None) -> bool:
        """One process per GPU cannot live in the window's thread: start `workbench train --nproc N`
        as a child (gpu_run.py) and follow its run folder; Stop goes through control.json."""
        if resume:
            self.training.show_message(
                f"Continuing a run on all {nproc} GPUs is done on the command line: workbench train --resume "
                f"{resume} --nproc {nproc}, then File > Follow a run folder. Or choose one device to continue here.")
            return False
        try:
            run = GpuRun(exp, nproc, paths.runs_dir())
        except OSError as e:
            message = f"Could not start the run on {nproc} GPUs: {e}"
            self.training.show_message(message)
            self.statusBar().showMessage(message, 10000)
            return False
        self.gpu_run = run
        self._trained.append(exp)  # saved beside its run folder (RUN.toml), and in it by the run
        self.follow_run(str(run.run_dir))
        self.training.log_line(f"Started on {nproc} GPUs: {' '.join(run.argv)} (output in {run.log_path})")
        self.statusBar().showMessage(
            f"Training on {nproc} GPUs in a torchrun child process (output in {run.log_path.name}). "
            f"Pause holds every process; Stop saves a checkpoint and stops.", 20000)
        self._gpu_timer.start()
        self._update_actions()
        return True

    def _gpu_run_followed(self) -> bool:
        return (self.gpu_run is not None and self.follow.is_following()
                and Path(self.follow.run_dir) == self.gpu_run.run_dir)

    def _check_gpu_run(self) -> None:
        """A child that ended before its run said so (torchrun missing, a bad setting): say why."""
        run = self.gpu_run
        if run is None or run.running():
            return
        self._gpu_timer.stop()
        if self._close_after_stop and not self.session.is_active():  # closing waited for the child
            self._close_after_stop = False
            self.confirm_close = False
            self.close()
            return
        if run.proc.returncode != 0 and self._gpu_run_followed() and self.follow.state in ("waiting", "preparing"):
            message = (f"The run on {run.nproc} GPUs ended (exit code {run.proc.returncode}) before it started "
                       f"training. Its output ({run.log_path}):\n{run.log_tail()}")
            self.stop_following()
            self.training.show_message(message)
            self.statusBar().showMessage(f"The run on {run.nproc} GPUs ended; see {run.log_path}", 15000)


    def follow_run_dialog(self) -> None:
        start = str(paths.runs_dir()) if paths.runs_dir().exists() else ""
        folder = QtWidgets.QFileDialog.getExistingDirectory(self, "Follow a run folder", start)
        if folder:
            self.follow_run(folder)

    def follow_run(self, folder: str) -> bool:
        """Show the run that another process trains in ``folder`` live on the Curves, Attention and
        Task balance pages (follow.py); Pause, Resume and Stop then act on it. The folder may be
        one the run has not written yet."""
        if self.session.is_active():
            message = "A run of this window is training: stop it first, then follow another run."
            self.statusBar().showMessage(message, 8000)
            self.training.show_message(message)
            return False
        folder = str(Path(folder))
        self._reset_run_pages(folder)
        self.training.set_following(folder)
        self.follow_label.setText(f"following {Path(folder).name} (another process)")
        self.follow_label.setToolTip(folder)
        self.follow_label.show()
        self.follow.start(folder)
        self.show_panel("curves")
        self._update_actions()
        return True

    def _reset_run_pages(self, folder: str) -> None:
        """Empty the pages that show a run, for the followed run (also when a resume rewrote it)."""
        from workbench.engine.config import load_experiment

        self.curves.reset()
        self.attention.reset()
        self.balance.reset()
        self.attention.follow_live()
        try:  # the task balance page names the run's tasks from the start
            self.balance.begin_run(load_experiment(Path(folder) / "config.toml", machine=False))
        except ConfigError:
            pass  # not written yet: the tasks come with the metrics

    def stop_following(self) -> None:
        """Leave the followed run alone (it goes on in its process); the pages keep what they show."""
        if not self.follow.is_following():
            return
        self.follow.stop_following()
        self.follow_label.hide()
        self.training.set_following(None)
        self.status_text.setText("")
        self.statusBar().showMessage("Stopped following; the run goes on in its own process", 6000)

    def _on_follow_state(self, state: str) -> None:
        self._show_state(self.session.state if state == "idle" else state)
        self._update_actions()

    def _on_follow_finished(self, e) -> None:
        self.training.on_finished(e)
        self.attention.set_run_dir(e.run_dir)
        self.runs.add_run(e.run_dir)
        word = {"completed": "finished", "early_stopped": "stopped early"}.get(e.reason, "stopped")
        self.statusBar().showMessage(f"The followed run {word} at step {e.step:,}. Run folder: {e.run_dir}", 15000)

    def _on_follow_failed(self, e) -> None:
        """No message box: the run failed in another process; the Training page says why."""
        self.training.on_failed(e)
        self.statusBar().showMessage(f"The followed run ended: {e.message}", 15000)

    def _on_follow_restarted(self) -> None:
        if self.follow.run_dir:
            self._reset_run_pages(self.follow.run_dir)
            self.training.log_line("The run's metrics were rewritten (it was resumed): reading them again")
