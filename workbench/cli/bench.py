"""`workbench bench`: speed measurements (the engine against a bare loop, the demo, the window, GPT-2 124M on a
GPU); JSON out.
"""

from __future__ import annotations

import json

from .args import number_type


def add_parsers(sub) -> None:
    b = sub.add_parser("bench", help="measure speed; prints JSON")
    bsub = b.add_subparsers(dest="bench_command", metavar="WHAT", required=True)
    bt = bsub.add_parser("train", help="engine tokens/s (as configured, and with speed-ups off) vs a bare fp32 "
                         "forward/backward/step loop on the same model",
                         description="Prints one JSON line: ratio = tokens/s of the engine as configured "
                         "(training.compile / precision / attention; auto resolved as a real run would) over the "
                         "bare fp32 eager loop's; ratio_vs_off = over the engine with compile off, fp32 and "
                         "SDPA; compile "
                         "seconds, MFU against fp32 and bf16 matmuls, peak memory, load average.")
    bt.add_argument("experiment", help="experiment TOML or preset name")
    bt.add_argument("--steps", type=number_type(int, 2, 100_000), default=60, help="measured steps per round (default 60)")
    bt.add_argument("--warmup", type=number_type(int, 1, 100_000), default=10, help="unmeasured steps first (default 10)")
    bt.add_argument("--rounds", type=number_type(int, 1, 100), default=2,
                    help="alternating rounds of engine and bare loop (default 2); "
                    "the median step of all rounds counts")
    bt.add_argument("--size", choices=("experiment", "10m"), default="experiment",
                    help="the model: the experiment's own (default) or 10m: 6 layers, 6 heads, width 384, "
                    "block 256 (about 10.7 M parameters with a character vocabulary; try --steps 10 --warmup 3 "
                    "on a small CPU)")
    bt.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE")
    bd = bsub.add_parser("demo", help="seconds from pressing Demo to a fallen loss and a visible attention pattern",
                         description="Trains the demo preset headless with the window's thread count and prints "
                                     "one JSON line: loss_seconds / loss_step (mean loss of 10 steps below --loss), "
                                     "pattern_seconds / pattern_step (a head whose pattern score on the probe text "
                                     "reaches --pattern: mean attention on the keys its task needs), the CPU seconds "
                                     "spent until each (about the seconds on a quiet machine), the head, the median "
                                     "step, the load average and the CPU. Stops when both are reached or after "
                                     "--limit. With --seeds N: N runs (seeds 0 .. N-1) in one JSON line, each run's "
                                     "figures and the spread of the steps to each level.")
    bd.add_argument("--preset", default="demo_toy", help="experiment TOML or preset name (default demo_toy)")
    bd.add_argument("--limit", type=number_type(float, 1.0, 86_400.0), default=300.0, help="give up after this many seconds (default 300)")
    bd.add_argument("--loss", type=number_type(float, 0.0, 100.0), default=None,
                    help="loss level in nats (default 1.734 = 0.6 x ln 18, the loss of guessing uniformly among the "
                    "demo's 18 characters; only a model that looks back at the letters to copy gets below it)")
    bd.add_argument("--pattern", type=number_type(float, 0.0, 1.0), default=None, help="pattern score level (default 0.5)")
    bd.add_argument("--seeds", type=number_type(int, 1, 1000), default=None,
                    help="run seeds 0 .. N-1 and report the spread (default: one run with the preset's seed)")
    bd.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE")
    bg = bsub.add_parser("gui", help="the window while it trains: event-loop lateness, tokens/s vs headless, "
                         "curve redraw with 10^6 points, attention snapshot to pixels",
                         description="Trains a preset in a real window (offscreen without a display) and prints "
                                     "JSON. Takes about 3 x --seconds plus a minute; see workbench/bench/gui.py.")
    bg.add_argument("--preset", default="demo_toy", help="experiment TOML or preset name (default demo_toy)")
    bg.add_argument("--seconds", type=number_type(float, 0.5, 3600.0), default=20.0,
                    help="seconds of event-loop measurement while training (default 20)")
    bg.add_argument("--segments", type=number_type(int, 1, 100), default=4,
                    help="rounds of window / headless measurement (default 4)")
    bg.add_argument("--points", type=number_type(int, 2, 10**8), default=1_000_000,
                    help="points in the curve redraw test (default 10^6)")
    bg.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE")
    bu = bsub.add_parser("gpu", help="GPT-2 124M on one CUDA GPU: tokens/s and MFU, eager and compiled",
                         description="Trains the GPT-2 124M shape (12 layers, 12 heads, width 768, block 1024, "
                                     "vocabulary 50304) on random tokens with bf16 autocast and fused AdamW, "
                                     "eager and with torch.compile, and prints one JSON line: tokens/s, step "
                                     "time, achieved TFLOP/s and MFU against the card's dense bf16 peak (None "
                                     "for a card not in workbench/bench/gpu.py's table). Needs a CUDA GPU: "
                                     "without one it exits 2. tools/gpu_check.sh runs it.")
    bu.add_argument("--steps", type=number_type(int, 2, 100_000), default=20, help="measured steps (default 20)")
    bu.add_argument("--warmup", type=number_type(int, 1, 100_000), default=5,
                    help="unmeasured steps first, the compile included (default 5)")
    bu.add_argument("--batch", type=number_type(int, 1, 4096), default=16, help="sequences per step (default 16)")
    bu.add_argument("--compile", choices=("both", "on", "off"), default="both",
                    help="measure eager and compiled (both, the default), compiled only or eager only")
    bu.add_argument("--device", default="cuda", help="default cuda (cuda:N for another card); cpu only with "
                    "--tiny, for testing")
    bu.add_argument("--tiny", action="store_true", help="for testing only: a 2-layer toy shape whose figures "
                    "mean nothing (with --device cpu it runs without a GPU)")


def cmd_bench(args) -> int:
    if args.bench_command == "gpu":
        from workbench.bench.gpu import bench_gpu

        print(json.dumps(bench_gpu(args.device, steps=args.steps, warmup=args.warmup, batch=args.batch,
                                   compile=args.compile, tiny=args.tiny)))
        return 0
    if args.bench_command == "gui":
        from workbench.bench.gui import main as bench_gui

        print(json.dumps(bench_gui(args.preset, args.seconds, args.overrides, segments=args.segments,
                                   redraw_points=args.points)))
        return 0
    from workbench.bench.demo import DEMO_LOSS_LEVEL, DEMO_PATTERN_LEVEL, bench_demo, bench_demo_seeds
    from workbench.bench.train import bench_train
    from workbench.engine.config import resolve_experiment

    if args.bench_command == "demo":
        exp = resolve_experiment(args.preset, args.overrides)
        levels = dict(loss_level=DEMO_LOSS_LEVEL if args.loss is None else args.loss,
                      pattern_level=DEMO_PATTERN_LEVEL if args.pattern is None else args.pattern)
        if args.seeds is None:
            print(json.dumps(bench_demo(exp, args.limit, **levels)))
        else:
            print(json.dumps(bench_demo_seeds(exp, list(range(args.seeds)), args.limit, **levels)))
        return 0

    from workbench.bench.train import SIZES

    exp = resolve_experiment(args.experiment, SIZES[args.size] + args.overrides)
    print(json.dumps(bench_train(exp, steps=args.steps, warmup=args.warmup, rounds=args.rounds)))
    return 0
