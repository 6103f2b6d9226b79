"""Run a named set of comparable experiments headless and print a markdown table of results.

    python tools/experiments.py multitask [--steps 600] [--out runs/exp]
    python tools/experiments.py finetune --task sst2|rte|stsb|arc|all [--pretrain-steps N] [--steps N]
    python tools/experiments.py icl-sst2 [--draws 5]

Each row is one `workbench train` run (same engine as the window); the table shows the last
validation figures from its metrics.jsonl, tokens/s and wall time. The commands are printed too,
so any row can be replayed alone.

finetune (issue #5): for each task, pretrain a causal LM on the task's own unlabelled training text
(examples/TASK_pretrain.toml; done once, skipped when its run folder is complete), then fine-tune
(examples/TASK_finetune.toml) in 12 rows: {pretrained, scratch} x {full, head_only, gradual} x
lambda (the auxiliary LM loss weight) in {0, 0.5}. "scratch" is the same model shape with the same
tokenizer (tokenizer.path = the pretraining run's tokenizer.json) and random weights, so the weights
are the only difference. Rows are skipped when their run folder is complete (--fresh reruns them).

icl-sst2 (issue #6): `workbench eval` of the SST-2-pretrained model, k = 0, 1, 2, 4, 8 demonstrations
drawn from the train split, scored on the dev set, next to the best fine-tuned SST-2 accuracy.
"""

from __future__ import annotations

import argparse
import json
import os
import re
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


# -- issue #5: fine-tuning on real data ----------------------------------------------------------

FT_TASKS = {
    # name: (metric columns: (metrics.jsonl key, header)), what the headline metric is
    "sst2": [("accuracy", "acc"), ("macro_f1", "macro-F1")],
    "rte": [("accuracy", "acc"), ("macro_f1", "macro-F1")],
    "stsb": [("pearson", "Pearson"), ("spearman", "Spearman"), ("mse", "MSE")],
    "arc": [("accuracy", "acc")],
}
INITS = ("pretrained", "scratch")
FREEZES = ("none", "head_only", "gradual")
LAMBDAS = (0.0, 0.5)


def val_override(task: str, out: Path) -> Path | None:
    """A validation file to use instead of the TOML's, or None.

    ARC: the engine's multiple-choice evaluation pads each batch to its own widest question and then
    concatenates the batches' scores, which fails when batches differ in width (ARC-Easy dev has 567
    questions with 4 choices, 2 with 5 and 1 with 3). Until that is fixed, evaluate on the 567
    four-choice questions: this writes them, lines byte for byte, to OUT/arc/ (never into the project).
    Training data keeps every question (training batches are padded and masked correctly)."""
    if task != "arc":
        return None
    src = DATA / "arc_easy" / "ARC-Easy-Dev.jsonl"
    dst = out / "arc" / "ARC-Easy-Dev-4choices.jsonl"
    if not dst.exists():
        dst.parent.mkdir(parents=True, exist_ok=True)
        keep = [line for line in src.read_text(encoding="utf-8").splitlines(keepends=True)
                if line.strip() and len(json.loads(line)["question"]["choices"]) == 4]
        dst.write_text("".join(keep), encoding="utf-8")
    return dst


