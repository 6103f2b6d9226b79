"""Commands over whole run folders: list and compare them (`runs`), report on one (`report`),
export a model in the GPT-2 layout and import one (`export`, `import`).
"""

from __future__ import annotations

import json
import sys

from .args import SAMPLING, number_type, unescape


def add_parsers(sub) -> None:
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
    rp.add_argument("--max-tokens", type=number_type(int, setting=(*SAMPLING, "max_tokens")), default=200,
                    help="tokens per sample (default 200)")


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

    out = export_report(args.run, args.out, fmt=args.fmt, samples=[unescape(p, "--sample") for p in args.samples],
                        sample_tokens=args.max_tokens)
    print(f"report written to {out}", file=sys.stderr)
    print(out)
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
