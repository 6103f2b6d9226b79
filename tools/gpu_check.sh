#!/usr/bin/env bash
# For the day a GPU is at hand: what the CPU suite cannot check.
#   1. nvidia-smi and torch's view of CUDA;
#   2. the tests marked `cuda` (pytest -m cuda; skipped on a machine without CUDA);
#   3. the distributed tests (gloo), then with 2+ GPUs a short NCCL run of `workbench train --nproc N`;
#   4. `workbench bench gpu`: GPT-2 124M, bf16 autocast, fused AdamW, eager and compiled: tokens/s and MFU.
# Run from anywhere: tools/gpu_check.sh   (PYTHON=/path/to/python to choose the interpreter)
set -euo pipefail

cd "$(dirname "$0")/.."
PY="${PYTHON:-python}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

echo "== nvidia-smi"
if command -v nvidia-smi >/dev/null; then nvidia-smi; else echo "nvidia-smi not found"; fi

echo "== torch and CUDA"
"$PY" - <<'PY'
import torch
print("torch", torch.__version__, "| CUDA build", torch.version.cuda, "| available", torch.cuda.is_available())
for i in range(torch.cuda.device_count()):
    p = torch.cuda.get_device_properties(i)
    print(f"cuda:{i} {p.name}, {p.total_memory / 2**30:.1f} GiB, capability {p.major}.{p.minor}, "
          f"bf16 {torch.cuda.is_bf16_supported()}")
PY
NGPU=$("$PY" -c "import torch; print(torch.cuda.device_count())")
if [ "$NGPU" = "0" ]; then
    echo "no CUDA GPU: nothing here to check (the CPU suite covers the rest)" >&2
    exit 2
fi

echo "== tests that need CUDA (pytest -m cuda)"
"$PY" -m pytest -q -p no:cacheprovider -m cuda

echo "== distributed tests (gloo, 2 processes)"
"$PY" -m pytest -q -p no:cacheprovider tests/engine/test_distributed.py

if [ "$NGPU" -ge 2 ]; then
    echo "== NCCL: demo_toy on $NGPU GPUs (workbench train --nproc $NGPU)"
    RUN=$(mktemp -d)/run
    "$PY" -m workbench train demo_toy --nproc "$NGPU" --run-dir "$RUN" --quiet \
        --set training.device=cuda --set training.max_steps=200
    echo "ran; run folder $RUN"
fi

echo "== bench gpu: GPT-2 124M, bf16, fused AdamW, eager and compiled"
"$PY" -m workbench bench gpu
