"""The argument parser: the top-level help and the subcommands in the order `--help` lists them.

Each command group's module adds its own subcommands (``add_parsers``), so a command's options sit
beside the code that uses them.
"""

from __future__ import annotations

import argparse

from . import bench, data, evaluate, experiments, inside, lessons, runs, train

EPILOG = """examples:
  workbench                                   open the window
  workbench train demo_toy                    train a bundled preset (see `workbench presets`)
  workbench train exp.toml --set training.max_steps=500 --set model.n_layer=6
  workbench train --resume RUN_DIR --set training.max_steps=4000   continue a run, longer
  workbench train demo_toy --run-dir RUN_DIR --overwrite   start the run in RUN_DIR over
  workbench control RUN_DIR pause             pause (resume, stop) a run another process trains
  workbench corpus stats data/ --glob '**/*.txt'
  workbench bench train demo_toy              engine throughput vs a bare PyTorch loop
  workbench bench gui                         the window while it trains (JSON)
  workbench bench gpu                         GPT-2 124M tokens/s and MFU on a CUDA GPU (JSON)
  workbench runs                              earlier runs, their settings and results
  workbench runs RUN_A RUN_B                  the settings that differ between two runs
  workbench report RUN_DIR --out report.html  a run as one HTML page (--format folder: files)
  workbench settings                          every experiment setting with its default
  workbench inside heads RUN_DIR              each attention head's effect on the probe's loss
  workbench lesson                            the lessons: each claim, shown by an experiment
  workbench lesson pretraining --json         run one (every condition x seed) and print its figures
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="workbench", description="GPT Workbench: train and study small GPT models.",
                                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    g = sub.add_parser("gui", help="open the window (the default)")
    g.add_argument("experiment", nargs="?", help="experiment TOML or preset to open (default: the setup "
                                                 "left at the last close, kept in the config dir as last.toml; "
                                                 "the demo the first time)")

    train.add_parsers(sub)
    data.add_parsers(sub)
    bench.add_parsers(sub)
    evaluate.add_parsers(sub)
    runs.add_parsers(sub)
    inside.add_parsers(sub)
    lessons.add_parsers(sub)
    experiments.add_parsers(sub)
    return p