def _toml_value(v) -> str:
    """A value as TOML inline text (what --set parses)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}={_toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(v)


def _read_toml(path: Path) -> dict:
    import tomllib

    return tomllib.loads(path.read_text(encoding="utf-8"))


def _pretrain_complete(run_dir: Path, steps: int) -> bool:
    return (run_dir / "checkpoints" / f"step_{steps:07d}.json").exists() and (run_dir / "tokenizer.json").exists()


def _shown(cmd: list[str]) -> str:
    """The command as a person types it: `workbench ...`, paths inside the repository relative to it."""
    out = ["workbench"]
    for c in cmd[3:]:
        try:
            c = str(Path(c).relative_to(ROOT)) if c.startswith(str(ROOT)) else c
        except ValueError:
            pass
        out.append(shlex.quote(c))
    return " ".join(out)


def _run_cmd(cmd: list[str]) -> tuple[subprocess.CompletedProcess, float, float, tuple]:
    """Run a workbench subprocess; (process, wall s, CPU s of the child, load averages before)."""
    import resource

    load = os.getloadavg()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return proc, wall, cpu, load


def _val_records(run_dir: Path, task: str) -> list[dict]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["split"] == "val" and r["task"] == task]


def pretrain(task: str, steps: int | None, out: Path, threads: int) -> dict:
    """The task's LM pretraining run (cached): its folder, val-loss curve and cost."""
    exp = ROOT / "examples" / f"{task}_pretrain.toml"
    steps = steps or _read_toml(exp)["training"]["max_steps"]
    run_dir = out / task / f"pretrain-{steps}"
    cmd = [sys.executable, "-m", "workbench", "train", str(exp), "--run-dir", str(run_dir),  # not --quiet: it
           "--set", f"training.max_steps={steps}"]                                         # hides failures
    if threads:
        cmd += ["--set", f"training.threads={threads}"]
    info_path = run_dir / "experiments_row.json"
    if _pretrain_complete(run_dir, steps):
        info = json.loads(info_path.read_text()) if info_path.exists() else {
            "run_dir": str(run_dir), "steps": steps, "wall_s": None, "cpu_s": None, "cmd": _shown(cmd)}
        info["cached"] = True
    else:
        if run_dir.exists():
            raise SystemExit(f"{run_dir} exists but is incomplete; remove it to pretrain again.")
        print("$ " + _shown(cmd), file=sys.stderr, flush=True)
        proc, wall, cpu, load = _run_cmd(cmd)
        if proc.returncode != 0:
            raise SystemExit(f"pretraining {task} failed:\n{proc.stderr[-3000:]}")
        info = {"run_dir": str(run_dir), "steps": steps, "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
                "load": [round(x, 2) for x in load], "cmd": _shown(cmd)}
        info_path.write_text(json.dumps(info, indent=1))
        info["cached"] = False
    info["val"] = [(r["step"], r["loss"]) for r in _val_records(run_dir, "lm")]
    cfg = _read_toml(run_dir / "config.toml")
    info["model"], info["tokenizer"], info["training"] = cfg["model"], cfg["tokenizer"], cfg["training"]
    return info


def _macro_f1(acc: float, f1_pos: float, counts: list[int]) -> float | None:
    """Macro-F1 of a two-class task from accuracy, the F1 of class 1 (what the engine logs) and the
    class counts of the validation set: n0 = tn + fp, n1 = tp + fn, errors e = fp + fn = n (1 - acc),
    f1_pos = 2 tp / (2 tp + e) gives tp, then tn = n acc - tp. Exact up to float rounding."""
    if len(counts) != 2:
        return None
    n = sum(counts)
    e = n * (1.0 - acc)
    if e < 0.5:
        return 1.0
    tp = f1_pos * e / (2.0 * (1.0 - f1_pos)) if f1_pos < 1 else 0.0
    tn = n * acc - tp
    f1_neg = 2 * tn / (2 * tn + e) if (2 * tn + e) > 0 else 0.0
    return (f1_pos + f1_neg) / 2


