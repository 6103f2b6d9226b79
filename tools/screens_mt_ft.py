"""Screenshots of the Tasks, Task balance and Fine-tune panels, fed by short real runs.

    xvfb-run -s "-screen 0 1600x1000x24" python tools/screens_mt_ft.py [--out docs/screenshots]

Trains (in temporary folders, on data this script writes itself, a minute or so on 2 cores):
a multi-task run (next-token + masked tokens + continuity, uncertainty weighting) whose events feed
the Task balance panel, and a tiny char-level model that is then fine-tuned on a generated
sentiment task with gradual unfreezing and discriminative rates, whose events feed the Fine-tune
panel. Saves tasks.png, balance.png, finetune.png (training views) and finetune_inspector.png.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

GOOD = "good great fine lovely superb moving".split()
BAD = "bad awful poor dull terrible boring".split()
FILL = "the film was and a plot with acting music story cast".split()


def review(rng: random.Random, positive: bool) -> str:
    words = [rng.choice(FILL) for _ in range(rng.randint(4, 8))]
    words.insert(rng.randrange(len(words)), rng.choice(GOOD if positive else BAD))
    return " ".join(words)


def write_data(folder: Path) -> tuple[Path, Path, Path]:
    rng = random.Random(0)
    text = folder / "reviews.txt"
    text.write_text("\n".join(review(rng, rng.random() < 0.5) + "." for _ in range(3000)) + "\n")
    files = []
    for name, n in (("train", 600), ("dev", 120)):
        rows = ["sentence\tlabel"]
        for _ in range(n):
            y = rng.random() < 0.5
            rows.append(f"{review(rng, y)}\t{'positive' if y else 'negative'}")
        path = folder / f"{name}.tsv"
        path.write_text("\n".join(rows) + "\n")
        files.append(path)
    return text, files[0], files[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    ap.add_argument("--size", default="1220x860", help="panel size WIDTHxHEIGHT (the window's page area)")
    ap.add_argument("--work", default="", help="keep runs in this folder and reuse them next time (faster)")
    args = ap.parse_args()
    tmp = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="workbench-mtft-"))
    tmp.mkdir(parents=True, exist_ok=True)
    os.environ["WORKBENCH_DATA_DIR"] = str(tmp / "data")
    os.environ["WORKBENCH_CACHE_DIR"] = str(tmp / "cache")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    width, height = (int(v) for v in args.size.lower().split("x"))

    from PySide6 import QtCore, QtWidgets

    from workbench.gui.app import create_app

    app = create_app()
    from workbench import paths
    from workbench.engine.config import Experiment, FinetuneConfig, MultitaskConfig, TaskConfig
    from workbench.engine.events import EvalResult, FreezeChanged, ListReporter, StepMetrics, TaskBalance
    from workbench.engine.trainer import Trainer
    from workbench.gui.panels.balance_panel import BalancePanel
    from workbench.gui.panels.finetune.page import FinetunePanel
    from workbench.gui.panels.tasks_panel import TasksPanel

    text, train, dev = write_data(tmp)

    def cached(path: Path, run) -> ListReporter:
        """Events of a run; with --work, kept in a pickle of this script's own making and reused."""
        import pickle

        rep = ListReporter()
        if args.work and path.exists():
            rep.events = pickle.loads(path.read_bytes())
            return rep
        run(rep)
        if args.work:
            path.write_bytes(pickle.dumps(rep.events))
        return rep

    def spin(seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            app.processEvents(QtCore.QEventLoop.ProcessEventsFlag.AllEvents, 50)
            time.sleep(0.02)

    def frame(panel: QtWidgets.QWidget) -> QtWidgets.QWidget:
        host = QtWidgets.QWidget()
        host.setObjectName("central")
        host.setStyleSheet("QWidget#central { background: #f4f5f7; }")
        lay = QtWidgets.QVBoxLayout(host)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(panel)
        host.resize(width, height)
        host.show()
        return host

    def shoot(host: QtWidgets.QWidget, name: str) -> None:
        spin(0.8)
        path = out / name
        host.grab().save(str(path))
        print(f"saved {path}", flush=True)

    small = ["model.n_layer=4", "model.n_head=4", "model.n_embd=64", "model.block_size=64",
             "training.batch_size=16", "training.learning_rate=2e-3", "training.min_lr=2e-4",
             "training.warmup_steps=20", "training.eval_batches=4", "training.attention_every=0",
             "training.checkpoint_every=0", "tokenizer.kind=char", "training.threads=1"]

    # ---- tasks and balance: a multi-task run -------------------------------------------------
    t0 = time.monotonic()
    mt_exp = Experiment(name="multitask").with_overrides(small + [
        f'corpus.paths=["{text}"]', "training.max_steps=300", "training.eval_every=30",
        'tasks=[{kind="causal_lm"}, {kind="masked_lm", weight=0.5}, {kind="continuity", weight=0.3}]',
        'multitask.weighting="uncertainty"', "multitask.conflict_every=15"])
    rep = cached(tmp / "multitask-events.pkl",
                 lambda r: Trainer(mt_exp, run_dir=paths.runs_dir() / "multitask").run(reporter=r))
    print(f"multi-task run: {time.monotonic() - t0:.0f} s", flush=True)

    tasks = TasksPanel()
    shown_tasks = (TaskConfig(kind="causal_lm"), TaskConfig(kind="masked_lm", weight=0.5),
                   TaskConfig(kind="continuity", weight=0.3))
    tasks.set_config(shown_tasks, MultitaskConfig(sampling="temperature", temperature=2.0, weighting="fixed",
                                                  conflict_every=50))
    host = frame(tasks)
    shoot(host, "tasks.png")
    host.close()

    balance = BalancePanel()
    for e in rep.events:
        if isinstance(e, StepMetrics):
            balance.on_step(e)
        elif isinstance(e, EvalResult):
            balance.on_eval(e)
        elif isinstance(e, TaskBalance):
            balance.on_balance(e)
    host = frame(balance)
    balance.refresh(force=True)
    balance.select(len(balance.snapshots()) * 2 // 3)
    spin(0.3)
    balance.refresh(force=True)
    shoot(host, "balance.png")
    host.close()

    # ---- fine-tuning: pretrain, then fine-tune with gradual unfreezing --------------------------
    t0 = time.monotonic()
    pre = paths.runs_dir() / "reviews-pretrained"
    pre_exp = Experiment(name="reviews-pretrained").with_overrides(small + [
        f'corpus.paths=["{text}"]', "training.max_steps=200", "training.eval_every=100"])
    if not (pre / "checkpoints").is_dir():
        Trainer(pre_exp, run_dir=pre).run()
    ft_task = TaskConfig(kind="classification", name="sentiment", train=str(train), val=str(dev),
                         text="sentence", label="label", lm_weight=0.5)
    ft_cfg = FinetuneConfig(init=str(pre), freeze="gradual", unfreeze_every=40, discriminative=True)
    ft_exp = pre_exp.replace(name="sentiment", tasks=(ft_task,), finetune=ft_cfg).with_overrides(
        ["training.max_steps=240", "training.eval_every=20", "training.warmup_steps=10"])
    rep = cached(tmp / "finetune-events.pkl",
                 lambda r: Trainer(ft_exp, run_dir=paths.runs_dir() / "sentiment").run(reporter=r))
    print(f"pretraining and fine-tuning: {time.monotonic() - t0:.0f} s", flush=True)

    ft = FinetunePanel()
    host = frame(ft)
    ft.refresh_checkpoints()
    ft.wait_for_runs()
    spin(0.3)
    ft.set_config(ft_task, ft_cfg, enabled=True)
    ft.set_run_shape(max_steps=240, n_layer=4, learning_rate=2e-3)
    ft.wait_for_check()
    spin(0.5)
    ft.reset()
    stop_at = 170  # a run in progress: the lanes show where it is
    for e in rep.events:
        if getattr(e, "step", 0) > stop_at:
            continue
        if isinstance(e, StepMetrics):
            ft.on_step(e)
        elif isinstance(e, EvalResult):
            ft.on_eval(e)
        elif isinstance(e, FreezeChanged):
            ft.on_freeze(e)
    ft.refresh(force=True)
    shoot(host, "finetune.png")
    ft.tabs.setCurrentWidget(ft.inspector)
    ft.inspector.index_spin.setValue(3)
    shoot(host, "finetune_inspector.png")
    host.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
