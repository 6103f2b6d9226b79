"""Command line: ``workbench`` opens the window; subcommands run the same engine headless.

Every subcommand imports what it needs when it runs, so ``workbench --help`` and the GUI start
without paying for torch until they use it. The package, by job:

    parser.py       the top-level parser and its help; each group below adds its own subcommands
    args.py         argument checks: numbers within a setting's limits (``number_type``), escaped text,
                    files about to be written
    train.py        train (and --resume), with the console progress reporter
    data.py         corpus
    evaluate.py     eval, generate
    runs.py         runs, report, export, import
    bench.py        bench train / demo / gui
    inside.py       inside heads / knockout / lens / history
    lessons.py      lesson (the list, or one lesson run headless)
    experiments.py  presets, settings

``main`` (here) parses, dispatches through ``COMMANDS`` and turns errors into exit codes: 0 done,
1 the run or a file failed, 2 a bad command or setting.
"""

from __future__ import annotations

import sys

from .bench import cmd_bench
from .data import cmd_corpus
from .evaluate import cmd_eval, cmd_generate
from .experiments import cmd_presets, cmd_settings
from .inside import cmd_inside
from .lessons import cmd_lesson
from .parser import build_parser
from .runs import cmd_export, cmd_import, cmd_report, cmd_runs
from .train import cmd_control, cmd_train


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


COMMANDS = {"train": cmd_train, "corpus": cmd_corpus, "bench": cmd_bench, "presets": cmd_presets, "runs": cmd_runs,
            "eval": cmd_eval, "generate": cmd_generate, "export": cmd_export, "import": cmd_import,
            "report": cmd_report, "settings": cmd_settings, "inside": cmd_inside, "control": cmd_control,
            "lesson": cmd_lesson}
