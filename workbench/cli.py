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

from workbench.fmt import fmt_duration

EPILOG = """examples:
  workbench                                   open the window
  workbench train demo_toy                    train a bundled preset (see `workbench presets`)
  workbench train exp.toml --set training.max_steps=500 --set model.n_layer=6
  workbench train --resume RUN_DIR --set training.max_steps=4000   continue a run, longer
  workbench train demo_toy --run-dir RUN_DIR --overwrite   start the run in RUN_DIR over
  workbench corpus stats data/ --glob '**/*.txt'
  workbench bench train demo_toy              engine throughput vs a bare PyTorch loop
  workbench bench gui                         the window while it trains (JSON)
  workbench runs                              earlier runs, their settings and results
  workbench runs RUN_A RUN_B                  the settings that differ between two runs
  workbench report RUN_DIR --out report.html  a run as one HTML page (--format folder: files)
  workbench settings                          every experiment setting with its default
  workbench inside heads RUN_DIR              each attention head's effect on the probe's loss
"""


def _number(typ, lo=None, hi=None, *, setting: tuple[str, str, str] | None = None):
    """An argparse type: a number of ``typ`` within [lo, hi], or within the limits of a setting
    (module, dataclass, field) read from its metadata, so an option and its setting share one rule.
    argparse names the option in the message and exits with status 2."""
    def parse(text: str):
        from workbench.engine.config import check_range, field_meta
        from workbench.engine.errors import ConfigError

        try:
            value = typ(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not {'a whole number' if typ is int else 'a number'}") from None
        if setting is not None:
            import importlib

            meta = field_meta(getattr(importlib.import_module(setting[0]), setting[1]), setting[2])
        else:
            meta = {"min": lo, "max": hi}
        try:
            return check_range(value, "", meta)
        except ConfigError as e:
            raise argparse.ArgumentTypeError(str(e).rstrip(".")) from None
    parse.__name__ = "whole number" if typ is int else "number"  # argparse's "invalid <name> value"
    return parse


_THREADS = ("workbench.engine.config", "TrainingConfig", "threads")
_SEED = ("workbench.engine.config", "TrainingConfig", "seed")
_SAMPLING = "workbench.engine.generate", "SamplingSettings"
MAX_SHOTS = 10_000  # demonstrations in one prompt (they are cut to the context anyway)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="workbench", description="GPT Workbench: train and study small GPT models.",
                                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    g = sub.add_parser("gui", help="open the window (the default)")
    g.add_argument("experiment", nargs="?", help="experiment TOML or preset to open (default: the setup "
                                                 "left at the last close, kept in the config dir as last.toml; "
                                                 "the demo the first time)")

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
    bt.add_argument("--steps", type=_number(int, 2, 100_000), default=60, help="measured steps per round (default 60)")
    bt.add_argument("--warmup", type=_number(int, 1, 100_000), default=10, help="unmeasured steps first (default 10)")
    bt.add_argument("--rounds", type=_number(int, 1, 100), default=2,
                    help="alternating rounds of engine and bare loop (default 2); "
                    "the median step of all rounds counts")
    bt.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE")
    bd = bsub.add_parser("demo", help="seconds from pressing Demo to a fallen loss and a visible attention pattern",
                         description="Trains the demo preset headless with the window's thread count and prints "
                                     "one JSON line: loss_seconds (mean loss of 10 steps below --loss), "
                                     "pattern_seconds (a head whose pattern score on the probe text reaches "
                                     "--pattern: mean attention on the keys its task needs), the head, the "
                                     "load average and the CPU. Stops when both are reached or after --limit.")
    bd.add_argument("--preset", default="demo_toy", help="experiment TOML or preset name (default demo_toy)")
    bd.add_argument("--limit", type=_number(float, 1.0, 86_400.0), default=300.0, help="give up after this many seconds (default 300)")
    bd.add_argument("--loss", type=_number(float, 0.0, 100.0), default=None, help="loss level in nats (default 2.0)")
    bd.add_argument("--pattern", type=_number(float, 0.0, 1.0), default=None, help="pattern score level (default 0.5)")
    bd.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE")
    bg = bsub.add_parser("gui", help="the window while it trains: event-loop lateness, tokens/s vs headless, "
                         "curve redraw with 10^6 points, attention snapshot to pixels",
                         description="Trains a preset in a real window (offscreen without a display) and prints "
                                     "JSON. Takes about 3 x --seconds plus a minute; see workbench/gui/bench.py.")
    bg.add_argument("--preset", default="demo_toy", help="experiment TOML or preset name (default demo_toy)")
    bg.add_argument("--seconds", type=_number(float, 0.5, 3600.0), default=20.0,
                    help="seconds of event-loop measurement while training (default 20)")
    bg.add_argument("--segments", type=_number(int, 1, 100), default=4,
                    help="rounds of window / headless measurement (default 4)")
    bg.add_argument("--points", type=_number(int, 2, 10**8), default=1_000_000,
                    help="points in the curve redraw test (default 10^6)")
    bg.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE")

    e = sub.add_parser("eval", help="zero/one/few-shot in-context evaluation of a run on labelled data",
                       description="Score every label's verbalizer (or every choice) after a prompt of k "
                                   "demonstrations and the query; print accuracy for each k over several "
                                   "draws of demonstrations. Templates take \\n for a line break. With "
                                   "--data builtin:icl it also prints look-back scores: how much attention a "
                                   "repeated key pays to its earlier copies and the values after them.")
    e.add_argument("run", metavar="RUN_DIR", help="run folder (or checkpoint .json) to evaluate")
    e.add_argument("--data", required=True, help='labelled .csv/.tsv/.jsonl file, or "builtin:icl" '
                   '(builtin:icl:N for a mapping of N keys) to go with the icl_keyvalue preset')
    e.add_argument("--demos", metavar="FILE", help="draw demonstrations from this file (same columns); "
                   "default: 20%% of --data is held out for them")
    e.add_argument("--text", default="text", metavar="COL", help="column with the input text (default text)")
    e.add_argument("--text-pair", default="", metavar="COL", help="column with the second text of a pair")
    e.add_argument("--label", default="", metavar="COL", help="column with the label")
    e.add_argument("--choices", default="", metavar="COL[,COL...]",
                   help="multiple choice: columns of the options, or one column holding a list")
    e.add_argument("--answer", default="", metavar="COL", help="multiple choice: column naming the right option")
    e.add_argument("--answer-base", type=_number(int, setting=("workbench.engine.config", "TaskConfig", "answer_base")),
                   default=0, help="numbered answers count from this (COPA: 1)")
    e.add_argument("--verbalizer", default="", metavar="LABEL=WORD,...",
                   help="the word each label is shown as, e.g. 0=negative,1=positive")
    e.add_argument("--template", help=r'input template with {text} and {text_pair} (default "{text}\nAnswer:")')
    e.add_argument("--answer-template", help='answer template with {answer} (default " {answer}")')
    e.add_argument("--separator", help=r'between the parts of a prompt (default "\n\n")')
    e.add_argument("--description", default="", help="task description put before the demonstrations")
    e.add_argument("--k", default="0,1,2,4,8", help="numbers of demonstrations (default 0,1,2,4,8)")
    e.add_argument("--draws", type=_number(int, 1, 10_000), default=5,
                   help="random draws of demonstrations per k (default 5)")
    e.add_argument("--length-norm", action="store_true", help="score answers by mean, not summed, log-likelihood")
    e.add_argument("--limit", type=_number(int, 1, 10**9), metavar="N", help="evaluate the first N test examples only")
    e.add_argument("--seed", type=_number(int, setting=_SEED), default=0,
                   help="seed of the demonstration draws (default 0)")
    e.add_argument("--attention", type=_number(int, 0, 100_000), default=16, metavar="N",
                   help="measure the query's attention to each demonstration on N prompts at the largest k "
                        "(default 16; 0: skip)")
    e.add_argument("--show-prompt", type=_number(int, 0, MAX_SHOTS), metavar="K",
                   help="print the first test example's prompt with K demonstrations")
    e.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default auto)")
    e.add_argument("--threads", type=_number(int, setting=_THREADS), default=0,
                   help="CPU threads (default 0: PyTorch's choice; at most 4 x the cores)")
    e.add_argument("--out", metavar="FILE", help="write the results as JSON to this file (a new file or earlier "
                   "results; never inside a run folder)")

    gn = sub.add_parser("generate", help="sample text from a run's model, streamed as it is generated")
    gn.add_argument("run", metavar="RUN_DIR", help="run folder (or checkpoint .json)")
    gn.add_argument("--prompt", default="", help="text to continue (default: start from <|endoftext|>)")
    gn.add_argument("--max-tokens", type=_number(int, setting=(*_SAMPLING, "max_tokens")), default=200,
                    help="tokens to generate (default 200)")
    gn.add_argument("--temperature", type=_number(float, setting=(*_SAMPLING, "temperature")), default=0.8,
                    help="0: greedy; higher: more varied (default 0.8)")
    gn.add_argument("--top-k", type=_number(int, setting=(*_SAMPLING, "top_k")), default=50,
                    help="sample among the k most likely tokens (0: all; default 50)")
    gn.add_argument("--top-p", type=_number(float, setting=(*_SAMPLING, "top_p")), default=0.95,
                    help="sample within this much probability (1: all; default 0.95)")
    gn.add_argument("--seed", type=_number(int, setting=(*_SAMPLING, "seed")), default=0,
                    help="random seed (default 0)")
    gn.add_argument("--no-echo", action="store_true", help="print only the generated text, not the prompt")
    gn.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default auto)")
    gn.add_argument("--threads", type=_number(int, setting=_THREADS), default=0,
                    help="CPU threads (default 0: PyTorch's choice; at most 4 x the cores)")

    x = sub.add_parser("export", help="write a run's model in the GPT-2 layout of Hugging Face transformers")
    x.add_argument("run", metavar="RUN_DIR", help="run folder (or checkpoint .json)")
    x.add_argument("out", metavar="OUT_DIR", help="a new or empty folder for config.json, model.safetensors, "
                   "tokenizer.json (or an earlier export's folder, replaced); never inside a run folder")

    im = sub.add_parser("import", help="turn a local GPT-2-style folder (gpt2, distilgpt2, ...) into a run folder")
    im.add_argument("folder", metavar="GPT2_DIR", help="folder with config.json, model.safetensors, tokenizer.json")
    im.add_argument("out", metavar="OUT_RUN_DIR", help="run folder to write: a new or empty folder")
    im.add_argument("--name", help="experiment name (default: the folder's name)")

    r = sub.add_parser("runs", help="list runs with their settings and results, or compare two configs",
                       description="List the runs in a folder with their settings and results; a run with a "
                                   "damaged file (config.toml, a metrics line, best.json, its latest checkpoint's "
                                   "JSON) is listed too, with a line naming the file and why.")
    r.add_argument("diff", nargs="*", metavar="RUN_DIR",
                   help="two run folders: print the settings that differ between them")
    r.add_argument("--dir", help="where runs live (default: the data dir's runs/)")
    r.add_argument("--json", action="store_true", help="print JSON")

    rp = sub.add_parser("report", help="export a run as a report: one HTML file, or a folder of files",
                        description="Write a run's settings, results, curves (SVG), attention snapshots (SVG), "
                                    "metrics (CSV) and, with --sample, generated text: as one self-contained HTML "
                                    "file, or as a folder (index.html, config.toml, summary.json, metrics.csv, "
                                    "plots/, attention/, samples.txt).")
    rp.add_argument("run", metavar="RUN_DIR", help="run folder to report on")
    rp.add_argument("--out", required=True, metavar="PATH",
                    help="the .html file to write (a new file, or an earlier report), or with --format folder a "
                         "new or empty folder (or an earlier report's); never inside a run folder")
    rp.add_argument("--format", dest="fmt", choices=("html", "folder"), default="html",
                    help="html: one file with everything inline (default); folder: separate files")
    rp.add_argument("--sample", dest="samples", action="append", default=[], metavar="PROMPT",
                    help="continue this prompt with the final checkpoint (seed 0) and include the text "
                         "(repeatable; loads the model)")
    rp.add_argument("--max-tokens", type=_number(int, setting=(*_SAMPLING, "max_tokens")), default=200,
                    help="tokens per sample (default 200)")

    ins = sub.add_parser("inside", help="look inside a run's model: head knock-out, every head's effect, "
                         "the logit lens, a token's attention across training",
                         description="Probe a trained model on a text (--probe; default: the run's "
                                     "training.probe_text). heads: the loss change when each head is zeroed; "
                                     "knockout L.H ...: the probe's predictions with those heads zeroed; lens: "
                                     "what each layer would predict; history: one query token's attention in "
                                     "every snapshot of the run. Layers and heads are numbered from 0.")
    ins.add_argument("view", choices=("heads", "knockout", "lens", "history"), help="what to show")
    ins.add_argument("run", metavar="RUN_DIR", help="run folder (or checkpoint .json; history needs a run folder)")
    ins.add_argument("heads", nargs="*", metavar="L.H", help="knockout: the heads to zero, e.g. 1.0 1.3")
    ins.add_argument("--probe", help="the text to probe (default: the run's training.probe_text)")
    ins.add_argument("--query", type=_number(int, -100_000, 100_000), default=-1, help="history: the query token's index (default -1: the last)")
    ins.add_argument("--layer", type=_number(int, 0, 10_000), default=None, help="history: only this layer (default: all)")
    ins.add_argument("--json", action="store_true", help="print JSON")

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
        from workbench.engine.checkpoint import WriteError

        print(f"error: {e}", file=sys.stderr)
        return 1 if isinstance(e, WriteError) else e.exit_code  # a file not written is no bad command
    except OSError as e:  # the file system said no (permissions, read-only, a path through a file)
        where = f"{e.filename}: " if e.filename else ""
        print(f"error: {where}{e.strerror or e}; check that the path exists and can be written.", file=sys.stderr)
        return 1
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
    if args.bench_command == "gui":
        from workbench.gui.bench import main as bench_gui

        print(json.dumps(bench_gui(args.preset, args.seconds, args.overrides, segments=args.segments,
                                   redraw_points=args.points)))
        return 0
    from workbench.engine.bench import DEMO_LOSS_LEVEL, DEMO_PATTERN_LEVEL, bench_demo, bench_train
    from workbench.engine.config import resolve_experiment

    if args.bench_command == "demo":
        exp = resolve_experiment(args.preset, args.overrides)
        print(json.dumps(bench_demo(exp, args.limit,
                                    loss_level=DEMO_LOSS_LEVEL if args.loss is None else args.loss,
                                    pattern_level=DEMO_PATTERN_LEVEL if args.pattern is None else args.pattern)))
        return 0

    exp = resolve_experiment(args.experiment, args.overrides)
    print(json.dumps(bench_train(exp, steps=args.steps, warmup=args.warmup, rounds=args.rounds)))
    return 0


