"""training.compile, .precision and .attention: compiled and eager runs agree, so do the two attention kernels, a missing C++ compiler falls
back to eager with a message, "auto" measures once per machine and model shape and then reads its cache.

The compiled tests use a 2 x 32 model and a few steps; inductor's code cache is shared by the tests of
this module (one compile of each graph, then cache hits). They are marked slow and compile: together
they took 77 s of CPU (6 minutes of wall time on a 2-core machine at load 7); the resume test, which
finds its graphs cached, about a second. `pytest -m "not compile"` leaves them out.
"""

import json
import os

import pytest
import torch

from workbench.engine import checkpoint as ckpt
from workbench.engine import speed
from workbench.engine.config import Experiment
from workbench.engine.control import RunControl
from workbench.engine.events import AttentionSnapshot, ListReporter, RunStarted, StepMetrics
from workbench.engine.freezing import apply_trainable
from workbench.engine.model import GPT, GPTConfig
from workbench.engine.trainer import Trainer, saved_experiment

from .test_trainer import StopAt, tiny_experiment

COMPILE_ATOL = 1e-4   # fp32 compiled vs eager: fused kernels round differently (seen: ~1e-6)
BF16_ATOL = 0.05      # bf16 autocast vs fp32 on a loss near 3-4 nats over a few steps (seen: ~0.01)


@pytest.fixture(scope="module", autouse=True)
def shared_inductor_cache(tmp_path_factory):
    """One inductor cache for the module, so each graph is compiled by C++ once."""
    before = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(tmp_path_factory.mktemp("inductor"))
    yield
    if before is None:
        os.environ.pop("TORCHINDUCTOR_CACHE_DIR", None)
    else:
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = before


def _run(exp, folder, reporter=None, control=None, **kw):
    rep = reporter or ListReporter()
    result = Trainer(exp, run_dir=folder, **kw).run(control, rep)
    assert result.status in ("completed", "stopped"), result.message
    return rep, result


def _losses(rep):
    return [s.loss for s in rep.of(StepMetrics)]


needs_compiler = pytest.mark.skipif(speed.compiler_missing(torch.device("cpu")) is not None,
                                    reason="no C++ compiler for inductor here")
compiles = pytest.mark.compile


@pytest.mark.slow
@compiles
@needs_compiler
def test_compiled_and_eager_runs_give_the_same_losses_snapshots_and_checkpoints(small_text, tmp_path):
    settings = dict(max_steps=6, eval_every=3, attention_every=3, checkpoint_every=100)
    eager, _ = _run(tiny_experiment(small_text, compile="off", **settings), tmp_path / "eager")
    compiled, _ = _run(tiny_experiment(small_text, compile="on", **settings), tmp_path / "compiled")

    started = compiled.of(RunStarted)[0]
    assert started.compiled and started.compile_seconds > 0 and "compiled" in started.speed
    assert not eager.of(RunStarted)[0].compiled
    a, b = _losses(eager), _losses(compiled)
    assert len(a) == len(b) == 6 and a != [] and max(abs(x - y) for x, y in zip(a, b)) < COMPILE_ATOL
    # attention snapshots (the explicit path, eager in both) agree too
    sa, sb = eager.of(AttentionSnapshot), compiled.of(AttentionSnapshot)
    assert [s.step for s in sa] == [s.step for s in sb] == [0, 3, 6]
    assert all(abs(x.attention - y.attention).max() < 1e-3 for x, y in zip(sa, sb))
    # the checkpoint names the weights as an eager run does (no "_orig_mod." prefix)
    ta, _ = ckpt.load_checkpoint(ckpt.RunDir.open(tmp_path / "eager").checkpoint_path(6))
    tb, meta = ckpt.load_checkpoint(ckpt.RunDir.open(tmp_path / "compiled").checkpoint_path(6))
    assert set(ta) == set(tb) and not any("_orig_mod" in k for k in tb)
    assert meta["speed"] == {"compile": True, "precision": "fp32", "attention": "sdpa"}


