"""Command line: ``workbench`` opens the window; subcommands run the same engine headless.

Every subcommand imports what it needs when it runs, so ``workbench --help`` and the GUI start
without paying for torch until they use it.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time

EPILOG = """examples:
  workbench                                   open the window
  workbench train shakespeare_char            train a bundled preset (see `workbench presets`)
  workbench train exp.toml --set training.max_steps=500 --set model.n_layer=6
  workbench train exp.toml --resume RUN_DIR   continue a run from its latest checkpoint
  workbench corpus stats data/ --glob '**/*.txt'
  workbench bench train shakespeare_char      engine throughput vs a bare PyTorch loop
  workbench settings                          every experiment setting with its default
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="workbench", description="GPT Workbench: train and study small GPT models.",
                                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    g = sub.add_parser("gui", help="open the window (the default)")
    g.add_argument("experiment", nargs="?", help="experiment TOML or preset to open")

    t = sub.add_parser("train", help="train headless from an experiment TOML or preset",
                       description="Train a GPT from an experiment file. Prints progress and a summary; "
                                   "writes a run folder (config.toml, metrics.jsonl, checkpoints/, attention/).")
    t.add_argument("experiment", nargs="?", help="experiment TOML file or preset name (not needed with --resume)")
    t.add_argument("--run-dir", help="folder to write the run to (default: a new folder under the data dir)")
    t.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override a setting, e.g. --set training.max_steps=500 (repeatable)")
    t.add_argument("--resume", metavar="RUN_DIR", help="continue this run from its latest checkpoint "
                   "(--set training.max_steps=N to train longer)")
    t.add_argument("--quiet", action="store_true", help="print only the summary")

    c = sub.add_parser("corpus", help="inspect corpora")
    csub = c.add_subparsers(dest="corpus_command", metavar="ACTION", required=True)
    cs = csub.add_parser("stats", help="bytes, characters, lines and documents of each source")
    cs.add_argument("paths", nargs="+", help='files, folders or "builtin:NAME"')
    cs.add_argument("--glob", default="**/*", help="files to take from folders (default **/*)")
    cs.add_argument("--field", default="text", help="JSONL field / CSV column holding the text (default text)")
    cs.add_argument("--errors", choices=("strict", "replace"), default="strict",
                    help="invalid UTF-8: stop (strict) or substitute U+FFFD (replace)")
    cs.add_argument("--json", action="store_true", help="print JSON")

    b = sub.add_parser("bench", help="measure speed; prints JSON")
    bsub = b.add_subparsers(dest="bench_command", metavar="WHAT", required=True)
    bt = bsub.add_parser("train", help="engine tokens/s vs a bare forward/backward/step loop on the same model")
    bt.add_argument("experiment", help="experiment TOML or preset name")
    bt.add_argument("--steps", type=int, default=60, help="measured steps per round (default 60)")
    bt.add_argument("--warmup", type=int, default=10, help="unmeasured steps first (default 10)")
    bt.add_argument("--rounds", type=int, default=2, help="alternating rounds; the best of each counts")
    bt.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE")

    sub.add_parser("presets", help="list the bundled experiment presets")
    sub.add_parser("settings", help="list every experiment setting with its default and meaning")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command in (None, "gui"):
        from workbench.gui.app import main as gui_main

        return gui_main(getattr(args, "experiment", None))
    from workbench.engine.errors import WorkbenchError

    try:
        return COMMANDS[args.command](args)
    except WorkbenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


# -- train -------------------------------------------------------------------------------------