def cmd_runs(args) -> int:
    from workbench import paths
    from workbench.engine.runs import config_diff, format_started, list_runs

    if args.diff:
        if len(args.diff) != 2:
            print("error: runs takes two run folders to compare (or none to list)", file=sys.stderr)
            return 2
        rows = config_diff(args.diff[0], args.diff[1])
        if args.json:
            print(json.dumps([{"setting": k, "a": a, "b": b} for k, a, b in rows]))
        for k, a, b in rows:
            print(f"{k}: {json.dumps(a)} -> {json.dumps(b)}")
        if not rows and not args.json:
            print("the two runs have the same settings")
        return 0
    runs = list_runs(args.dir or paths.runs_dir())
    if args.json:
        print(json.dumps([r.to_dict() for r in runs], default=str))
        return 0
    if not runs:
        print(f"no runs in {args.dir or paths.runs_dir()}")
    for r in runs:
        val = ", ".join(f"{k} {v:.4g}" for k, v in list(r.val.items())[:3])
        print(f"{format_started(r.started)}  {r.path.name:36s} {r.status:13s} {r.steps:>6}/{r.max_steps:<6} "
              f"{r.model:28s} {r.tokenizer:14s} {val}")
        for why in r.damaged:
            print(f"{'':18s}damaged: {why}")
    return 0


