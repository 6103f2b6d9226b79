"""Settings kept between launches and closing the window (a mixin of MainWindow): closing asks before
it stops a training run, a run on all GPUs or a lesson, waits for the run's checkpoint, then saves the
experiment, the splitters and the page for the next launch."""

from __future__ import annotations

from PySide6 import QtGui, QtWidgets

from ..bridge import Job


class SettingsAndClosing:
    def _restore_settings(self) -> None:
        s = self.settings
        self._restore_geometry(s)
        for key, splitter in (("window/splitter", self.splitter), ("curves/splitter", self.curves.splitter),
                              ("curves/bottom", self.curves.bottom_splitter),
                              ("attention/splitter", self.attention.splitter)):
            v = s.value(key)
            if v is not None:
                splitter.restoreState(v)
        page = s.value("window/page")
        if page is not None:
            try:
                self.show_panel(int(page))
            except (TypeError, ValueError):
                pass

    def save_settings(self) -> None:
        s = self.settings
        self._save_geometry(s)
        s.setValue("window/splitter", self._normal_split if self.presentation and self._normal_split is not None
                   else self.splitter.saveState())  # the next launch opens in normal mode
        s.setValue("curves/splitter", self.curves.splitter.saveState())
        s.setValue("curves/bottom", self.curves.bottom_splitter.saveState())
        s.setValue("attention/splitter", self.attention.splitter.saveState())
        s.setValue("window/page", self.stack.currentIndex())
        s.sync()

    def _may_stop_to_close(self, what: str,
                           question: str = "Stop it (a checkpoint is saved first) and close?") -> bool:
        """Ask before closing stops a run (unless confirm_close is off, as in tests)."""
        if not self.confirm_close:
            return True
        answer = QtWidgets.QMessageBox.question(
            self, "Stop and close?", f"{what} is going on. {question}",
            QtWidgets.QMessageBox.StandardButton.Yes | QtWidgets.QMessageBox.StandardButton.No,
            QtWidgets.QMessageBox.StandardButton.No)
        return answer == QtWidgets.QMessageBox.StandardButton.Yes

    def closeEvent(self, event: QtGui.QCloseEvent) -> None:
        if self.lessons.is_running():
            # a lesson's finished runs are its figures: ask, then stop it (at its next point) and close
            if self.confirm_close and not self._may_stop_to_close(
                    "A lesson", "Stop it (the runs that finished are shown until you close) and close?"):
                event.ignore()
                return
            self.lessons.stop()
            self.lessons.wait(30000)
        on_gpus = self.gpu_run is not None and self.gpu_run.running()
        if on_gpus or self.session.is_active():
            # Stop the run first (its checkpoint is saved while the window stays responsive); the
            # window closes once it has stopped (_on_thread_done, _check_gpu_run).
            event.ignore()
            what = f"A training run on {self.gpu_run.nproc} GPUs" if on_gpus else "A training run"
            if self._close_after_stop or not self._may_stop_to_close(what):
                return
            self._close_after_stop = True
            if on_gpus:
                self.gpu_run.stop()
                self._gpu_timer.start()
            else:
                self.session.stop()
            self.statusBar().showMessage("Stopping: saving a checkpoint, then closing…")
            return
        self.save_last_experiment()
        self.save_settings()
        for panel in (self.corpus, self.tokenizer):
            panel.shutdown()
        self.pacer.stop()
        Job.shutdown_all(5000)
        super().closeEvent(event)

    def shutdown(self, msecs: int = 60000) -> None:
        """Stop a run and wait for its thread (for quitting without a close event)."""
        if self.gpu_run is not None and self.gpu_run.running():
            self.gpu_run.stop()
            if self.gpu_run.wait(msecs / 1000) is None:
                self.gpu_run.proc.kill()
                self.gpu_run.wait(10)
        if self.session.is_active():
            self.session.stop()
            self.session.wait(msecs)
        Job.shutdown_all(15000)
