"""Run a named set of comparable experiments headless and print a markdown table of results.

    python tools/experiments.py multitask [--steps 600] [--out runs/exp]
    python tools/experiments.py finetune-sst2 [--steps 400]

Each row is one `workbench train` run (same engine as the window); the table shows the last
validation figures from its metrics.jsonl, tokens/s and wall time. The commands are printed too,
so any row can be replayed alone.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"

LM = '{kind="causal_lm"}'
MLM = '{kind="masked_lm", weight=0.5}'
CONT = '{kind="continuity", weight=0.5}'


def multitask(steps: int) -> list[tuple[str, str, list[str]]]:
    exp = str(ROOT / "examples" / "shakespeare_multitask.toml")
    base = [f"training.max_steps={steps}", f"training.eval_every={steps}", "training.checkpoint_every=0",
            "training.attention_every=0", "multitask.conflict_every=50"]
    rows = [("lm alone", exp, base + [f"tasks=[{LM}]"])]
    for weighting in ("fixed", "uncertainty"):
        rows.append((f"lm+mlm, {weighting}", exp, base + [f"tasks=[{LM}, {MLM}]", f"multitask.weighting={weighting}"]))
        rows.append((f"lm+mlm+continuity, {weighting}", exp,
                     base + [f"tasks=[{LM}, {MLM}, {CONT}]", f"multitask.weighting={weighting}"]))
    return rows


def run(name: str, exp: str, overrides: list[str], out: Path) -> dict:
    run_dir = out / name.replace(" ", "_").replace(",", "").replace("+", "-")
    cmd = [sys.executable, "-m", "workbench", "train", exp, "--run-dir", str(run_dir), "--quiet"]
    for o in overrides:
        cmd += ["--set", o]
    print("$ " + " ".join(shlex.quote(c) for c in cmd), file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        return {"name": name, "error": proc.stderr.strip().splitlines()[-1:]}
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    val = {}
    for r in records:
        if r["split"] == "val":
            val[f"{r['task']}/loss"] = r["loss"]
            for k, v in r.items():
                if k not in ("step", "split", "task", "loss", "tokens", "time"):
                    val[f"{r['task']}/{k}"] = v
    train = [r for r in records if r["split"] == "train" and "tokens_per_s" in r]
    return {"name": name, "wall_s": round(wall, 1), "train_s": train[-1]["time"] if train else None,
            "tokens_per_s": round(sum(r["tokens_per_s"] for r in train[-50:]) / max(1, len(train[-50:])), 0),
            "val": val, "cmd": cmd}


def table(results: list[dict], columns: list[str]) -> str:
    head = ["run"] + columns + ["tokens/s", "train s", "wall s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['name']} | error: {r['error']} |")
            continue
        cells = [f"{r['val'][c]:.4f}" if c in r["val"] else "–" for c in columns]
        lines.append("| " + " | ".join([r["name"], *cells, f"{r['tokens_per_s']:,.0f}", f"{r['train_s']:.1f}",
                                         f"{r['wall_s']:.1f}"]) + " |")
    return "\n".join(lines)


SETS = {
    "multitask": (multitask, ["lm/loss", "mlm/accuracy", "continuity/accuracy"]),
}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("set", choices=sorted(SETS))
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--out", default=str(ROOT / "runs" / "experiments"))
    p.add_argument("--only", help="run only rows whose name contains this")
    p.add_argument("--threads", type=int, default=0, help="training.threads for every run (0: all cores)")
    args = p.parse_args()
    make_rows, columns = SETS[args.set]
    out = Path(args.out) / args.set
    results = []
    for name, exp, overrides in make_rows(args.steps):
        if args.only and args.only not in name:
            continue
        if args.threads:
            overrides = overrides + [f"training.threads={args.threads}"]
        results.append(run(name, exp, overrides, out))
        print(table(results[-1:], columns).splitlines()[-1], file=sys.stderr, flush=True)
    print(table(results, columns))
    (out / "results.json").write_text(json.dumps(results, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