class ConsoleReporter:
    """A one-line progress bar (redrawn at most 10 times a second) and plain lines for the rest."""

    def __init__(self, stream=sys.stderr, quiet: bool = False):
        self.out, self.quiet = stream, quiet
        self.tty = stream.isatty()
        self._last_draw = 0.0
        self._val = None
        self._started = None

    def _line(self, text: str) -> None:
        if self.quiet:
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
                    + f" lr {e.lr:.2e} {e.tokens_per_s:,.0f} tok/s ETA {_fmt_time(eta)}")
            if self.tty:
                self.out.write("\r\033[K" + text)
                self.out.flush()
            elif e.step % max(1, e.max_steps // 20) == 0 or e.step == e.max_steps:
                self.out.write(text + "\n")
        elif isinstance(e, ev.EvalResult):
            self._val = e.losses.get("lm", next(iter(e.losses.values()), None))
            self._line(f"step {e.step}: " + ", ".join(f"val {k} {v:.4f}" for k, v in e.losses.items())
                       + f"  ({_fmt_time(e.elapsed)})")
        elif isinstance(e, ev.Paused):
            self._line(f"paused at step {e.step}")
        elif isinstance(e, ev.Failed):
            self._line(f"error: {e.message}")
            if e.details:
                self._line(e.details)


def _fmt_time(s: float) -> str:
    s = int(s)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def cmd_train(args) -> int:
    from workbench.engine.config import resolve_experiment
    from workbench.engine.control import RunControl
    from workbench.engine.errors import ConfigError
    from workbench.engine.trainer import Trainer, saved_experiment

    if args.experiment is None and args.resume is None:
        raise ConfigError("train: give an experiment TOML or preset name, or --resume RUN_DIR.")
    if args.resume is not None:
        exp = saved_experiment(args.resume).with_overrides(args.overrides)
    else:
        exp = resolve_experiment(args.experiment, args.overrides)
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
        result = Trainer(exp, run_dir=args.run_dir, resume=args.resume).run(control, reporter)
    finally:
        signal.signal(signal.SIGINT, previous)
    wall = time.perf_counter() - t0
    if result.status == "failed":
        return 1
    summary = {"status": result.status, "steps": result.step, "val_loss": result.last_val_loss,
               "wall_s": round(wall, 1), "run_dir": str(result.run_dir)}
    print(f"\n{result.status} at step {result.step}"
          + (f", validation loss {result.last_val_loss:.4f}" if result.last_val_loss is not None else "")
          + f", {_fmt_time(wall)} wall\nrun folder: {result.run_dir}", file=sys.stderr)
    print(json.dumps(summary))
    return 0


# -- corpus ----------------------------------------------------------------------------------


def cmd_corpus(args) -> int:
    from workbench.engine.corpus import Corpus

    stats = Corpus(args.paths, glob=args.glob, text_field=args.field, encoding_errors=args.errors).stats()
    if args.json:
        import dataclasses

        print(json.dumps({"sources": [dataclasses.asdict(s) for s in stats.sources],
                          "total": {k: getattr(stats, k) for k in ("files", "bytes", "chars", "lines", "documents")}}))
        return 0
    rows = [(s.source, s.kind, s.files, s.bytes, s.chars, s.lines, s.documents) for s in stats.sources]
    if len(rows) > 1:
        rows.append(("total", "", stats.files, stats.bytes, stats.chars, stats.lines, stats.documents))
    head = ("source", "kind", "files", "bytes", "chars", "lines", "documents")
    cells = [head] + [(r[0], r[1]) + tuple(f"{v:,}" for v in r[2:]) for r in rows]
    widths = [max(len(str(c[i])) for c in cells) for i in range(len(head))]
    for c in cells:
        print("  ".join(str(v).ljust(w) if i < 2 else str(v).rjust(w) for i, (v, w) in enumerate(zip(c, widths))))
    return 0


# -- bench, presets, settings ----------------------------------------------------------------


def cmd_bench(args) -> int:
    from workbench.engine.bench import bench_train
    from workbench.engine.config import resolve_experiment

    exp = resolve_experiment(args.experiment, args.overrides)
    print(json.dumps(bench_train(exp, steps=args.steps, warmup=args.warmup, rounds=args.rounds)))
    return 0


def cmd_presets(args) -> int:
    from workbench.engine.config import preset_dir, preset_names, resolve_experiment

    for name in preset_names():
        exp = resolve_experiment(name)
        first = (preset_dir() / f"{name}.toml").read_text().splitlines()[0].lstrip("# ")
        print(f"{name:22s} {first}  [{exp.model.n_layer}x{exp.model.n_embd}, {exp.training.max_steps} steps]")
    return 0


def cmd_settings(args) -> int:
    from workbench.engine.config import describe_settings

    for name, help_text, default in describe_settings():
        print(f"{name} = {json.dumps(default)}\n    {help_text}")
    return 0


COMMANDS = {"train": cmd_train, "corpus": cmd_corpus, "bench": cmd_bench, "presets": cmd_presets,
            "settings": cmd_settings}

if __name__ == "__main__":
    raise SystemExit(main())
