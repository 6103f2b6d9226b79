"""A run on all GPUs: `workbench train EXP --nproc N --run-dir RUN` as a child process of the window.

One process trains on one device, so the window cannot hold such a run in its own thread: it saves
the experiment beside the new run folder (RUN.toml), starts the child with its output in RUN.log,
and follows RUN like any run another process trains (gui/follow.py): Pause, Resume and Stop go
through RUN/control.json. Qt-free, so a test can run the command it builds.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from workbench.engine.config import Experiment


def command(exp_path: Path, nproc: int, run_dir: Path) -> list[str]:
    """The child's command line (a test may swap it for one that trains on the CPU)."""
    return [sys.executable, "-m", "workbench", "train", str(exp_path), "--nproc", str(nproc),
            "--run-dir", str(run_dir), "--quiet"]


class GpuRun:
    """The child process and the files it was given; ``stop`` asks it through control.json."""

    def __init__(self, exp: Experiment, nproc: int, runs_dir: Path):
        from workbench.engine.checkpoint import RunDir

        self.run_dir = RunDir.new_path(runs_dir, exp.name)  # an empty folder: `train --run-dir` takes it
        self.exp_path = self.run_dir.with_name(self.run_dir.name + ".toml")
        self.log_path = self.run_dir.with_name(self.run_dir.name + ".log")
        self.exp_path.write_text(exp.to_toml(), encoding="utf-8")
        self.nproc = nproc
        self.argv = command(self.exp_path, nproc, self.run_dir)
        with open(self.log_path, "w", encoding="utf-8") as log:  # the child keeps its own handle
            self.proc = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         env={**os.environ, "PYTHONUNBUFFERED": "1"})

    def running(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        """Ask the run to stop (it saves a checkpoint first), as the Stop button does."""
        from workbench.engine.control import read_status, request_action

        if not self.running():
            return
        if read_status(self.run_dir) is None:
            # not training yet (torch loading): a control file now would make the empty folder one that
            # `--run-dir` refuses; nothing is trained to lose, so end the child (torchrun ends its ranks)
            self.proc.terminate()
            return
        request_action(self.run_dir, "stop")

    def wait(self, timeout: float | None = None) -> int | None:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
        except OSError:
            return ""
