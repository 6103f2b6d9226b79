"""Argument checks shared by the commands: numbers within a setting's limits, text typed with
escapes, files a command is about to write.
"""

from __future__ import annotations

import argparse

def number_type(typ, lo=None, hi=None, *, setting: tuple[str, str, str] | None = None):
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


THREADS = ("workbench.engine.config", "TrainingConfig", "threads")
SEED = ("workbench.engine.config", "TrainingConfig", "seed")
SAMPLING = "workbench.engine.generate", "SamplingSettings"
MAX_SHOTS = 10_000  # demonstrations in one prompt (they are cut to the context anyway)


def unescape(text: str | None, option: str) -> str | None:
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


def check_out_file(path: str, option: str) -> None:
    """A file the command will write: refuse a folder, or a path under a file, before the work."""
    from pathlib import Path

    from workbench.engine.errors import ConfigError

    p = Path(path)
    if p.is_dir():
        raise ConfigError(f"{option} {path}: is a folder; give the path of a file to write.")
    parent = next((q for q in p.parents if q.exists()), None)
    if parent is not None and not parent.is_dir():
        raise ConfigError(f"{option} {path}: {parent} is a file, not a folder.")