def cmd_report(args) -> int:
    from workbench.engine.report import export_report

    out = export_report(args.run, args.out, fmt=args.fmt, samples=[_unescape(p, "--sample") for p in args.samples],
                        sample_tokens=args.max_tokens)
    print(f"report written to {out}", file=sys.stderr)
    print(out)
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


# -- eval, generate, export, import ------------------------------------------------------------


def _unescape(text: str | None, option: str) -> str | None:
    """\\n and \\t typed on a command line become a line break and a tab. Bytes that are not UTF-8
    (Python keeps them as lone surrogates) are refused with the option's name."""
    if text is None:
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        from workbench.engine.errors import ConfigError

        raise ConfigError(f"{option}: not UTF-8 text (character {e.start + 1}); type it in a UTF-8 terminal.") from None
    return text.replace("\\n", "\n").replace("\\t", "\t")


def _check_out_file(path: str, option: str) -> None:
    """A file the command will write: refuse a folder, or a path under a file, before the work."""
    from pathlib import Path

    from workbench.engine.errors import ConfigError

    p = Path(path)
    if p.is_dir():
        raise ConfigError(f"{option} {path}: is a folder; give the path of a file to write.")
    parent = next((q for q in p.parents if q.exists()), None)
    if parent is not None and not parent.is_dir():
        raise ConfigError(f"{option} {path}: {parent} is a file, not a folder.")