def baseline(task: str, val_path: Path | None = None) -> dict:
    """What a model that ignores its input scores on the validation set."""
    from workbench.engine.config import load_experiment
    from workbench.engine.labelled import Columns, read_labelled

    t = load_experiment(ROOT / "examples" / f"{task}_finetune.toml").tasks[0]
    regression = t.kind == "regression" or (t.kind == "similarity" and t.score and not t.label)
    cols = Columns(text=t.text, text_pair=t.text_pair, label="" if regression else t.label,
                   score=t.score if regression else "", choices=t.choices, answer=t.answer,
                   answer_base=t.answer_base)
    train = read_labelled(t.train, cols)
    val = read_labelled(val_path or t.val, cols, train.labels or None)
    out = {"n_val": len(val.examples), "n_train": len(train.examples)}
    if regression:
        mean = sum(e.score for e in train.examples) / len(train.examples)
        out["mse"] = sum((e.score - mean) ** 2 for e in val.examples) / len(val.examples)
        out["what"] = f"predict the train mean {mean:.2f}: MSE {out['mse']:.3f}, Pearson undefined (constant)"
    elif t.kind == "multiple_choice":
        chance = sum(1 / len(e.choices) for e in val.examples) / len(val.examples)
        pos = [e.answer for e in train.examples]
        best = max(set(pos), key=pos.count)
        by_pos = sum(e.answer == best for e in val.examples) / len(val.examples)
        out.update(accuracy=chance, position=by_pos)
        out["what"] = (f"chance (1 / number of choices) {chance:.3f}; always choice {best + 1} (the most "
                       f"frequent right position in train) {by_pos:.3f}")
    else:
        labels = train.labels
        counts = [sum(e.label == lab for e in val.examples) for lab in labels]
        tr = [sum(e.label == lab for e in train.examples) for lab in labels]
        major = tr.index(max(tr))
        acc = counts[major] / len(val.examples)
        # constant prediction: F1 of the predicted class 2p/(1+p), 0 for the other
        out.update(accuracy=acc, macro_f1=(2 * acc / (1 + acc)) / len(labels), counts=counts)
        out["what"] = (f"always label {labels[major]} (the train majority): accuracy {acc:.3f}, macro-F1 "
                       f"{out['macro_f1']:.3f}; dev labels {dict(zip(labels, counts))}")
    return out


def finetune_row(task: str, init: str, freeze: str, lam: float, pre: dict, steps: int | None, out: Path,
                 threads: int, fresh: bool, base: dict, args_seed: int | None = None) -> dict:
    exp = ROOT / "examples" / f"{task}_finetune.toml"
    raw = _read_toml(exp)
    steps = steps or raw["training"]["max_steps"]
    name = f"{init} {freeze} lambda={lam:g}"
    seed = f"-seed{args_seed}" if args_seed is not None else ""
    name += f" seed={args_seed}" if args_seed is not None else ""
    run_dir = out / task / f"ft-{steps}-from-{Path(pre['run_dir']).name}" / f"{init}-{freeze}-lm{lam:g}{seed}"
    task_table = dict(raw["tasks"][0], lm_weight=lam)
    if val_override(task, out) is not None:
        task_table["val"] = str(val_override(task, out))
    sets = [f"training.max_steps={steps}", f"training.warmup_steps={max(1, steps // 10)}",
            f"finetune.freeze={freeze}"]
    if freeze == "gradual":  # heads + ln_f, then blocks from the top; embeddings thaw at 5/6 of the run
        sets.append(f"finetune.unfreeze_every={max(1, steps // (pre['model']['n_layer'] + 2))}")
    if init == "pretrained":
        sets.append(f"finetune.init={_toml_value(pre['run_dir'])}")
    else:
        sets.append(f"tokenizer.path={_toml_value(str(Path(pre['run_dir']) / 'tokenizer.json'))}")
    sets.append(f"tasks=[{_toml_value(task_table)}]")
    if threads:
        sets.append(f"training.threads={threads}")
    if args_seed is not None:
        sets.append(f"training.seed={args_seed}")
    # not --quiet: it also silences the reason of a failure
    cmd = [sys.executable, "-m", "workbench", "train", str(exp), "--run-dir", str(run_dir)]
    for s in sets:
        cmd += ["--set", s]
    info_path = run_dir / "experiments_row.json"
    if not fresh and info_path.exists():
        info = json.loads(info_path.read_text())
        info["cached"] = True
    else:
        if run_dir.exists():
            import shutil

            shutil.rmtree(run_dir)
        print("$ " + _shown(cmd), file=sys.stderr, flush=True)
        proc, wall, cpu, load = _run_cmd(cmd)
        if proc.returncode != 0:
            errors = [x for x in proc.stderr.splitlines() if x.startswith("error")] or proc.stderr.splitlines() or ["?"]
            return {"name": name, "error": errors[-1][:300], "cmd": _shown(cmd)}
        info = {"name": name, "wall_s": round(wall, 1), "cpu_s": round(cpu, 1), "load": [round(x, 2) for x in load],
                "cmd": _shown(cmd)}
        info_path.write_text(json.dumps(info, indent=1))
        info["cached"] = False
    if init == "scratch":  # the weights must be the only difference
        cfg = _read_toml(run_dir / "config.toml")
        if cfg["model"] != pre["model"]:
            raise SystemExit(f"{exp}: its [model] {cfg['model']} differs from the pretrained run's {pre['model']}; "
                             f"make them equal so that scratch and pretrained differ in their weights only.")
    recs = _val_records(run_dir, task)
    last = recs[-1]
    val = {k: last[k] for k in ("accuracy", "f1", "pearson", "spearman", "mse") if k in last}
    if "f1" in val and base.get("counts"):
        val["macro_f1"] = _macro_f1(val["accuracy"], val["f1"], base["counts"])
    train = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in train if r["split"] == "train" and "time" in r]
    info.update(task=task, init=init, freeze=freeze, lm_weight=lam, steps=last["step"], val=val,
                train_s=train[-1]["time"] if train else None, run_dir=str(run_dir))
    return info