@pytest.mark.slow
@compiles
@needs_compiler
@pytest.mark.parametrize("precision,attention", [("fp32", "sdpa"), ("bf16", "explicit")])
def test_a_compiled_run_resumes_bit_for_bit(small_text, tmp_path, precision, attention):
    """fp32 with SDPA and bf16 written out: what auto chooses on CPUs without and with bf16 instructions."""
    exp = tiny_experiment(small_text, compile="on", precision=precision, attention=attention, max_steps=8,
                          eval_every=0, checkpoint_every=100, attention_every=0)
    straight, _ = _run(exp, tmp_path / "a")
    control = RunControl()
    first = StopAt(control, 4)
    _run(exp, tmp_path / "b", first, control)
    second, _ = _run(saved_experiment(tmp_path / "b"), None, resume=tmp_path / "b")
    assert second.of(RunStarted)[0].compiled
    assert _losses(straight) == _losses(first) + _losses(second)


@pytest.mark.slow
@compiles
@needs_compiler
def test_a_compiled_model_recompiles_when_freezing_changes_and_frozen_weights_stay(tmp_path):
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=20, n_layer=2, n_head=2, n_embd=16, block_size=8))
    model.compile(dynamic=False)
    x = torch.randint(0, 20, (2, 8))
    opt = torch.optim.AdamW([p for p in model.parameters()], lr=1e-2)
    for _ in range(2):
        model(x, x)[1].backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    apply_trainable(model, {"block.1", "ln_f"})  # block 0 and the embeddings freeze
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    trained = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    assert frozen and trained
    model(x, x)[1].backward()
    assert all(p.grad is None for p in model.parameters() if not p.requires_grad)  # a new graph, not the old
    opt.step()
    assert all(torch.equal(p, frozen[n]) for n, p in model.named_parameters() if n in frozen)
    assert any(not torch.equal(p, trained[n]) for n, p in model.named_parameters() if n in trained)


@pytest.mark.slow
@compiles
@needs_compiler
def test_knocked_out_heads_change_a_compiled_model_as_they_change_an_eager_one():
    from workbench.engine.interpret import knocked_out

    torch.manual_seed(0)
    eager = GPT(GPTConfig(vocab_size=20, n_layer=2, n_head=2, n_embd=16, block_size=8)).eval()
    compiled = GPT(eager.config).eval()
    compiled.load_state_dict(eager.state_dict())
    compiled.compile(dynamic=False)
    x = torch.randint(0, 20, (1, 8))
    with torch.no_grad():
        plain = compiled(x)[0]
        with knocked_out(eager, [(1, 0)]), knocked_out(compiled, [(1, 0)]):
            a, b = eager(x)[0], compiled(x)[0]
    assert torch.allclose(a, b, atol=1e-5) and not torch.allclose(plain, b, atol=1e-3)


def test_bf16_and_fp32_give_close_losses(small_text, tmp_path):
    settings = dict(max_steps=5, eval_every=0, attention_every=0, checkpoint_every=100, compile="off")
    fp32, _ = _run(tiny_experiment(small_text, precision="fp32", **settings), tmp_path / "fp32")
    bf16, _ = _run(tiny_experiment(small_text, precision="bf16", **settings), tmp_path / "bf16")
    assert bf16.of(RunStarted)[0].precision == "bf16"
    a, b = _losses(fp32), _losses(bf16)
    assert a != b and max(abs(x - y) for x, y in zip(a, b)) < BF16_ATOL


def test_a_bf16_run_resumes_bit_for_bit(small_text, tmp_path):
    """What auto may choose on a CPU with bf16 instructions: autocast keeps a resume exact too."""
    exp = tiny_experiment(small_text, compile="off", precision="bf16", max_steps=8, eval_every=0,
                          checkpoint_every=100, attention_every=0)
    straight, _ = _run(exp, tmp_path / "a")
    control = RunControl()
    first = StopAt(control, 4)
    _run(exp, tmp_path / "b", first, control)
    second, _ = _run(saved_experiment(tmp_path / "b"), None, resume=tmp_path / "b")
    assert second.of(RunStarted)[0].precision == "bf16"
    assert len(_losses(straight)) == 8 and _losses(straight) == _losses(first) + _losses(second)


