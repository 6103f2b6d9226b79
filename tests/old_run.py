"""A run folder as the workbench wrote it before metrics rows named their metric (issue #12): a
two-task run (language model + continuity), its metrics.jsonl written literally, line by line, as
the old trainer wrote it. Readers must still open it."""

from pathlib import Path

CONFIG = """name = "old-mt"

[corpus]
paths = ["builtin:toy"]

[tokenizer]
kind = "char"

[model]
n_layer = 2
n_head = 2
n_embd = 32
block_size = 32

[training]
max_steps = 4
eval_every = 2

[[tasks]]
kind = "causal_lm"

[[tasks]]
kind = "continuity"
weight = 0.5
"""

# The old writer: a "total" row with the run-wide numbers, then one row per task and one per task
# metric, the metric as task "TASK/METRIC" with its value in "loss"; validation rows carry their
# metrics as columns (that part is unchanged).
METRICS = """\
{"task": "total", "loss": 4.5, "step": 1, "split": "train", "lr": 0.001, "tokens": 256, "time": 0.05, "tokens_per_s": 5120.0, "grad_norm": 1.9}
{"step": 1, "split": "train", "task": "lm", "loss": 4.2}
{"step": 1, "split": "train", "task": "continuity", "loss": 0.69}
{"step": 1, "split": "train", "task": "continuity/accuracy", "loss": 0.5}
{"task": "total", "loss": 4.1, "step": 2, "split": "train", "lr": 0.002, "tokens": 512, "time": 0.1, "tokens_per_s": 5120.0, "grad_norm": 1.5}
{"step": 2, "split": "train", "task": "lm", "loss": 3.8}
{"step": 2, "split": "train", "task": "continuity", "loss": 0.66}
{"step": 2, "split": "train", "task": "continuity/accuracy", "loss": 0.625}
{"step": 2, "split": "val", "task": "lm", "loss": 3.9, "tokens": 512, "time": 0.1, "ppl": 49.4}
{"step": 2, "split": "val", "task": "continuity", "loss": 0.67, "tokens": 512, "time": 0.1, "accuracy": 0.6}
{"task": "total", "loss": 3.7, "step": 3, "split": "train", "lr": 0.002, "tokens": 768, "time": 0.15, "tokens_per_s": 5120.0, "grad_norm": 1.2}
{"step": 3, "split": "train", "task": "lm", "loss": 3.4}
{"step": 3, "split": "train", "task": "continuity", "loss": 0.6}
{"step": 3, "split": "train", "task": "continuity/accuracy", "loss": 0.75}
{"task": "total", "loss": 3.5, "step": 4, "split": "train", "lr": 0.001, "tokens": 1024, "time": 0.2, "tokens_per_s": 5120.0, "grad_norm": 1.1}
{"step": 4, "split": "train", "task": "lm", "loss": 3.2}
{"step": 4, "split": "train", "task": "continuity", "loss": 0.58}
{"step": 4, "split": "train", "task": "continuity/accuracy", "loss": 0.875}
{"step": 4, "split": "val", "task": "lm", "loss": 3.5, "tokens": 1024, "time": 0.2, "ppl": 33.1}
{"step": 4, "split": "val", "task": "continuity", "loss": 0.62, "tokens": 1024, "time": 0.2, "accuracy": 0.7}
"""

TRAIN_ACCURACY = [0.5, 0.625, 0.75, 0.875]  # continuity's, steps 1-4
VAL_ACCURACY = [0.6, 0.7]                    # continuity's, steps 2 and 4


def write_old_run(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "config.toml").write_text(CONFIG, encoding="utf-8")
    (path / "metrics.jsonl").write_text(METRICS, encoding="utf-8")
    return path
