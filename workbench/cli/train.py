"""`workbench train`: an experiment trained headless, with a progress line on stderr and a JSON
summary on stdout; Ctrl-C stops after the current step and saves a checkpoint.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from workbench.fmt import fmt_duration

from .args import number_type


def add_parsers(sub) -> None:
    t = sub.add_parser("train", help="train headless from an experiment TOML or preset",
                       description="Train a GPT from an experiment file. Prints progress and a summary; "
                                   "writes a run folder (config.toml, metrics.jsonl, checkpoints/, attention/), "
                                   "which belongs to this run: it is locked while the run trains (run.lock), and "
                                   "leftovers of an interrupted write are removed when the next run starts in it.")
    t.add_argument("experiment", nargs="?", help="experiment TOML file or preset name (not needed with --resume)")
    t.add_argument("--run-dir", help="a new or empty folder to write the run to (default: a new folder under the "
                   "data dir); a folder that holds a run is refused: continue it with --resume, or add --overwrite")
    t.add_argument("--overwrite", action="store_true", help="with --run-dir: delete the run already in that folder "
                   "(its checkpoints, metrics, config) and start a new one there; other files are left alone")
    t.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override a setting, e.g. --set training.max_steps=500 (repeatable)")
    t.add_argument("--resume", metavar="RUN_DIR", help="continue this run from its latest checkpoint "
                   "(--set training.max_steps=N to train longer; training.learning_rate, min_lr, grad_clip "
                   "and the divergence_* rule may change too); a run folder is used by one run at a time")
    t.add_argument("--from-step", type=number_type(int, 0, 10**12), metavar="N", help="with --resume: continue from the checkpoint of "
                   "step N instead of the latest (e.g. the good one a divergence message names); the later "
                   "checkpoints and the old metrics.jsonl are moved to RUN_DIR/superseded/, not deleted")
    t.add_argument("--quiet", action="store_true", help="print only the summary")
    t.add_argument("--nproc", type=number_type(int, 1, 1024), metavar="N", help="train on N processes of this machine "
                   "(one per GPU; gloo on the CPU): starts `python -m torch.distributed.run --standalone "
                   "--nproc_per_node N -m workbench train ...` with the other arguments. training.batch_size "
                   "stays the global batch, split evenly over the processes. Several machines: run torchrun "
                   "yourself (README: More than one GPU or machine)")

    c = sub.add_parser("control", help="pause, resume or stop a run that another process trains",
                       description="Ask the run training in RUN_DIR (a headless `workbench train`, a window's run, "
                                   "on this machine or a shared disk) to pause, resume or stop, through its "
                                   "control.json, and wait for its answer in status.json (docs/RUN_FOLDERS.md). "
                                   "A stopped run saves a checkpoint first; a paused one keeps everything in memory.")
    c.add_argument("run", metavar="RUN_DIR", help="the folder of a run that is training now")
    c.add_argument("action", choices=("pause", "resume", "stop"))
    c.add_argument("--timeout", type=number_type(float, 0.0, 86400.0), default=60.0, metavar="SECONDS",
                   help="how long to wait for the run's answer (default 60; 0: do not wait)")


def cmd_train(args) -> int:
    from workbench.engine.config import resolve_experiment
    from workbench.engine.control import RunControl
    from workbench.engine.errors import ConfigError
    from workbench.engine.distributed import launched
    from workbench.engine.trainer import Trainer, saved_experiment

    from workbench.engine.ownership import preflight

    rank = int(os.environ.get("RANK", "0")) if launched() else 0

    if args.experiment is None and args.resume is None:
        raise ConfigError("train: give an experiment TOML or preset name, or --resume RUN_DIR.")
    if args.from_step is not None and args.resume is None:
        raise ConfigError("train: --from-step N needs --resume RUN_DIR (the run whose checkpoint of step N to use).")
    if args.from_step is not None:
        from workbench.engine.checkpoint import RunDir

        steps = RunDir.open(args.resume).checkpoint_steps()
        if args.from_step not in steps:
            raise ConfigError(f"train: --from-step {args.from_step}: {args.resume} has no checkpoint of that step; "
                              f"its checkpoints are at steps {', '.join(map(str, steps)) or '(none)'}.")
    if args.resume is not None and (args.run_dir or args.overwrite):
        raise ConfigError("train: --resume continues the run in its own folder; leave out --run-dir and --overwrite.")
    if args.overwrite and not args.run_dir:
        raise ConfigError("train: --overwrite needs --run-dir FOLDER, the run folder to start over.")
    # a folder that is taken or not a run's: exit code 2 before anything loads (the Trainer checks again);
    # under torchrun rank 0 alone owns the folder (the others would find it locked by rank 0)
    if rank == 0:
        preflight(run_dir=args.run_dir, resume=args.resume, overwrite=args.overwrite)
    if args.resume is not None:
        exp = saved_experiment(args.resume).with_overrides(args.overrides)
    else:
        exp = resolve_experiment(args.experiment, args.overrides)
    from workbench.engine.config import setting_warnings

    if args.nproc and args.nproc > 1 and not launched():
        return launch(args, exp)
    for warning in setting_warnings(exp.tasks, exp.multitask) if rank == 0 else ():
        print(f"warning: {warning}", file=sys.stderr)
    control = RunControl()
    # Ctrl-C stops after the current step and saves a checkpoint; a second Ctrl-C aborts.
    def on_sigint(signum, frame):
        if control.stop_requested:
            raise KeyboardInterrupt
        print("\nstopping after this step (Ctrl-C again to abort)...", file=sys.stderr)
        control.stop()

    previous = signal.signal(signal.SIGINT, on_sigint)
    # torchrun passes a Ctrl-C on to its workers as SIGINT, and stops them with SIGTERM: the same stop
    previous_term = signal.signal(signal.SIGTERM, on_sigint) if launched() else None
    reporter = ConsoleReporter(quiet=args.quiet or rank != 0)  # rank 0 reports; the others only failures
    # N processes on one machine share its cores
    threads = max(1, (os.cpu_count() or 1) // int(os.environ.get("LOCAL_WORLD_SIZE", "1"))) if launched() else None
    t0 = time.perf_counter()
    try:
        result = Trainer(exp, run_dir=args.run_dir, resume=args.resume, from_step=args.from_step,
                         overwrite=args.overwrite, default_threads=threads).run(control, reporter)
    finally:
        signal.signal(signal.SIGINT, previous)
        if previous_term is not None:
            signal.signal(signal.SIGTERM, previous_term)
    wall = time.perf_counter() - t0
    if result.status == "diverged":
        return 1
    if result.status == "failed":  # README: 2 for a bad setting (found once the run knew its sizes), else 1
        return 2 if isinstance(result.error, ConfigError) else 1
    if rank != 0:  # rank 0 prints the summary
        return 0
    summary = {"status": result.status, "steps": result.step, "val_loss": result.last_val_loss,
               "wall_s": round(wall, 1), "run_dir": str(result.run_dir) if result.run_dir else None}
    print(f"\n{result.status} at step {result.step}"
          + (f", validation loss {result.last_val_loss:.4f}" if result.last_val_loss is not None else "")
          + f", {fmt_duration(wall)} wall\n"
          + (f"run folder: {result.run_dir}" if result.run_dir else "no run folder was made (stopped while "
             "preparing)"), file=sys.stderr)
    print(json.dumps(summary))
    return 0


def cmd_control(args) -> int:
    from pathlib import Path

    from workbench.engine.control import read_status, request_action
    from workbench.engine.errors import ConfigError
    from workbench.engine.ownership import training_now

    run = Path(args.run)
    if not (run / "config.toml").is_file():
        raise ConfigError(f"{run}: not a run folder (no config.toml); give the folder `workbench train` writes.")
    if training_now(run) is None:
        status = read_status(run)
        ended = f" (it ended: {status['state']} at step {status.get('step')})" if status else ""
        raise ConfigError(f"{run}: no run is training in this folder now{ended}; nothing to {args.action}.")
    rid = request_action(run, args.action)
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        status = read_status(run) or {}
        if status.get("ack") == rid:
            print(f"{run}: {status['state']} at step {status.get('step')}", file=sys.stderr)
            return 0
        time.sleep(0.1)
    if args.timeout:
        print(f"{run}: asked to {args.action}; no answer within {args.timeout:g} s (a run still preparing "
              f"answers once it trains)", file=sys.stderr)
        return 1
    return 0


class ConsoleReporter:
    """A one-line progress bar (redrawn at most 10 times a second) and plain lines for the rest."""

    def __init__(self, stream=sys.stderr, quiet: bool = False):
        self.out, self.quiet = stream, quiet
        self.tty = stream.isatty()
        self._last_draw = 0.0
        self._val = None
        self._started = None

    def _line(self, text: str, *, always: bool = False) -> None:
        if self.quiet and not always:  # --quiet drops progress, never the reason a run failed
            return
        if self.tty:
            self.out.write("\r\033[K")
        self.out.write(text + "\n")
        self.out.flush()

    def report(self, e) -> None:
        from workbench.engine import events as ev

        if isinstance(e, ev.Status):
            if self.tty and not self.quiet:
                self.out.write("\r\033[K" + e.message[:100])
                self.out.flush()
        elif isinstance(e, ev.RunStarted):
            self._started = e
            self._line(f"run {e.run_dir}\n  {e.params / 1e6:.2f} M parameters, vocabulary {e.vocab_size:,}, "
                       f"{e.device}, {e.precision}, {e.tokens_per_step:,} tokens/step"
                       + (f", resuming at step {e.start_step}" if e.start_step else ""))
            if e.speed:  # compiled or eager, and why (engine/speed.py)
                self._line(f"  speed: {e.speed}")
            for note in e.notes:
                self._line(f"  {note}")
        elif isinstance(e, ev.StepMetrics):
            now = time.monotonic()
            if self.quiet or (now - self._last_draw < 0.1 and e.step != e.max_steps):
                return
            self._last_draw = now
            frac = e.step / e.max_steps
            bar = "#" * int(frac * 24)
            eta = (e.max_steps - e.step) * e.tokens / max(e.step, 1) / max(e.tokens_per_s, 1e-9)
            text = (f"[{bar:<24}] {e.step}/{e.max_steps} loss {e.loss:.4f}"
                    + (f" val {self._val:.4f}" if self._val is not None else "")
                    + f" lr {e.lr:.2e} {e.tokens_per_s:,.0f} tok/s ETA {fmt_duration(eta)}")
            if self.tty:
                self.out.write("\r\033[K" + text)
                self.out.flush()
            elif e.step % max(1, e.max_steps // 20) == 0 or e.step == e.max_steps:
                self.out.write(text + "\n")
        elif isinstance(e, ev.EvalResult):
            self._val = e.losses.get("lm", next(iter(e.losses.values()), None))
            self._line(f"step {e.step}: " + ", ".join(f"val {k} {v:.4f}" for k, v in e.losses.items())
                       + f"  ({fmt_duration(e.elapsed)})")
        elif isinstance(e, ev.Paused):
            self._line(f"paused at step {e.step} (`workbench control RUN_DIR resume` to go on)")
        elif isinstance(e, ev.Resumed):
            self._line(f"resumed at step {e.step}")
        elif isinstance(e, ev.Failed):
            self._line(f"error: {e.message}", always=True)
            if e.details and not self.quiet:
                self._line(e.details)


def launch(args, exp) -> int:
    """``--nproc N``: this command again under torchrun, as a child process on this machine. Bad settings
    are refused here first (exit code 2: torchrun would turn them into 1). The child has its own
    session, so the terminal's Ctrl-C reaches the ranks only through here: it goes to each rank (they
    stop after the same step, rank 0 saves a checkpoint, torchrun ends cleanly; signalled itself,
    torchrun would end with a traceback and exit code 1). The child's exit code is returned."""
    from workbench.engine.distributed import Group

    Group(0, args.nproc).check_batch(exp.training.batch_size)
    argv = [*([args.experiment] if args.experiment else []), *(["--run-dir", args.run_dir] if args.run_dir else []),
            *(["--overwrite"] if args.overwrite else []), *[a for o in args.overrides for a in ("--set", o)],
            *(["--resume", args.resume] if args.resume else []),
            *(["--from-step", str(args.from_step)] if args.from_step is not None else []),
            *(["--quiet"] if args.quiet else [])]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(args.nproc),
           "-m", "workbench", "train", *argv]
    child = subprocess.Popen(cmd, start_new_session=True)

    def forward(signum, frame):
        for pid in _children(child.pid) or [child.pid]:
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return child.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (torchrun's ranks), read from /proc; [] where there is none."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:  # the field after the state is the parent's pid
            found.append(int(stat.parent.name))
    return found
