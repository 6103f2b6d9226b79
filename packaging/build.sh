#!/usr/bin/env bash
# Build the standalone GPT Workbench bundle with PyInstaller: dist/gpt-workbench/ (run it as
# dist/gpt-workbench/gpt-workbench). See packaging/README.md.
#
#   packaging/build.sh                 build with the Python environment that is active now
#   packaging/build.sh --venv DIR      make a fresh build environment in DIR first (only the
#                                      workbench's own dependencies: the smallest bundle)
#   TORCH_INDEX=https://download.pytorch.org/whl/cpu packaging/build.sh --venv build/venv
#                                      ... with the CPU-only PyTorch wheels (no CUDA libraries)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3}"
VENV=""
if [[ "${1:-}" == "--venv" ]]; then
    VENV="${2:?--venv needs a folder}"
fi

if [[ -n "$VENV" ]]; then
    echo ">> build environment: $VENV"
    "$PYTHON" -m venv "$VENV"
    PYTHON="$VENV/bin/python"
    "$PYTHON" -m pip install --upgrade pip
    if [[ -n "${TORCH_INDEX:-}" ]]; then
        "$PYTHON" -m pip install torch --index-url "$TORCH_INDEX"
    fi
    "$PYTHON" -m pip install "$ROOT"
elif [[ -n "${VIRTUAL_ENV:-}" ]]; then
    PYTHON="$VIRTUAL_ENV/bin/python"
fi

"$PYTHON" -m pip install "pyinstaller>=6.10"
# Keep the icon renders in step with the SVG (cheap; needs no display).
"$PYTHON" packaging/make_icons.py > /dev/null

start=$(date +%s)
"$PYTHON" -m PyInstaller --noconfirm --clean --log-level WARN \
    --distpath "$ROOT/dist" --workpath "$ROOT/build/pyinstaller" packaging/workbench.spec
echo ">> built in $(( $(date +%s) - start )) s"

BUNDLE="$ROOT/dist/gpt-workbench"
echo ">> bundle: $BUNDLE ($(du -sh "$BUNDLE" | cut -f1))"
echo ">> largest parts:"
du -sh "$BUNDLE"/_internal/* 2>/dev/null | sort -rh | head -8
echo ">> smoke test: gpt-workbench --help"
"$BUNDLE/gpt-workbench" --help > /dev/null && echo "   ok"
echo ">> smoke test: gpt-workbench presets"
"$BUNDLE/gpt-workbench" presets