def _set_threads(n: int) -> None:
    if n > 0:
        import torch

        torch.set_num_threads(n)


def _icl_task_from_args(args):
    """An InContextTask from the eval command's data options."""
    from workbench.engine.errors import ConfigError
    from workbench.engine.evaluate import PromptTemplate, builtin_icl_task, default_template, labelled_icl_task
    from workbench.engine.labelled import Columns

    if args.data.startswith("builtin:icl"):
        keys = args.data.removeprefix("builtin:icl").lstrip(":")
        if keys and not keys.isdigit():
            raise ConfigError(f"--data {args.data}: use builtin:icl or builtin:icl:N with N keys, e.g. builtin:icl:6.")
        return builtin_icl_task(n=args.limit or 200, seed=args.seed, n_keys=int(keys or 4))
    verbalizer = {}
    for item in filter(None, (p.strip() for p in args.verbalizer.split(","))):
        label, sep, word = item.partition("=")
        if not sep:
            raise ConfigError(f"--verbalizer {args.verbalizer!r}: write LABEL=WORD pairs separated by commas, "
                              f"e.g. 0=negative,1=positive.")
        verbalizer[label.strip()] = word
    choices = tuple(c.strip() for c in args.choices.split(",") if c.strip())
    if not (args.label or choices) or (choices and not args.answer):
        raise ConfigError("eval: give --label COL for a labelled task, or --choices and --answer for multiple choice.")
    cols = Columns(text=args.text, text_pair=args.text_pair, label=args.label if not choices else "",
                   choices=choices, answer=args.answer, answer_base=args.answer_base)
    base = default_template(pair=bool(args.text_pair), description=_unescape(args.description, "--description"))
    template = PromptTemplate(
        input=_unescape(args.template, "--template") if args.template is not None else base.input,
        answer=(_unescape(args.answer_template, "--answer-template") if args.answer_template is not None
                else base.answer),
        description=base.description,
        separator=_unescape(args.separator, "--separator") if args.separator is not None else base.separator,
    )
    return labelled_icl_task(args.data, cols, labels=list(verbalizer) or None, verbalizer=verbalizer,
                             template=template, demos=args.demos, limit=args.limit, seed=args.seed)