def _fmt(v, key: str) -> str:
    return "–" if v is None else f"{v:.3f}"


def finetune_table(task: str, rows: list[dict], base: dict) -> str:
    cols = FT_TASKS[task]
    head = ["#", "init", "freezing", "λ"] + [h for _, h in cols] + ["train s", "wall s", "CPU s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for i, r in enumerate(rows, 1):
        if "error" in r:
            lines.append(f"| {i} | {r['name']} | error: {r['error']} |")
            continue
        cells = [_fmt(r["val"].get(k), k) for k, _ in cols]
        lines.append("| " + " | ".join([str(i), r["init"], {"none": "full"}.get(r["freeze"], r["freeze"]),
                                         f"{r['lm_weight']:g}", *cells, f"{r['train_s']:.0f}",
                                         f"{r['wall_s']:.0f}", f"{r['cpu_s']:.0f}"]) + " |")
    bcells = [_fmt(base.get(k), k) if k in base else "–" for k, _ in cols]
    lines.append("| – | baseline | no model | – | " + " | ".join(bcells) + " | – | – | – |")
    return "\n".join(lines)


def finetune_set(args, out: Path) -> str:
    tasks = list(FT_TASKS) if args.task == "all" else [args.task]
    report = []
    for task in tasks:
        base = baseline(task, val_override(task, out))
        pre = pretrain(task, args.pretrain_steps, out, args.threads)
        val = ", ".join(f"{s}: {v:.3f}" for s, v in pre["val"])
        cost = (f", {pre['wall_s']:.0f} s wall, {pre['cpu_s']:.0f} s CPU" if pre.get("wall_s") is not None else "")
        header = (f"## {task}\n\npretraining ({pre['steps']} steps{cost}{', cached' if pre['cached'] else ''}): "
                  f"validation LM loss by step {val}\n"
                  f"`{pre['cmd']}`\n\nbaseline: {base['what']}; {base['n_val']} validation examples\n")
        print(header, file=sys.stderr, flush=True)
        rows = []
        for init in INITS:
            for freeze in FREEZES:
                for lam in LAMBDAS:
                    name = f"{init} {freeze} lambda={lam:g}"
                    if args.only and not re.search(args.only, name):
                        continue
                    r = finetune_row(task, init, freeze, lam, pre, args.steps, out, args.threads, args.fresh, base,
                                     args.seed)
                    rows.append(r)
                    print(finetune_table(task, rows[-1:], base).splitlines()[2], file=sys.stderr, flush=True)
        table_md = finetune_table(task, rows, base)
        cmds = "\n".join(f"{i}. `{r['cmd']}`" for i, r in enumerate(rows, 1))
        total_cpu = (pre.get("cpu_s") or 0) * (not pre["cached"]) + sum(r.get("cpu_s") or 0 for r in rows
                                                                         if not r.get("cached"))
        section = f"{header}\n{table_md}\n\ncommands:\n\n{cmds}\n"
        report.append(section)
        folder = Path(rows[0]["run_dir"]).parent if rows and "run_dir" in rows[0] else out / task
        suffix = "" if args.seed is None and not args.only else re.sub(
            r"[^A-Za-z0-9=._-]+", "_", f"-{args.only or ''}-seed{args.seed}").rstrip("_")
        (folder / f"results{suffix}.json").write_text(json.dumps({"task": task, "pretrain": pre, "baseline": base,
                                                         "rows": rows}, indent=1, default=str))
        (folder / f"table{suffix}.md").write_text(section)
        print(f"{task}: {len(rows)} rows, CPU s spent in this call {total_cpu:.0f}", file=sys.stderr, flush=True)
    return "\n".join(report)


# -- issue #6: SST-2 in context --------------------------------------------------------------------

ICL_PROMPTS = {
    # name: extra eval options
    "qa": ["--verbalizer", "0=negative,1=positive"],   # default template "{text}\nAnswer:" + " {answer}"
    # closer to the pretraining text: lower-case tokenized review text, no newline, no "Answer:", and
    # demonstrations separated by <|endoftext|> as the corpus's sentences were (SST-2 texts end in a space)
    "sst": ["--verbalizer", "0=bad,1=good", "--template", "{text}it was", "--answer-template", " {answer} .",
            "--separator", "<|endoftext|>"],
}


def icl_sst2_set(args, out: Path) -> str:
    pre = pretrain("sst2", args.pretrain_steps, out, args.threads)
    data = DATA / "sst2"
    lines = [f"## sst2 in context\n\nmodel: `{pre['run_dir']}` (SST-2 pretraining, {pre['steps']} steps, block "
             f"{pre['model']['block_size']} tokens)\n"]
    results = {}
    for name, opts in ICL_PROMPTS.items():
        res_path = out / "sst2" / f"icl-{name}-draws{args.draws}-from-{Path(pre['run_dir']).name}.json"
        cmd = [sys.executable, "-m", "workbench", "eval", pre["run_dir"], "--data", str(data / "dev.tsv"),
               "--demos", str(data / "train.tsv"), "--text", "sentence", "--label", "label", *opts,
               "--k", "0,1,2,4,8", "--draws", str(args.draws), "--threads", str(args.threads or 1),
               "--attention", "0", "--out", str(res_path)]
        cost_path = res_path.with_suffix(".cost.json")
        if not (res_path.exists() and not args.fresh):
            print("$ " + _shown(cmd), file=sys.stderr, flush=True)
            proc, wall, cpu, _ = _run_cmd(cmd)
            if proc.returncode != 0:
                raise SystemExit(f"eval failed:\n{proc.stderr[-3000:]}")
            cost_path.write_text(json.dumps({"wall_s": round(wall, 1), "cpu_s": round(cpu, 1)}))
        res = json.loads(res_path.read_text())
        results[name] = res
        c = json.loads(cost_path.read_text()) if cost_path.exists() else None
        cost = f" ({c['wall_s']:.0f} s wall, {c['cpu_s']:.0f} s CPU)" if c else " (cached)"
        lines.append(f"prompt `{name}`{cost}: `{_shown(cmd)}`\n")
    lines.append("| k | " + " | ".join(f"{n}: accuracy ± std over draws | {n}: demos that fit"
                                       for n in results) + " |")
    lines.append("|---|" + "---|---|" * len(results))
    ks = next(iter(results.values()))["ks"]
    for i, k in enumerate(ks):
        cells = []
        for res in results.values():
            r = res["results"][i]
            cells += [f"{r['accuracy']:.3f} ± {r['std']:.3f}", f"{r['demos_used']:.2f}"]
        lines.append(f"| {k} | " + " | ".join(cells) + " |")
    first = next(iter(results.values()))
    lines.append(f"\nchance {first['chance']:.3f}, majority class {first['majority']:.3f}, "
                 f"{first['n_examples']} dev examples, {first['draws']} draws of demonstrations per k > 0\n")
    best = None
    for f in sorted(out.glob("sst2/ft-*/results.json")):
        for r in json.loads(f.read_text())["rows"]:
            if "val" in r and (best is None or r["val"]["accuracy"] > best["val"]["accuracy"]):
                best = r
    if best:
        lines.append(f"best fine-tuned SST-2 row: {best['name']} ({best['steps']} steps), dev accuracy "
                     f"{best['val']['accuracy']:.3f} (`{best['cmd']}`)\n")
    lines.append(icl_margins(pre["run_dir"], out, args.threads or 1))
    text = "\n".join(lines)
    (out / "sst2" / "icl-table.md").write_text(text)
    return text


def _auc(scores: list[float], labels: list[int]) -> float:
    """Probability that a random positive example scores above a random negative one (ties: half)."""
    order = sorted(range(len(scores)), key=scores.__getitem__)
    ranks = [0.0] * len(scores)
    i = 0
    while i < len(order):  # average ranks over ties
        j = i
        while j + 1 < len(order) and scores[order[j + 1]] == scores[order[i]]:
            j += 1
        for m in range(i, j + 1):
            ranks[order[m]] = (i + j) / 2 + 1
        i = j + 1
    pos = [r for r, y in zip(ranks, labels) if y == 1]
    n_pos, n_neg = len(pos), len(labels) - len(pos)
    return (sum(pos) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def icl_margins(run_dir: str, out: Path, threads: int) -> str:
    """Is there a signal under a constant prediction? For draw 0 of some k, the margin
    log P(positive word) - log P(negative word) of every dev example: its AUC against the labels,
    and the accuracy after contextual calibration (Zhao et al. 2021: subtract the margin the same
    prompt gives a content-free query, mean over "N/A", "" and "[MASK]")."""
    cache = out / "sst2" / f"icl-margins-from-{Path(run_dir).name}.json"
    if cache.exists():
        rows = json.loads(cache.read_text())
    else:
        import torch

        from workbench.engine.evaluate import InContextTask, PromptTemplate, default_template, score_prompts
        from workbench.engine.labelled import Columns, Example, read_labelled
        from workbench.engine.loading import load_trained

        torch.set_num_threads(threads)
        t0 = time.process_time()
        trained = load_trained(run_dir, "cpu", with_heads=False)
        cols = Columns(text="sentence", label="label")
        test = read_labelled(DATA / "sst2" / "dev.tsv", cols, ["0", "1"]).examples
        pool = read_labelled(DATA / "sst2" / "train.tsv", cols, ["0", "1"]).examples
        block = trained.model.config.block_size
        setups = {"qa": (default_template(), {"0": "negative", "1": "positive"}, (0,)),
                  "sst": (PromptTemplate(input="{text}it was", answer=" {answer} .", separator="<|endoftext|>"),
                          {"0": "bad", "1": "good"}, (0, 4))}
        rows = []
        for name, (tmpl, verb, ks) in setups.items():
            task = InContextTask(test, pool, tmpl, ["0", "1"], verb, 0)
            free = InContextTask([Example(t, label="1") for t in ("N/A ", "", "[MASK] ")], pool, tmpl, ["0", "1"],
                                 verb, 0)
            for k in ks:
                demos = task.demonstrations(k, 0)
                prompts = [task.prompt(i, k, 0, tokenizer=trained.tokenizer, block_size=block, demos=demos)
                           for i in range(len(test))]
                margins = [s[1] - s[0] for s in score_prompts(trained.model, prompts)]
                cf = [free.prompt(i, k, 0, tokenizer=trained.tokenizer, block_size=block, demos=demos)
                      for i in range(len(free.test))]
                shift = sum(s[1] - s[0] for s in score_prompts(trained.model, cf)) / len(cf)
                gold = [int(e.label) for e in test]
                rows.append({"prompt": name, "k": k,
                             "raw_acc": sum((m > 0) == g for m, g in zip(margins, gold)) / len(gold),
                             "auc": _auc(margins, gold), "shift": shift,
                             "calibrated_acc": sum((m - shift > 0) == g for m, g in zip(margins, gold)) / len(gold),
                             "predicted_positive": sum(m - shift > 0 for m in margins) / len(gold)})
        rows.append({"cpu_s": round(time.process_time() - t0, 1)})
        cache.write_text(json.dumps(rows, indent=1))
    cpu = rows[-1]["cpu_s"]
    lines = [f"margins (draw 0; `tools/experiments.py icl-sst2` computes them in-process, {cpu:.0f} s CPU):\n",
             "| prompt | k | accuracy (argmax) | AUC of the margin | content-free margin | accuracy, calibrated | "
             "share predicted positive, calibrated |", "|---|---|---|---|---|---|---|"]
    for r in rows[:-1]:
        lines.append(f"| {r['prompt']} | {r['k']} | {r['raw_acc']:.3f} | {r['auc']:.3f} | {r['shift']:+.2f} | "
                     f"{r['calibrated_acc']:.3f} | {r['predicted_positive']:.2f} |")
    return "\n".join(lines) + "\n"


SETS = {
    "multitask": (multitask, ["lm/loss", "mlm/accuracy", "continuity/accuracy"]),
}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("set", choices=sorted([*SETS, "finetune", "icl-sst2"]))
    p.add_argument("--steps", type=int, default=None,
                   help="training steps per row (multitask: default 600; finetune: default each "
                        "examples/TASK_finetune.toml's max_steps)")
    p.add_argument("--out", default=str(ROOT / "runs" / "experiments"),
                   help="run folders go to OUT/SET/... (finetune and icl-sst2 share OUT/finetune)")
    p.add_argument("--only", help="run only rows whose name contains this (finetune: a regular expression "
                   "searched in names such as 'pretrained none lambda=0.5')")
    p.add_argument("--threads", type=int, default=0, help="training.threads for every run (0: all cores; "
                   "the finetune examples set 1)")
    p.add_argument("--task", choices=[*FT_TASKS, "all"], default="all", help="finetune: which task (default all)")
    p.add_argument("--pretrain-steps", type=int, default=None,
                   help="finetune, icl-sst2: LM pretraining steps (default: examples/TASK_pretrain.toml's)")
    p.add_argument("--fresh", action="store_true", help="finetune, icl-sst2: rerun rows whose folder is complete")
    p.add_argument("--draws", type=int, default=5, help="icl-sst2: draws of demonstrations per k (default 5)")
    p.add_argument("--markdown", metavar="FILE", help="also write the printed tables to FILE")
    p.add_argument("--seed", type=int, default=None, help="finetune: training.seed for every row (default: the "
                   "TOML's); the run folders get a -seedN suffix, to measure the spread over seeds")
    args = p.parse_args()
    if args.set in ("finetune", "icl-sst2"):
        out = Path(args.out) / "finetune"
        out.mkdir(parents=True, exist_ok=True)
        text = finetune_set(args, out) if args.set == "finetune" else icl_sst2_set(args, out)
        print(text)
        if args.markdown:
            Path(args.markdown).write_text(text)
        return 0
    make_rows, columns = SETS[args.set]
    out = Path(args.out) / args.set
    results = []
    for name, exp, overrides in make_rows(args.steps or 600):
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
