"""The import contracts in pyproject.toml (run by `make test` as `lint-imports`) catch a forbidden
import: a copy of the package with `import PySide6` added to an engine module breaks the
engine's contract, and the same copy without it keeps it."""

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINT = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"


def lint(root: Path, contract: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", LINT, "--no-logo", "--no-cache", "--contract", contract],
                          cwd=root, env={"PYTHONPATH": str(root), "PATH": "", "LANG": "C.UTF-8"},
                          capture_output=True, text=True, timeout=120)


def test_a_qt_import_in_the_engine_breaks_the_contract(tmp_path):
    shutil.copytree(ROOT / "workbench", tmp_path / "workbench",
                    ignore=shutil.ignore_patterns("__pycache__", "resources"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    kept = lint(tmp_path, "engine-no-qt")
    assert kept.returncode == 0, kept.stdout + kept.stderr

    errors = tmp_path / "workbench" / "engine" / "errors.py"
    errors.write_text(errors.read_text() + "\nimport PySide6  # noqa\n")
    broken = lint(tmp_path, "engine-no-qt")
    assert broken.returncode == 1, broken.stdout + broken.stderr
    assert "BROKEN" in broken.stdout
    assert "workbench.engine.errors -> PySide6" in broken.stdout
