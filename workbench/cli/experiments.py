"""`workbench presets` and `workbench settings`: the bundled experiments and every setting one can hold.
"""

from __future__ import annotations

import json


def add_parsers(sub) -> None:
    sub.add_parser("presets", help="list the bundled experiment presets")
    sub.add_parser("settings", help="list every experiment setting with its default and meaning")


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