def test_without_a_cpp_compiler_compile_on_trains_eagerly_and_says_so(small_text, tmp_path, monkeypatch):
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))  # no g++ (or $CXX) to be found
    monkeypatch.delenv("CXX", raising=False)
    assert speed.cpp_compiler() is None
    rep, result = _run(tiny_experiment(small_text, compile="on", max_steps=4, eval_every=0, attention_every=0),
                       tmp_path / "run")
    started = rep.of(RunStarted)[0]
    assert result.status == "completed" and len(rep.of(StepMetrics)) == 4
    assert not started.compiled
    assert "training.compile = 'on'" in started.speed and "no C++ compiler" in started.speed
    assert "g++" in started.speed and "eagerly" in started.speed


def test_a_failed_compile_falls_back_to_eager(small_text, tmp_path, monkeypatch):
    def broken(*a, **k):
        raise RuntimeError("the C++ compiler said no")

    monkeypatch.setattr(speed, "compiler_missing", lambda device: None)
    monkeypatch.setattr(speed, "compile_in_place", broken)
    rep, result = _run(tiny_experiment(small_text, compile="on", max_steps=3, eval_every=0, attention_every=0),
                       tmp_path / "run")
    started = rep.of(RunStarted)[0]
    assert result.status == "completed" and not started.compiled
    assert "compiling failed (RuntimeError: the C++ compiler said no)" in started.speed


def test_auto_probes_once_then_reads_its_cache(small_text, tmp_path, monkeypatch):
    """The probe (here fp32 and bf16, each with SDPA and with attention written out, eager: no
    compiler) runs on the first run and is read from the cache by the second: no second measurement."""
    monkeypatch.setattr(speed, "PAYBACK_SECONDS", 0.0)  # the tiny run counts as long enough
    monkeypatch.setattr(speed, "PROBE_SECONDS", 0.0)
    monkeypatch.setattr(speed, "cpu_bf16", lambda: True)
    monkeypatch.setattr(speed, "compiler_missing", lambda device: "no compiler (test)")
    probes = []
    real = speed._measure_variants

    def counting(model, task, tc, device, variants, seconds):
        if len(variants) > 1:
            probes.append(variants)
        return real(model, task, tc, device, variants, seconds)

    monkeypatch.setattr(speed, "_measure_variants", counting)
    exp = tiny_experiment(small_text, max_steps=2, eval_every=0, attention_every=0)
    first, _ = _run(exp, tmp_path / "one")
    assert probes == [[(False, "fp32", "sdpa"), (False, "fp32", "explicit"), (False, "bf16", "sdpa"),
                       (False, "bf16", "explicit")]]  # eager only: nothing to compile, no second round
    cache = json.loads(speed.probe_cache_path().read_text())
    (key, entry), = cache.items()
    assert "L2 H2 C32 T32" in key and "fp32/bf16" in key and "sdpa/explicit" in key
    assert set(entry["speedups"]) == {"eager fp32", "eager fp32 + explicit attention", "eager bf16",
                                      "eager bf16 + explicit attention"}
    assert "measured on this machine" in first.of(RunStarted)[0].speed

    second, _ = _run(exp, tmp_path / "two")
    assert len(probes) == 1  # read, not measured again
    reason = second.of(RunStarted)[0].speed
    assert "(cached)" in reason
    speedups = entry["speedups"]
    best = max(speedups, key=speedups.get) if max(speedups.values()) >= speed.MARGIN else "eager fp32"
    assert reason.startswith(best + ":")
    assert second.of(RunStarted)[0].precision == ("bf16" if "bf16" in best else "fp32")
    _, meta = ckpt.load_checkpoint(ckpt.RunDir.open(tmp_path / "two").checkpoint_path(2))
    assert meta["speed"]["attention"] == ("explicit" if "explicit" in best else "sdpa")


