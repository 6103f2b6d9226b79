import pytest
import torch

from workbench.engine.model import GPT, GPTConfig, model_stats


def tiny(**kw):
    cfg = dict(vocab_size=50, n_layer=2, n_head=4, n_embd=32, block_size=16, dropout=0.0)
    cfg.update(kw)
    torch.manual_seed(0)
    return GPT(GPTConfig(**cfg)).eval()


def test_changing_a_later_token_leaves_earlier_logits_unchanged():
    model = tiny()
    x = torch.randint(0, 50, (2, 16))
    y = x.clone()
    y[:, 10] = (y[:, 10] + 7) % 50
    a, _ = model(x)
    b, _ = model(y)
    assert torch.allclose(a[:, :10], b[:, :10], atol=1e-6)
    assert not torch.allclose(a[:, 10:], b[:, 10:], atol=1e-4)


def test_bidirectional_attention_sees_the_future():
    model = tiny()
    x = torch.randint(0, 50, (1, 16))
    y = x.clone()
    y[0, 10] = (y[0, 10] + 7) % 50
    a, _ = model(x, causal=False)
    b, _ = model(y, causal=False)
    assert not torch.allclose(a[:, :10], b[:, :10], atol=1e-4)


@pytest.mark.parametrize("causal", [True, False])
def test_explicit_attention_agrees_with_fast_path(causal):
    model = tiny()
    x = torch.randint(0, 50, (3, 16))
    fast, _ = model(x, causal=causal)
    slow, att = model.attention_maps(x, causal=causal)
    assert torch.allclose(fast, slow, atol=1e-5)
    assert att.shape == (2, 3, 4, 16, 16)  # (layers, batch, heads, T, T)
    assert torch.allclose(att.sum(-1), torch.ones(2, 3, 4, 16), atol=1e-5)
    if causal:  # nothing above the diagonal
        assert att.triu(diagonal=1).abs().max() == 0


def test_padding_mask_hides_padded_keys_and_matches_the_fast_path():
    model = tiny()
    x = torch.randint(0, 50, (2, 16))
    pad = torch.ones(2, 16, dtype=torch.bool)
    pad[0, 12:] = False  # right padding on the first row
    fast, _ = model(x, causal=False, padding_mask=pad)
    slow, att = model.attention_maps(x, causal=False, padding_mask=pad)
    assert torch.allclose(fast, slow, atol=1e-5)
    # real queries of row 0 put no weight on its padded keys
    assert att[:, 0, :, :12, 12:].abs().max() == 0
    # the padded tokens' values do not change the real positions' outputs
    x2 = x.clone()
    x2[0, 12:] = (x2[0, 12:] + 3) % 50
    other, _ = model(x2, causal=False, padding_mask=pad)
    assert torch.allclose(fast[0, :12], other[0, :12], atol=1e-5)
    assert not torch.isnan(fast).any()


@pytest.mark.parametrize("mode", ["causal", "bidirectional", "padded"])
def test_training_with_attention_written_out_gives_the_fast_paths_loss_and_gradients(mode):
    """attention_kernel = "explicit" (what speed.py may choose) trains the same function as SDPA."""
    x = torch.randint(0, 50, (3, 16), generator=torch.Generator().manual_seed(1))
    pad = torch.ones(3, 16, dtype=torch.bool)
    pad[1, 11:] = False
    kw = {"causal": mode == "causal", "padding_mask": pad if mode == "padded" else None}
    results = []
    for kernel in ("sdpa", "explicit"):
        model = tiny().train()
        model.attention_kernel = kernel
        logits, loss = model(x, x, **kw)
        loss.backward()
        results.append((logits, loss, {n: p.grad for n, p in model.named_parameters()}))
    (la, a, ga), (lb, b, gb) = results
    assert torch.allclose(la, lb, atol=1e-5) and abs(a.item() - b.item()) < 1e-5
    assert all(torch.allclose(ga[n], gb[n], atol=1e-5) for n in ga)
    assert any(g.abs().max() > 0 for g in gb.values())


def test_weights_are_tied_and_named_like_gpt2():
    model = tiny()
    assert model.lm_head.weight is model.transformer.wte.weight
    names = dict(model.named_parameters())
    for n in ("transformer.wte.weight", "transformer.wpe.weight", "transformer.h.0.ln_1.weight",
              "transformer.h.0.attn.c_attn.weight", "transformer.h.0.attn.c_proj.bias",
              "transformer.h.1.mlp.c_fc.weight", "transformer.h.1.mlp.c_proj.weight", "transformer.ln_f.bias"):
        assert n in names


def test_model_stats_match_the_built_model():
    for kw in (dict(), dict(bias=False), dict(n_layer=3, n_embd=48, n_head=6, vocab_size=101)):
        cfg = GPTConfig(**{**dict(vocab_size=50, n_layer=2, n_head=4, n_embd=32, block_size=16), **kw})
        model = GPT(cfg)
        stats = model_stats(cfg)
        assert stats.params == model.num_params()
        assert stats.non_embedding_params == model.num_params(non_embedding=True)
        assert stats.flops_per_token == 3 * stats.forward_flops_per_token > 6 * stats.non_embedding_params


def test_a_tiny_model_overfits_one_batch():
    model = tiny().train()
    x = torch.randint(0, 50, (4, 16))
    y = torch.roll(x, -1, dims=1)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    first = None
    for _ in range(150):
        _, loss = model(x, y)
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert first > 3.5  # about ln(50) at initialisation
    assert loss.item() < 0.1


def test_ignore_index_excludes_positions_from_the_loss():
    model = tiny()
    x = torch.randint(0, 50, (2, 16))
    y = torch.randint(0, 50, (2, 16))
    _, full = model(x, y)
    y2 = y.clone()
    y2[:, 8:] = -100
    logits, part = model(x, y2)
    manual = torch.nn.functional.cross_entropy(logits[:, :8].reshape(-1, 50), y[:, :8].reshape(-1))
    assert torch.allclose(part, manual, atol=1e-6)
    assert not torch.allclose(part, full)


def test_too_long_input_is_refused_with_the_context_length():
    with pytest.raises(ValueError, match="context"):
        tiny()(torch.zeros(1, 17, dtype=torch.long))