def cmd_eval(args) -> int:
    from workbench.engine.config import check_range
    from workbench.engine.device import resolve_device
    from workbench.engine.errors import ConfigError
    from workbench.engine.evaluate import evaluate_in_context
    from workbench.engine.loading import load_trained

    try:
        ks = [check_range(int(k), "--k", {"min": 0, "max": MAX_SHOTS}) for k in args.k.split(",") if k.strip()]
    except ValueError:
        raise ConfigError(f"--k {args.k!r}: give numbers of demonstrations separated by commas, "
                          f"e.g. 0,1,2,4,8.") from None
    if args.out:
        from workbench.engine.evaluate import check_results_path

        _check_out_file(args.out, "--out")  # before the evaluation, not after it
        check_results_path(args.out)
    task = _icl_task_from_args(args)
    _set_threads(args.threads)
    trained = load_trained(args.run, resolve_device(args.device, "--device"), with_heads=False)
    if args.show_prompt is not None:
        p = task.prompt(0, args.show_prompt, 0, tokenizer=trained.tokenizer,
                        block_size=trained.model.config.block_size)
        print(f"--- prompt of test example 1 with k = {args.show_prompt} ({p.demos_used} demonstrations fit, "
              f"{len(p.ids)} tokens) ---\n{p.text}\n--- answers: {p.answers} (right: {p.answers[p.gold]!r}) ---")
    tty = sys.stderr.isatty()

    def progress(done, total):
        if tty:
            sys.stderr.write(f"\r\033[Kscoring prompts: {done:,}/{total:,}")
            sys.stderr.flush()

    t0 = time.perf_counter()
    result = evaluate_in_context(trained.model, trained.tokenizer, task, ks, args.draws, length_norm=args.length_norm,
                                 attention_examples=args.attention, progress=progress)
    if tty:
        sys.stderr.write("\r\033[K")
    print(result.table())
    if result.attention and result.attention["examples"]:
        a = result.attention
        print(f"query attention per demonstration (k = {a['k']}, first .. last, mean of {a['examples']} prompts): "
              + " ".join(f"{x:.3f}" for x in a["demonstrations"])
              + "; by part: " + ", ".join(f"{kind} {x:.3f}" for kind, x in a["kinds"].items()))
        same, other = a["same_input"]["same"], a["same_input"]["other"]
        if same is not None and other is not None:
            print(f"a demonstration with the query's own input gets {same:.3f} of its attention, "
                  f"another one {other:.3f}")
    if result.look_back is not None:
        print(result.look_back_line())
    print(f"{time.perf_counter() - t0:.1f} s", file=sys.stderr)
    if args.out:
        result.save(args.out, args.run, trained.step, args.data)
        print(f"results: {args.out}", file=sys.stderr)
    return 0