def test_the_probe_compiles_only_the_kernel_that_won_eagerly(tmp_path, monkeypatch):
    """Round one times the kernels eagerly; round two compiles each precision with its winner (here
    bf16 wins written out, fp32 with SDPA) and times it against the baseline."""
    rounds = []

    def fake(model, task, tc, device, variants, seconds):
        rounds.append(variants)
        fast = {(False, "bf16", "explicit"): 1.4, (True, "bf16", "explicit"): 1.8, (True, "fp32", "sdpa"): 1.2}
        return {"speedups": {speed._name(*v): fast.get(v, 1.0 if v[2] == "sdpa" else 0.9) for v in variants},
                "failed": {}, "step_ms": 40.0, "compile_seconds": 9.0, "rounds": 3}

    monkeypatch.setattr(speed, "_measure_variants", fake)
    entry = speed._probe(None, [None], None, torch.device("cpu"), ["fp32", "bf16"], [False, True],
                         ["sdpa", "explicit"])
    assert rounds[1] == [(False, "fp32", "sdpa"), (True, "fp32", "sdpa"), (False, "bf16", "explicit"),
                         (True, "bf16", "explicit")]
    assert entry["candidates"] == [list(v) for v in rounds[1]]
    assert entry["speedups"]["compiled bf16 + explicit attention"] == 1.8
    assert entry["speedups"]["eager fp32 + explicit attention"] == 0.9  # round one's figures are kept


def test_auto_skips_the_probe_for_a_run_too_short_to_pay(small_text, tmp_path, monkeypatch):
    monkeypatch.setattr(speed, "cpu_bf16", lambda: True)
    rep, _ = _run(tiny_experiment(small_text, max_steps=3, eval_every=0, attention_every=0), tmp_path / "run")
    started = rep.of(RunStarted)[0]
    assert not started.compiled and started.precision == "fp32"
    assert "too short for compiling or a probe to pay" in started.speed
    assert not speed.probe_cache_path().exists()


def test_a_resume_keeps_what_auto_chose(small_text, tmp_path, monkeypatch):
    """A run whose probe chose bf16 resumes in bf16 even where the probe would now choose otherwise."""
    exp = tiny_experiment(small_text, max_steps=4, eval_every=0, attention_every=0, checkpoint_every=2)
    monkeypatch.setattr(speed, "_choose", lambda *a: speed.SpeedPlan(
        False, speed.resolve_precision("bf16", torch.device("cpu")), "eager bf16: test"))
    _run(exp.with_overrides(["training.max_steps=2"]), tmp_path / "run")
    monkeypatch.undo()
    rep, _ = _run(saved_experiment(tmp_path / "run").with_overrides(["training.max_steps=4"]), None,
                  resume=tmp_path / "run")
    started = rep.of(RunStarted)[0]
    assert started.precision == "bf16" and "as the run was trained" in started.speed


def test_a_variant_that_fails_in_the_probe_is_left_out_and_named(small_text, tmp_path, monkeypatch):
    """A compile error or an out-of-memory in one variant's probe step must not fail the run."""
    monkeypatch.setattr(speed, "PAYBACK_SECONDS", 0.0)
    monkeypatch.setattr(speed, "PROBE_SECONDS", 0.0)
    monkeypatch.setattr(speed, "cpu_bf16", lambda: False)
    monkeypatch.setattr(speed, "compiler_missing", lambda device: "no compiler (test)")
    real_step = speed._Variant.step

    def step(self):
        if self.model.attention_kernel == "explicit":
            raise torch.OutOfMemoryError("out of memory (test)")
        return real_step(self)

    monkeypatch.setattr(speed._Variant, "step", step)
    rep, result = _run(tiny_experiment(small_text, max_steps=2, eval_every=0, attention_every=0), tmp_path / "run")
    started = rep.of(RunStarted)[0]
    assert result.status == "completed" and started.speed.startswith("eager fp32:")
    assert "eager fp32 + explicit attention failed (OutOfMemoryError: out of memory (test))" in started.speed
    (entry,) = json.loads(speed.probe_cache_path().read_text()).values()
    assert entry["speedups"]["eager fp32 + explicit attention"] == 0.0


