import json
import math

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from tokenizers import Tokenizer as HFTokenizer
from tokenizers import decoders, models, pre_tokenizers

from workbench.engine.errors import CheckpointError
from workbench.engine.gpt2_interop import export_gpt2, grow_embeddings, import_gpt2, load_gpt2
from workbench.engine.loading import load_trained
from workbench.engine.model import GPT, GPTConfig
from workbench.engine.tokenizer import SPECIAL_TOKENS, Tokenizer, train_tokenizer

TEXT = "the cat sat on the mat. the dog ran to the big red ball. " * 20


@pytest.fixture(scope="module")
def tok():
    return train_tokenizer("bpe", 300, [TEXT])


def random_gpt(vocab_size, bias=True, seed=0):
    torch.manual_seed(seed)
    model = GPT(GPTConfig(vocab_size=vocab_size, n_layer=2, n_head=2, n_embd=16, block_size=24, bias=bias))
    with torch.no_grad():  # GPT-2 init leaves biases at 0 and LayerNorms at 1: move them so they count
        for name, p in model.named_parameters():
            if name.endswith("bias") or ".ln_" in name:
                p.add_(0.1 * torch.randn_like(p))
    return model.eval()


def gpt2_reference_logits(folder, ids):
    """GPT-2's forward pass written from the file alone: Conv1D is x @ W + b with W stored (in, out)."""
    cfg = json.loads((folder / "config.json").read_text())
    with safe_open(str(folder / "model.safetensors"), framework="pt") as f:
        w = {k.removeprefix("transformer."): f.get_tensor(k) for k in f.keys()}
    C, H = cfg["n_embd"], cfg["n_head"]
    ln = lambda x, p: torch.nn.functional.layer_norm(x, (C,), w[p + ".weight"], w[p + ".bias"], 1e-5)  # noqa: E731
    conv = lambda x, p: x @ w[p + ".weight"] + w[p + ".bias"]  # noqa: E731
    gelu = lambda x: 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))  # noqa: E731
    T = len(ids)
    x = w["wte.weight"][ids] + w["wpe.weight"][:T]
    causal = torch.tril(torch.ones(T, T, dtype=torch.bool))
    for i in range(cfg["n_layer"]):
        q, k, v = conv(ln(x, f"h.{i}.ln_1"), f"h.{i}.attn.c_attn").split(C, dim=-1)
        q, k, v = (t.view(T, H, C // H).transpose(0, 1) for t in (q, k, v))
        att = (q @ k.transpose(-1, -2) / math.sqrt(C // H)).masked_fill(~causal, float("-inf")).softmax(-1)
        x = x + conv((att @ v).transpose(0, 1).reshape(T, C), f"h.{i}.attn.c_proj")
        x = x + conv(gelu(conv(ln(x, f"h.{i}.ln_2"), f"h.{i}.mlp.c_fc")), f"h.{i}.mlp.c_proj")
    return ln(x, "ln_f") @ w["wte.weight"].T


@pytest.mark.parametrize("bias", [True, False])
def test_export_writes_the_gpt2_layout_and_import_returns_the_same_logits(tmp_path, tok, bias):
    model = random_gpt(tok.vocab_size, bias=bias)
    model.heads["sentiment"] = torch.nn.Linear(16, 2)  # task heads have no place in GPT-2 files
    out = export_gpt2(model, tok, tmp_path / "hf")
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["model_type"] == "gpt2" and cfg["architectures"] == ["GPT2LMHeadModel"]
    assert (cfg["vocab_size"], cfg["n_positions"], cfg["n_embd"], cfg["n_layer"], cfg["n_head"]) == (
        tok.vocab_size, 24, 16, 2, 2)
    assert cfg["activation_function"] == "gelu_new" and cfg["layer_norm_epsilon"] == 1e-5
    assert cfg["eos_token_id"] == tok.special_id("eos") and cfg["bos_token_id"] == tok.special_id("bos")
    with safe_open(str(out / "model.safetensors"), framework="pt") as f:
        names = set(f.keys())
        assert f.metadata()["format"] == "pt"
        assert f.get_tensor("transformer.h.0.attn.c_attn.weight").shape == (16, 48)  # Conv1D: (in, out)
        assert f.get_tensor("transformer.h.1.mlp.c_fc.weight").shape == (16, 64)
    assert not any(n.startswith("heads.") or n.startswith("lm_head") for n in names)
    assert "transformer.h.0.mlp.c_proj.bias" in names and "transformer.ln_f.bias" in names  # zeros when bias=False

    ids = tok.encode("the cat sat on the mat")
    ours, _ = model(torch.tensor([ids]))
    # the file computes what our model computes, by GPT-2's own arithmetic ...
    assert torch.allclose(gpt2_reference_logits(out, ids), ours[0], atol=1e-4)
    # ... and reads back into the same model
    back, back_tok = load_gpt2(out)
    assert back_tok.vocab_size == tok.vocab_size  # ours has every special token already
    assert torch.allclose(back(torch.tensor([ids]))[0], ours, atol=1e-5)


def test_import_writes_a_run_folder_that_load_trained_opens(tmp_path, tok):
    model = random_gpt(tok.vocab_size)
    export_gpt2(model, tok, tmp_path / "hf")
    run = import_gpt2(tmp_path / "hf", tmp_path / "run")
    assert (run / "config.toml").exists() and (run / "tokenizer.json").exists()
    assert (run / "checkpoints" / "step_0000000.safetensors").exists()
    trained = load_trained(run)
    assert trained.step == 0 and trained.experiment.model.block_size == 24
    ids = torch.tensor([tok.encode("the dog ran")])
    assert torch.allclose(trained.model(ids)[0], model(ids)[0], atol=1e-5)
    # exporting the imported run gives the same files' worth of numbers again
    from workbench.engine.gpt2_interop import export_run

    again = export_run(run, tmp_path / "hf2")
    assert torch.allclose(load_gpt2(again)[0](ids)[0], model(ids)[0], atol=1e-5)


def gpt2_style_tokenizer() -> Tokenizer:
    """A byte-level BPE with GPT-2's one special token only, as a downloaded gpt2 would have."""
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {ch: i for i, ch in enumerate(alphabet)}
    vocab["<|endoftext|>"] = len(vocab)
    hf = HFTokenizer(models.BPE(vocab=vocab, merges=[]))
    hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    hf.decoder = decoders.ByteLevel()
    hf.add_special_tokens(["<|endoftext|>"])
    return Tokenizer(hf)


def write_hf_gpt2_folder(folder, model: GPT, tokenizer: Tokenizer):
    """A folder as transformers' own GPT-2 files look: no "transformer." prefix, Conv1D weights,
    the causal-mask buffers, an explicit lm_head.weight, pytorch_model.bin beside it."""
    folder.mkdir()
    tensors = {}
    for name, t in model.state_dict().items():
        if name.startswith("heads."):
            continue
        if name.endswith(("c_attn.weight", "c_proj.weight", "c_fc.weight")):
            t = t.t()
        tensors[name.removeprefix("transformer.")] = t.contiguous().clone()
    T = model.config.block_size
    for i in range(model.config.n_layer):
        tensors[f"h.{i}.attn.bias"] = torch.tril(torch.ones(T, T)).view(1, 1, T, T)
    save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt"})
    c = model.config
    (folder / "config.json").write_text(json.dumps({
        "model_type": "gpt2", "vocab_size": c.vocab_size, "n_positions": c.block_size, "n_ctx": c.block_size,
        "n_embd": c.n_embd, "n_layer": c.n_layer, "n_head": c.n_head, "activation_function": "gelu_new",
        "resid_pdrop": 0.1, "embd_pdrop": 0.1, "attn_pdrop": 0.1, "layer_norm_epsilon": 1e-5,
        "bos_token_id": c.vocab_size - 1, "eos_token_id": c.vocab_size - 1}))
    tokenizer.save(folder / "tokenizer.json")
    (folder / "pytorch_model.bin").write_bytes(b"not to be opened")


def test_a_gpt2_folder_imports_with_our_special_tokens_added(tmp_path):
    tok = gpt2_style_tokenizer()
    assert tok.vocab_size == 257
    model = random_gpt(257)
    write_hf_gpt2_folder(tmp_path / "gpt2", model, tok)
    imported, new_tok = load_gpt2(tmp_path / "gpt2")
    assert new_tok.special_id("eos") == 256  # GPT-2's own token keeps its id
    assert new_tok.vocab_size == 257 + len(SPECIAL_TOKENS) - 1
    assert all(new_tok.special_id(role) >= 256 for role in SPECIAL_TOKENS)
    assert imported.config.vocab_size == new_tok.vocab_size and imported.config.dropout == 0.1
    ids = torch.tensor([tok.encode("hello there")])
    a, b = model(ids)[0], imported(ids)[0]
    assert torch.allclose(a, b[..., :257], atol=1e-5)  # old tokens' logits unchanged
    assert imported.lm_head.weight is imported.transformer.wte.weight


def test_only_safetensors_are_read(tmp_path):
    folder = tmp_path / "old"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "gpt2", "n_embd": 16, "n_layer": 1, "n_head": 2}))
    (folder / "pytorch_model.bin").write_bytes(b"pickle")
    with pytest.raises(CheckpointError, match="pickle"):
        load_gpt2(folder)
    (folder / "config.json").write_text(json.dumps({"model_type": "gpt2", "activation_function": "relu"}))
    with pytest.raises(CheckpointError, match="activation_function"):
        load_gpt2(folder)


def test_grown_embeddings_keep_old_rows_and_the_tie():
    model = random_gpt(40)
    old = model.transformer.wte.weight.detach().clone()
    ids = torch.tensor([[1, 5, 7, 39]])
    before, _ = model(ids)
    grow_embeddings(model, 45)
    w = model.transformer.wte.weight
    assert w.shape == (45, 16) and model.config.vocab_size == 45
    assert torch.equal(w[:40], old) and torch.allclose(w[40:], old.mean(0).expand(5, 16))
    assert model.lm_head.weight is w
    after, _ = model(ids)
    assert torch.allclose(after[..., :40], before, atol=1e-6)
    with pytest.raises(CheckpointError):
        grow_embeddings(model, 10)


def test_transformers_gpt2_computes_the_same_logits(tmp_path, tok):
    transformers = pytest.importorskip("transformers")
    model = random_gpt(tok.vocab_size)
    out = export_gpt2(model, tok, tmp_path / "hf")
    hf = transformers.GPT2LMHeadModel.from_pretrained(out).eval()
    ids = torch.tensor([tok.encode("the big red ball")])
    with torch.no_grad():
        theirs = hf(ids).logits
    assert torch.allclose(theirs, model(ids)[0], atol=1e-4)
    # and what transformers saves, we import
    hf.save_pretrained(tmp_path / "saved")
    tok.save(tmp_path / "saved" / "tokenizer.json")
    back, _ = load_gpt2(tmp_path / "saved")
    assert torch.allclose(back(ids)[0], model(ids)[0], atol=1e-5)


def test_export_and_import_commands(tmp_path, tok):
    from workbench.cli import main

    model = random_gpt(tok.vocab_size)
    run = import_gpt2(export_gpt2(model, tok, tmp_path / "hf"), tmp_path / "run")
    assert main(["export", str(run), str(tmp_path / "out")]) == 0
    assert main(["import", str(tmp_path / "out"), str(tmp_path / "run2"), "--name", "again"]) == 0
    trained = load_trained(tmp_path / "run2")
    assert trained.experiment.name == "again"
    ids = torch.tensor([tok.encode("the mat")])
    assert torch.allclose(trained.model(ids)[0], model(ids)[0], atol=1e-5)
    assert main(["import", str(tmp_path / "nothing"), str(tmp_path / "run3")]) == 2  # an error in words
