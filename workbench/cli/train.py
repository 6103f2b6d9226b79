"""`workbench train`: an experiment trained headless, with a progress line on stderr and a JSON
summary on stdout; Ctrl-C stops after the current step and saves a checkpoint.
"""

from __future__ import annotations

import json
import signal
import sys
import time

from workbench.fmt import fmt_duration

from .args import _number


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
    t.add_argument("--from-step", type=_number(int, 0, 10**12), metavar="N", help="with --resume: continue from the checkpoint of "
                   "step N instead of the latest (e.g. the good one a divergence message names); the later "
                   "checkpoints and the old metrics.jsonl are moved to RUN_DIR/superseded/, not deleted")
    t.add_argument("--quiet", action="store_true", help="print only the summary")


def cmd_train(args) -> int:
    from workbench.engine.config import resolve_experiment
    from workbench.engine.control import RunControl
    from workbench.engine.errors import ConfigError
    from workbench.engine.trainer import Trainer, saved_experiment

    from workbench.engine.ownership import preflight

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
    # a folder that is taken or not a run's: exit code 2 before anything loads (the Trainer checks again)
    preflight(run_dir=args.run_dir, resume=args.resume, overwrite=args.overwrite)
    if args.resume is not None:
        exp = saved_experiment(args.resume).with_overrides(args.overrides)
    else:
        exp = resolve_experiment(args.experiment, args.overrides)
    from workbench.engine.config import setting_warnings

    for warning in setting_warnings(exp.tasks, exp.multitask):
        print(f"warning: {warning}", file=sys.stderr)
    control = RunControl()
    # Ctrl-C stops after the current step and saves a checkpoint; a second Ctrl-C aborts.
    def on_sigint(signum, frame):
        if control.stop_requested:
            raise KeyboardInterrupt
        print("\nstopping after this step (Ctrl-C again to abort)...", file=sys.stderr)
        control.stop()

    previous = signal.signal(signal.SIGINT, on_sigint)
    reporter = ConsoleReporter(quiet=args.quiet)
    t0 = time.perf_counter()
    try:
        result = Trainer(exp, run_dir=args.run_dir, resume=args.resume, from_step=args.from_step,
                         overwrite=args.overwrite).run(control, reporter)
    finally:
        signal.signal(signal.SIGINT, previous)
    wall = time.perf_counter() - t0
    if result.status == "diverged":
        return 1
    if result.status == "failed":  # README: 2 for a bad setting (found once the run knew its sizes), else 1
        return 2 if isinstance(result.error, ConfigError) else 1
    summary = {"status": result.status, "steps": result.step, "val_loss": result.last_val_loss,
               "wall_s": round(wall, 1), "run_dir": str(result.run_dir) if result.run_dir else None}
    print(f"\n{result.status} at step {result.step}"
          + (f", validation loss {result.last_val_loss:.4f}" if result.last_val_loss is not None else "")
          + f", {fmt_duration(wall)} wall\n"
          + (f"run folder: {result.run_dir}" if result.run_dir else "no run folder was made (stopped while "
             "preparing)"), file=sys.stderr)
    print(json.dumps(summary))
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
            self._line(f"paused at step {e.step}")
        elif isinstance(e, ev.Failed):
            self._line(f"error: {e.message}", always=True)
            if e.details and not self.quiet:
                self._line(e.details)