def cmd_generate(args) -> int:
    from workbench.engine.device import resolve_device
    from workbench.engine.generate import SamplingSettings, TextStream, generate
    from workbench.engine.loading import load_trained

    settings = SamplingSettings(max_tokens=args.max_tokens, temperature=args.temperature, top_k=args.top_k,
                                top_p=args.top_p, seed=args.seed)
    settings.check()  # before loading the model
    _set_threads(args.threads)
    trained = load_trained(args.run, resolve_device(args.device, "--device"), with_heads=False)
    if not args.no_echo:
        sys.stdout.write(_unescape(args.prompt, "--prompt") or "")
    stream = TextStream(trained.tokenizer)
    prompt = _unescape(args.prompt, "--prompt")
    for tok in generate(trained.model, trained.tokenizer, prompt, settings, attention="none"):
        sys.stdout.write(stream.push(tok.id))
        sys.stdout.flush()
    sys.stdout.write(stream.flush() + "\n")
    return 0


def cmd_export(args) -> int:
    from workbench.engine.gpt2_interop import export_run

    out = export_run(args.run, args.out)
    print(f"exported to {out} (GPT-2 layout: GPT2LMHeadModel.from_pretrained can read it)", file=sys.stderr)
    return 0


def cmd_import(args) -> int:
    from workbench.engine.gpt2_interop import import_gpt2

    run = import_gpt2(args.folder, args.out, name=args.name)
    print(f"imported into run folder {run}", file=sys.stderr)
    return 0


def _parse_heads(specs: list[str]) -> list[tuple[int, int]]:
    from workbench.engine.errors import ConfigError

    heads = []
    for spec in specs:
        layer, dot, head = spec.partition(".")
        if not (dot and layer.isdigit() and head.isdigit()):
            raise ConfigError(f"head {spec!r}: write heads as LAYER.HEAD, numbered from 0, e.g. 1.0")
        heads.append((int(layer), int(head)))
    return heads


