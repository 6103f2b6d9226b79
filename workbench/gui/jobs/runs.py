"""The Runs page's jobs: list the runs (summarising one reads its whole metrics.jsonl) and export
a run's report."""

from __future__ import annotations

import os
from pathlib import Path


def list_all_runs(state, folders: list[str], extra: list[str]) -> list:
    """Summaries of the runs directly under each folder plus the single run folders in ``extra``,
    each once, newest first. No torch: engine.runs reads only TOML and JSON."""
    from workbench.engine.runs import list_runs, summarize_listed

    seen: dict[str, object] = {}
    for folder in folders:
        state.check()
        for r in list_runs(Path(folder)):
            seen.setdefault(os.path.realpath(r.path), r)
    for path in extra:
        state.check()
        key = os.path.realpath(path)
        if key not in seen and (Path(path) / "config.toml").is_file():
            seen[key] = summarize_listed(Path(path))
    return sorted(seen.values(), key=lambda r: r.started, reverse=True)


def export_run_report(state, run_dir: str, out: str, fmt: str, samples: list[str]) -> str:
    """Write the report of ``run_dir`` (engine.report); progress messages go to the page."""
    from workbench.engine.report import export_report

    return str(export_report(run_dir, out, fmt=fmt, samples=samples or None, progress=state.progress))
