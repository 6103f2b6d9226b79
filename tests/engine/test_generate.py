import numpy as np
import pytest
import torch

from workbench.engine.errors import Cancelled, ConfigError
from workbench.engine.generate import SamplingSettings, TextStream, filter_logits, generate, generate_text
from workbench.engine.model import GPT, GPTConfig
from workbench.engine.tokenizer import train_tokenizer

TEXT = "the cat sat on the mat. the dog ran to the big red ball. " * 20


@pytest.fixture(scope="module")
def tok():
    return train_tokenizer("char", 64, [TEXT])


@pytest.fixture(scope="module")
def model(tok):
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=tok.vocab_size, n_layer=2, n_head=2, n_embd=32, block_size=16)).eval()


def ids_of(tokens):
    return [t.id for t in tokens]


def test_a_seed_makes_sampling_reproducible(model, tok):
    s = SamplingSettings(max_tokens=20, temperature=1.0, seed=5, stop_at_eos=False)
    a = ids_of(generate(model, tok, "the ", s))
    assert a == ids_of(generate(model, tok, "the ", s)) and len(a) == 20
    others = [ids_of(generate(model, tok, "the ", SamplingSettings(max_tokens=20, temperature=1.0, seed=seed,
                                                                     stop_at_eos=False))) for seed in (6, 7)]
    assert any(o != a for o in others)


def test_top_k_1_is_greedy_and_temperature_0_is_argmax(model, tok):
    greedy = ids_of(generate(model, tok, "the ", SamplingSettings(max_tokens=12, temperature=0, stop_at_eos=False)))
    top1 = ids_of(generate(model, tok, "the ", SamplingSettings(max_tokens=12, temperature=1.5, top_k=1, seed=3,
                                                                stop_at_eos=False)))
    assert top1 == greedy
    # greedy really is the argmax of the model's logits, token after token
    ids = tok.encode("the ")
    for g in greedy[:4]:
        logits, _ = model(torch.tensor([ids[-16:]]))
        assert g == int(logits[0, -1].argmax())
        ids.append(g)


def test_filter_logits_keeps_the_top_k_and_the_nucleus():
    logits = torch.log(torch.tensor([0.05, 0.5, 0.15, 0.3]))
    kept = lambda out: set(torch.nonzero(torch.isfinite(out)).view(-1).tolist())  # noqa: E731
    assert kept(filter_logits(logits, top_k=2)) == {1, 3}
    assert kept(filter_logits(logits, top_p=0.5)) == {1}
    assert kept(filter_logits(logits, top_p=0.7)) == {1, 3}
    assert kept(filter_logits(logits, top_p=0.81)) == {1, 3, 2}
    assert kept(filter_logits(logits, top_k=3, top_p=0.99)) == {1, 3, 2}
    assert kept(filter_logits(logits)) == {0, 1, 2, 3}


def test_sampled_tokens_stay_inside_top_k_and_top_p(model, tok):
    s = SamplingSettings(max_tokens=30, temperature=1.0, top_k=3, top_p=0.9, seed=1, stop_at_eos=False)
    ids = tok.encode("the ")
    for t in generate(model, tok, "the ", s):
        logits, _ = model(torch.tensor([ids[-16:]]))
        assert t.id in torch.topk(logits[0, -1], 3).indices.tolist()
        assert 0 < t.model_prob <= t.prob <= 1
        ids.append(t.id)


def test_each_token_reports_its_attention_over_a_cropped_context(model, tok):
    prompt = "the cat sat on the mat"  # 22 characters: longer than the 16-token context
    tokens = list(generate(model, tok, prompt, SamplingSettings(max_tokens=3, seed=0, stop_at_eos=False),
                           attention="all"))
    first = tokens[0]
    assert first.position == 22 and first.context_start == 22 - 16
    assert first.attention.shape == (16,) and np.isclose(first.attention.sum(), 1.0, atol=1e-5)
    assert first.attention_all.shape == (2, 2, 16)
    assert np.allclose(first.attention_all[-1].mean(0), first.attention)
    assert [t.position for t in tokens] == [22, 23, 24]
    # "none" skips the explicit path but samples the same tokens
    plain = list(generate(model, tok, prompt, SamplingSettings(max_tokens=3, seed=0, stop_at_eos=False),
                          attention="none"))
    assert ids_of(plain) == ids_of(tokens) and plain[0].attention is None


def test_a_live_model_keeps_its_training_mode_and_generation_can_stop(tok):
    torch.manual_seed(0)
    live = GPT(GPTConfig(vocab_size=tok.vocab_size, n_layer=1, n_head=1, n_embd=16, block_size=16, dropout=0.5))
    live.train()
    a = generate_text(live, tok, "the ", SamplingSettings(max_tokens=8, temperature=0, stop_at_eos=False))
    b = generate_text(live, tok, "the ", SamplingSettings(max_tokens=8, temperature=0, stop_at_eos=False))
    assert a == b and len(a) == 8  # dropout was off while generating
    assert live.training
    calls = iter([False, False, True])
    with pytest.raises(Cancelled):
        list(generate(live, tok, "the ", SamplingSettings(max_tokens=8), should_stop=lambda: next(calls)))
    assert live.training


def test_generation_stops_at_end_of_text(model, tok):
    eos = tok.special_id("eos")
    with torch.no_grad():
        model_eos = GPT(model.config).eval()
        model_eos.load_state_dict(model.state_dict())
        model_eos.transformer.ln_f.weight.zero_()
        model_eos.transformer.ln_f.bias.zero_()
        model_eos.transformer.ln_f.bias[0] = 1.0
        model_eos.transformer.wte.weight[:, 0] = 0.0
        model_eos.transformer.wte.weight[eos, 0] = 50.0  # <|endoftext|> is all it ever predicts
    out = ids_of(generate(model_eos, tok, "the ", SamplingSettings(max_tokens=10, seed=0)))
    assert out == [eos]


def test_bad_settings_are_refused(model, tok):
    with pytest.raises(ConfigError, match="top_p"):
        next(generate(model, tok, "a", SamplingSettings(top_p=0.0)))
    with pytest.raises(ConfigError, match="temperature"):
        next(generate(model, tok, "a", SamplingSettings(temperature=-1)))


def test_text_stream_holds_back_split_characters():
    bpe = train_tokenizer("bpe", 300, ["plain ascii text " * 50])
    ids = bpe.encode("añb€c")  # é and € are two and three bytes: no merges, so split over tokens
    assert len(ids) > 5
    stream = TextStream(bpe)
    parts = [stream.push(i) for i in ids]
    assert "".join(parts) + stream.flush() == "añb€c"
    assert "\ufffd" not in "".join(parts)


def test_the_generate_command_streams_text(tmp_path, capsys, model, tok):
    from workbench.cli import main
    from workbench.engine.gpt2_interop import export_gpt2, import_gpt2

    run = import_gpt2(export_gpt2(model, tok, tmp_path / "hf"), tmp_path / "run")
    assert main(["generate", str(run), "--prompt", "the ", "--max-tokens", "12", "--seed", "1"]) == 0
    text = capsys.readouterr().out
    want = generate_text(model, tok, "the ", SamplingSettings(max_tokens=12, top_k=50, top_p=0.95, seed=1))
    assert text == "the " + want + "\n"
