"""Where the workbench keeps things (platformdirs), overridable for tests and shared machines.

WORKBENCH_DATA_DIR   runs (config, metrics, checkpoints, attention snapshots)
WORKBENCH_CACHE_DIR  token caches, trained tokenizers and the lessons' pretrained models (safe to delete)
WORKBENCH_CONFIG_DIR the window's last experiment (last.toml), reopened at the next launch
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP = "gpt-workbench"


def data_dir() -> Path:
    return Path(os.environ.get("WORKBENCH_DATA_DIR") or platformdirs.user_data_dir(APP))


def cache_dir() -> Path:
    return Path(os.environ.get("WORKBENCH_CACHE_DIR") or platformdirs.user_cache_dir(APP))


def config_dir() -> Path:
    return Path(os.environ.get("WORKBENCH_CONFIG_DIR") or platformdirs.user_config_dir(APP))


def runs_dir() -> Path:
    return data_dir() / "runs"