def test_auto_leaves_attention_written_out_alone_where_its_weights_would_not_fit(small_text, tmp_path,
                                                                                 monkeypatch):
    monkeypatch.setattr(speed, "PAYBACK_SECONDS", 0.0)
    monkeypatch.setattr(speed, "PROBE_SECONDS", 0.0)
    monkeypatch.setattr(speed, "cpu_bf16", lambda: True)
    monkeypatch.setattr(speed, "compiler_missing", lambda device: "no compiler (test)")
    # the tiny model keeps 2 x 4 bytes x B 8 x 2 heads x 32^2 x 2 layers = 256 KiB of attention weights
    monkeypatch.setattr(speed, "WRITTEN_OUT_BYTES", 256 * 1024 - 1)
    rep, _ = _run(tiny_experiment(small_text, max_steps=2, eval_every=0, attention_every=0), tmp_path / "run")
    (key, entry), = json.loads(speed.probe_cache_path().read_text()).items()
    assert set(entry["speedups"]) == {"eager fp32", "eager bf16"} and "explicit" not in key
    assert "explicit" not in rep.of(RunStarted)[0].speed


def test_explicit_attention_and_sdpa_give_the_same_losses_and_a_bf16_run_written_out_resumes_exactly(
        small_text, tmp_path):
    """The two kernels compute one function (fp32: rounding apart); bf16 with attention written out,
    what auto chooses on an AVX512-BF16 CPU, stays close to fp32 and resumes bit for bit."""
    settings = dict(max_steps=5, eval_every=0, attention_every=0, checkpoint_every=100, compile="off")
    sdpa, _ = _run(tiny_experiment(small_text, precision="fp32", attention="sdpa", **settings), tmp_path / "a")
    written, _ = _run(tiny_experiment(small_text, precision="fp32", attention="explicit", **settings),
                      tmp_path / "b")
    a, b = _losses(sdpa), _losses(written)
    assert len(a) == 5 and max(abs(x - y) for x, y in zip(a, b)) < COMPILE_ATOL
    assert "eager fp32 + explicit attention" in written.of(RunStarted)[0].speed

    exp = tiny_experiment(small_text, compile="off", precision="bf16", attention="explicit", max_steps=8,
                          eval_every=0, checkpoint_every=100, attention_every=0)
    straight, _ = _run(exp, tmp_path / "c")
    assert max(abs(x - y) for x, y in zip(_losses(straight), a)) < BF16_ATOL
    control = RunControl()
    first = StopAt(control, 4)
    _run(exp, tmp_path / "d", first, control)
    second, _ = _run(saved_experiment(tmp_path / "d"), None, resume=tmp_path / "d")
    assert _losses(straight) == _losses(first) + _losses(second)


def test_a_resume_keeps_the_attention_kernel_auto_chose(small_text, tmp_path, monkeypatch):
    exp = tiny_experiment(small_text, max_steps=4, eval_every=0, attention_every=0, checkpoint_every=2)
    monkeypatch.setattr(speed, "_choose", lambda *a: speed.SpeedPlan(
        False, speed.resolve_precision("fp32", torch.device("cpu")), "eager fp32: test", attention="explicit"))
    _run(exp.with_overrides(["training.max_steps=2"]), tmp_path / "run")
    monkeypatch.undo()
    rep, _ = _run(saved_experiment(tmp_path / "run").with_overrides(["training.max_steps=4"]), None,
                  resume=tmp_path / "run")
    assert rep.of(RunStarted)[0].speed.startswith("eager fp32 + explicit attention: as the run was trained")


def test_compile_setting_is_checked_with_a_clear_message():
    from workbench.engine.errors import ConfigError

    with pytest.raises(ConfigError, match=r"training.compile = 'yes' is not one of 'auto', 'on', 'off'"):
        Experiment(name="t").with_overrides(["training.compile=yes"])
