"""Levers of the training step, interleaved in one process (docs/BENCHMARKS.md, issue #13).

Usage: python tools/speed_levers.py L H C T B ROUNDS [VARIANT,VARIANT,...]
(4 4 128 64 12 40 is Tiny Shakespeare's model and batch). The first variant is the baseline; the
default list is every variant. Each variant is a copy of one model trained on one fixed batch
(forward + loss, backward, clip with its host sync, AdamW, zero_grad); the rounds take one step of
each in turn, so a noisy neighbour slows each alike. Every compiled variant compiles its own
function (its own code object), so dynamo does not hand it another variant's graph. Prints one
JSON line: the speed of each over the baseline by median wall time and by median CPU time of the
calling thread (steadier on a loaded machine with one thread: WB_THREADS=1), the load average,
and each variant's compile time. Compiled code is cached under $TORCHINDUCTOR_CACHE_DIR.
"""
import contextlib
import copy
import json
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from workbench.engine.model import GPT, GPTConfig  # noqa: E402

THREADS = int(os.environ.get("WB_THREADS", "0")) or torch.get_num_threads()

VARIANTS = {  # name: options of make()
    "eager": {},
    "eager bf16": {"bf16": True},
    "eager foreach AdamW": {"adamw": "foreach"},
    "eager for-loop AdamW": {"adamw": "loop"},
    "eager no host sync": {"sync": False},
    "eager explicit attention": {"explicit": True},
    "eager 1 thread": {"threads": 1},
    "eager mkldnn off": {"mkldnn": False},
    "compiled": {"compiled": True},
    "compiled bf16": {"compiled": True, "bf16": True},
    "compiled cpp_wrapper": {"compiled": True, "options": {"cpp_wrapper": True}},
    "compiled max-autotune": {"compiled": True, "options": {"max_autotune": True}},
    "compiled explicit attention": {"compiled": True, "explicit": True},
    "compiled + compiled AdamW": {"compiled": True, "adamw": "compiled"},
    "compiled bf16 explicit attention": {"compiled": True, "bf16": True, "explicit": True},
    "eager bf16 explicit attention": {"bf16": True, "explicit": True},
    "compiled bf16 explicit attention cpp_wrapper": {"compiled": True, "bf16": True, "explicit": True,
                                                     "options": {"cpp_wrapper": True}},
    "compiled bf16 explicit attention aten-gelu": {"compiled": True, "bf16": True, "explicit": True,
                                                    "aten_gelu": True},
}


def make(base, x, y, compiled=False, options=None, bf16=False, adamw="fused", sync=True, explicit=False,
         threads=None, mkldnn=True, aten_gelu=False):
    model = copy.deepcopy(base)
    if aten_gelu:  # ATen's tanh GELU kernel under compile too (the model writes it with sigmoid there)
        for block in model.transformer.h:
            block.mlp.gelu = torch.nn.GELU(approximate="tanh")
    if explicit:  # the model's own switch (what training.attention = "explicit" sets)
        model.attention_kernel = "explicit"
    kw = {"fused": True} if adamw == "fused" else {"foreach": True} if adamw == "foreach" else {"foreach": False}
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, **kw)
    ns = {"model": model}
    exec(f"def loss_{id(model)}(x, y):\n    return model(x, y)[1]\n", ns)  # a code object of its own
    loss_fn = ns[f"loss_{id(model)}"]
    if compiled:
        loss_fn = torch.compile(loss_fn, dynamic=False, options=options)
    opt_step = torch.compile(opt.step) if adamw == "compiled" else opt.step

    def step():
        torch.set_num_threads(threads or THREADS)
        torch.backends.mkldnn.enabled = mkldnn
        with torch.autocast("cpu", torch.bfloat16) if bf16 else contextlib.nullcontext():
            loss = loss_fn(x, y)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        if sync:
            norm.item(), loss.item()
        opt_step()
        opt.zero_grad(set_to_none=True)
        torch.set_num_threads(THREADS)
        torch.backends.mkldnn.enabled = True
    return step


def main():
    L, H, C, T, B, rounds = (int(a) for a in sys.argv[1:7])
    names = sys.argv[7].split(",") if len(sys.argv) > 7 else list(VARIANTS)
    torch.manual_seed(0)
    torch._dynamo.config.recompile_limit = 64
    base = GPT(GPTConfig(vocab_size=65, n_layer=L, n_head=H, n_embd=C, block_size=T))
    x, y = torch.randint(0, 65, (B, T)), torch.randint(0, 65, (B, T))
    steps, compile_s = {}, {}
    for name in names:
        steps[name] = make(base, x, y, **VARIANTS[name])
        t0 = time.perf_counter()
        steps[name]()
        steps[name]()  # compiles a compiled variant (forward, backward); warms an eager one
        compile_s[name] = round(time.perf_counter() - t0, 1)
    wall = {n: [] for n in names}
    cpu = {n: [] for n in names}
    load = os.getloadavg()[0]
    for _ in range(rounds):
        for name, step in steps.items():
            t0, c0 = time.perf_counter(), time.thread_time()
            step()
            wall[name].append(time.perf_counter() - t0)
            cpu[name].append(time.thread_time() - c0)
    w0, c0 = statistics.median(wall[names[0]]), statistics.median(cpu[names[0]])
    print(json.dumps({
        "shape": {"n_layer": L, "n_head": H, "n_embd": C, "block_size": T, "batch_size": B}, "rounds": rounds,
        "threads": THREADS, "baseline": names[0], "base_step_ms": round(1000 * w0, 2),
        "speed_wall": {n: round(w0 / statistics.median(v), 3) for n, v in wall.items()},
        "speed_cpu": {n: round(c0 / statistics.median(v), 3) for n, v in cpu.items()},
        "first_two_steps_s": compile_s, "load_avg": [round(load, 2), round(os.getloadavg()[0], 2)],
        "cpu": next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")),
                    "?") if os.path.exists("/proc/cpuinfo") else "?",
    }))


if __name__ == "__main__":
    main()
