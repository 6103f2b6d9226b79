"""Levers of the eager training step, interleaved in one process (docs/BENCHMARKS.md, issue #13): AdamW
implementation, host syncs, threads, mkldnn. Usage: python tools/speed_levers.py L H C T B ROUNDS
(4 4 128 64 12 12 is Tiny Shakespeare's model). Prints one JSON line: speed of each over the engine's step."""
import copy
import json
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from workbench.engine.model import GPT, GPTConfig
torch.manual_seed(0)
L, H, C, T, B, N = [int(a) for a in sys.argv[1:7]]
cfg = GPTConfig(vocab_size=65, n_layer=L, n_head=H, n_embd=C, block_size=T)
base = GPT(cfg)
x = torch.randint(0, 65, (B, T)); y = torch.randint(0, 65, (B, T))
def make(opt_kind="fused", sync=True, threads=2, mkldnn=True):
    m = copy.deepcopy(base)
    kw = {"fused": True} if opt_kind == "fused" else {"foreach": True} if opt_kind == "foreach" else {"foreach": False}
    opt = torch.optim.AdamW(m.parameters(), lr=1e-3, **kw)
    def step():
        torch.set_num_threads(threads)
        torch.backends.mkldnn.enabled = mkldnn
        _, loss = m(x, y)
        loss.backward()
        n = torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
        if sync:
            n.item(); loss.item()
        opt.step(); opt.zero_grad(set_to_none=True)
    return step
variants = {"fused AdamW (engine)": make(), "foreach AdamW": make("foreach"), "for-loop AdamW": make("loop"),
            "no host syncs": make(sync=False), "1 thread": make(threads=1), "mkldnn off": make(mkldnn=False)}
times = {k: [] for k in variants}
for s in variants.values(): s(); s()
for r in range(N):
    for k, s in variants.items():
        t0 = time.perf_counter(); s(); times[k].append(time.perf_counter() - t0)
b = statistics.median(times["fused AdamW (engine)"])
out = {k: round(b / statistics.median(v), 3) for k, v in times.items()}
print(json.dumps({"shape": sys.argv[1:6], "rounds": N, "base_step_ms": round(1000*b, 1), "speed_vs_engine": out, "load": os.getloadavg()}))