def cmd_inside(args) -> int:
    from workbench.engine import interpret
    from workbench.engine.errors import ConfigError

    if args.view == "history":
        hist = interpret.attention_history(args.run, args.query)
        if args.layer is not None and args.layer >= hist.rows.shape[1]:
            raise ConfigError(f"--layer {args.layer}: the model has layers 0-{hist.rows.shape[1] - 1}.")
        rows = hist.rows if args.layer is None else hist.rows[:, [args.layer]]
        if args.json:
            print(json.dumps({"query": hist.query, "tokens": hist.tokens, "steps": hist.steps,
                              "skipped": hist.skipped, "attention": rows.round(4).tolist()}))
            return 0
        print(f"query token {hist.query} {hist.tokens[hist.query]!r}: strongest key per snapshot, layer.head "
              f"(snapshots of another probe skipped: {hist.skipped})")
        for step, row in zip(hist.steps, rows):
            best = [f"{(args.layer if args.layer is not None else l)}.{h} "
                    f"{hist.tokens[int(row[l, h].argmax())]!r} {row[l, h].max():.2f}"
                    for l in range(row.shape[0]) for h in range(row.shape[1])]
            print(f"step {step:>7}: " + "  ".join(best))
        return 0

    from workbench.engine.loading import load_trained

    trained = load_trained(args.run, with_heads=False)
    text = args.probe if args.probe is not None else trained.experiment.training.probe_text
    if not text:
        raise ConfigError("no probe text: pass --probe TEXT (the run's training.probe_text is empty).")
    ids = trained.tokenizer.encode(_unescape(text, "--probe"))
    model, tok = trained.model, trained.tokenizer
    if args.view == "heads":
        table = interpret.ablation_table(model, [ids])
        if args.json:
            print(json.dumps({"base_loss": table.base_loss, "delta": table.delta.round(5).tolist(),
                              "positions": table.positions}))
            return 0
        H = table.delta.shape[1]
        print(f"loss on the probe {table.base_loss:.4f} nats over {table.positions} tokens; change when a head "
              f"is zeroed (positive: the head helps):")
        print("layer " + "".join(f"{'head ' + str(h):>10}" for h in range(H)))
        for layer, row in enumerate(table.delta):
            print(f"{layer:>5} " + "".join(f"{v:>+10.4f}" for v in row))
        layer, head, value = table.strongest()
        print(f"strongest: head {layer}.{head} ({value:+.4f} nats)")
    elif args.view == "knockout":
        if not args.heads:
            raise ConfigError("knockout needs the heads to zero, e.g. `workbench inside knockout RUN 1.0 1.3`.")
        result = interpret.knock_out(model, tok, ids, _parse_heads(args.heads))
        if args.json:
            print(json.dumps({"heads": result.heads, "tokens": result.tokens, "delta": result.delta,
                              "base_losses": result.base_losses.round(5).tolist(),
                              "losses": result.losses.round(5).tolist(),
                              "base_top": result.base_top, "top": result.top}))
            return 0
        print(f"zeroed {', '.join(f'{l}.{h}' for l, h in result.heads)}: loss {result.base_losses.mean():.4f} -> "
              f"{result.losses.mean():.4f} nats; {len(result.changed_predictions())} of {len(result.top)} "
              f"predictions changed")
        print(f"{'after':>14} {'next':>8} {'intact':>8} {'zeroed':>8} {'loss':>16}")
        for i, (a, b) in enumerate(zip(result.base_top, result.top)):
            mark = " *" if a != b else ""
            print(f"{result.tokens[i]!r:>14} {result.tokens[i + 1]!r:>8} {a!r:>8} {b!r:>8} "
                  f"{result.base_losses[i]:>7.3f} -> {result.losses[i]:.3f}{mark}")
    else:
        lens = interpret.logit_lens(model, tok, ids)
        if args.json:
            print(json.dumps({"tokens": lens.tokens, "top": lens.top_texts, "top_probs": lens.top_probs.round(4).tolist(),
                              "next_probs": lens.next_probs.round(4).tolist()}))
            return 0
        print("what each layer predicts after each token (row 0: the embeddings alone; the last row is the model's "
              "prediction); probability of the token that really came next in brackets")
        for i, t in enumerate(lens.tokens):
            cells = [f"{lens.top_texts[l][i]!r} {lens.top_probs[l, i]:.2f}"
                     + (f" [{lens.next_probs[l, i]:.2f}]" if i < len(lens.tokens) - 1 else "")
                     for l in range(len(lens.top_texts))]
            print(f"{t!r:>12}: " + " | ".join(cells))
    return 0


COMMANDS = {"train": cmd_train, "corpus": cmd_corpus, "bench": cmd_bench, "presets": cmd_presets, "runs": cmd_runs,
            "eval": cmd_eval, "generate": cmd_generate, "export": cmd_export, "import": cmd_import,
            "report": cmd_report, "settings": cmd_settings, "inside": cmd_inside}

if __name__ == "__main__":
    raise SystemExit(main())
