"""`workbench bench gpu`: without CUDA a clear message and exit 2; the FLOP count behind its MFU; a tiny CPU
dry run (the --tiny testing option) that prints the JSON the GPU run prints."""

import json
import subprocess
import sys

import pytest
import torch

from workbench.bench.gpu import GPT2_SHAPE, NO_CUDA, flops_per_token, peak_bf16_tflops
from workbench.engine.model import GPT, GPTConfig, model_stats


def workbench(*args):
    return subprocess.run([sys.executable, "-m", "workbench", *args], capture_output=True, text=True, timeout=300)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message a machine without CUDA gives")
def test_without_cuda_the_command_says_so_and_exits_2():
    r = workbench("bench", "gpu")
    assert r.returncode == 2, r.stderr
    assert "no CUDA GPU: this benchmark needs one" in r.stderr and r.stdout == ""
    assert NO_CUDA in r.stderr


def test_the_flops_behind_mfu_are_the_engines_for_gpt2_124m():
    # the shape is GPT-2 small as nanoGPT pads it
    assert (GPT2_SHAPE.n_layer, GPT2_SHAPE.n_head, GPT2_SHAPE.n_embd, GPT2_SHAPE.block_size,
            GPT2_SHAPE.vocab_size) == (12, 12, 768, 1024, 50304)
    independent = GPTConfig(vocab_size=50304, n_layer=12, n_head=12, n_embd=768, block_size=1024, dropout=0.0)
    assert flops_per_token(GPT2_SHAPE) == model_stats(independent).flops_per_token
    # and that estimate is 6 x the matmul weights of the built model (tied embedding once, positions not
    # a matmul) plus attention's 12 L T C
    model = GPT(GPT2_SHAPE)
    n = model.num_params() - model.transformer.wpe.weight.numel()
    assert 124_000_000 < model.num_params() < 125_000_000
    assert flops_per_token(GPT2_SHAPE) == 6 * n + 12 * 12 * 1024 * 768


def test_peak_table_knows_the_cards_and_admits_the_rest():
    assert peak_bf16_tflops("NVIDIA H100 80GB HBM3") == 989.0
    assert peak_bf16_tflops("NVIDIA H100 PCIe") == 756.0
    assert peak_bf16_tflops("NVIDIA H200") == 989.0
    assert peak_bf16_tflops("NVIDIA A100-SXM4-40GB") == 312.0
    assert peak_bf16_tflops("NVIDIA L4") == 121.0
    assert peak_bf16_tflops("NVIDIA GeForce GTX 1080") is None


def test_tiny_cpu_dry_run_prints_the_json_of_a_gpu_run():
    r = workbench("bench", "gpu", "--device", "cpu", "--tiny", "--steps", "2", "--warmup", "1", "--compile", "off")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    for key in ("device_name", "shape", "params", "tokens_per_step", "flops_per_token", "peak_bf16_tflops",
                "eager", "compiled"):
        assert key in out
    eager = out["eager"]
    for key in ("tokens_per_s", "step_ms", "achieved_tflops", "mfu", "warmup_seconds", "max_memory_gb"):
        assert key in eager
    assert eager["tokens_per_s"] > 0 and out["compiled"] is None and eager["mfu"] is None  # no peak for a CPU
    # the figures hang together: achieved FLOP/s = tokens/s x FLOPs per token
    assert eager["achieved_tflops"] == pytest.approx(eager["tokens_per_s"] * out["flops_per_token"] / 1e12, abs=2e-3)


def test_cpu_without_tiny_is_refused():
    r = workbench("bench", "gpu", "--device", "cpu")
    assert r.returncode == 2 and "--tiny" in r.stderr


@pytest.mark.compile
def test_tiny_cpu_dry_run_measures_eager_and_compiled_by_default():
    r = workbench("bench", "gpu", "--device", "cpu", "--tiny", "--steps", "2", "--warmup", "1")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["eager"]["tokens_per_s"] > 0 and out["compiled"]["tokens_per_s"] > 0
    assert out["compile_speedup"] == pytest.approx(out["compiled"]["tokens_per_s"] / out["eager"]["tokens_per_s"],
                                                   abs=1e-3)
