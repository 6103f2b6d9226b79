"""Head knock-out, the logit lens and a token's attention across training, on a model whose insides
are known: a one-layer model trained to repeat a sequence has a head that looks back and copies."""

import json

import numpy as np
import pytest
import torch

from workbench.engine import checkpoint as ckpt
from workbench.engine.errors import ConfigError
from workbench.engine.interpret import (ablation_table, attention_history, knock_out, knocked_out, logit_lens,
                                        token_losses)
from tests.copy_model import P, copied_positions, copy_batch, copy_head, copy_tokenizer, train_copy_model


@pytest.fixture(scope="module")
def copy_model():
    return train_copy_model()


@pytest.fixture(scope="module")
def tok():
    return copy_tokenizer()


def test_knocking_out_the_copy_head_raises_the_loss_on_copied_tokens_and_another_head_does_not(copy_model):
    texts = copy_batch(torch.Generator().manual_seed(99), 16)
    head = copy_head(copy_model, texts)
    other = 1 - head
    table = ablation_table(copy_model, [t.tolist() for t in texts], positions=[copied_positions()] * len(texts))
    assert table.base_loss < 0.7                      # the intact model copies
    assert table.delta.shape == (1, 2)
    assert table.delta[0, head] > 2.0                 # nats: without it the copies are guesses
    assert table.delta[0, other] < 0.5 * table.delta[0, head]
    assert table.strongest()[:2] == (0, head)


def test_knock_out_changes_the_predictions_of_copied_tokens_and_restores_the_model(copy_model, tok):
    ids = copy_batch(torch.Generator().manual_seed(5), 1)[0].tolist()
    head = copy_head(copy_model, torch.tensor([ids]))
    before = token_losses(copy_model, ids)
    result = knock_out(copy_model, tok, ids, [(0, head)])
    np.testing.assert_allclose(result.base_losses, before)
    assert result.delta > 1.0
    changed = set(result.changed_predictions())
    assert len(changed & set(copied_positions())) >= P // 2   # most copies are lost
    # the masks are gone afterwards, also after an exception inside the block
    np.testing.assert_allclose(token_losses(copy_model, ids), before)
    with pytest.raises(RuntimeError):
        with knocked_out(copy_model, [(0, head)]):
            raise RuntimeError("boom")
    assert all(b.attn.head_mask is None for b in copy_model.transformer.h)


def test_knock_out_names_a_head_that_does_not_exist(copy_model, tok):
    with pytest.raises(ConfigError, match=r"head \(1, 0\) does not exist.*layers 0-0"):
        knock_out(copy_model, tok, [7, 8, 9], [(1, 0)])


def test_knocked_out_head_is_zero_in_its_own_output(copy_model):
    """The mask acts on the head's slice only: the other head's contribution is unchanged."""
    x = copy_batch(torch.Generator().manual_seed(3), 2)
    attn = copy_model.transformer.h[0].attn
    h = copy_model.transformer.wte(x) + copy_model.transformer.wpe(torch.arange(2 * P))
    h = copy_model.transformer.h[0].ln_1(h)
    with torch.no_grad():
        full, _ = attn(h)
        with knocked_out(copy_model, [(0, 0)]):
            no0, _ = attn(h)
        with knocked_out(copy_model, [(0, 0), (0, 1)]):
            none, _ = attn(h)
    bias = attn.c_proj.bias.expand_as(none)
    torch.testing.assert_close(none, bias)                 # both heads off: only the projection's bias
    assert not torch.allclose(no0, full)


def test_logit_lens_last_layer_is_the_models_own_prediction(copy_model, tok):
    ids = copy_batch(torch.Generator().manual_seed(7), 1)[0].tolist()
    lens = logit_lens(copy_model, tok, ids)
    logits, _ = copy_model(torch.tensor([ids]))
    probs = torch.softmax(logits[0], -1)
    assert lens.top_ids.shape == (2, len(ids))            # embeddings + one block
    np.testing.assert_array_equal(lens.top_ids[-1], logits[0].argmax(-1).numpy())
    np.testing.assert_allclose(lens.top_probs[-1], probs.max(-1).values.detach().numpy(), rtol=1e-5)
    nxt = probs[:-1].gather(-1, torch.tensor(ids[1:]).view(-1, 1))[:, 0]
    np.testing.assert_allclose(lens.next_probs[-1], nxt.detach().numpy(), rtol=1e-5)
    assert lens.top_texts[-1] == tok.token_texts(lens.top_ids[-1].tolist())
    # the copy happens in the block: the embeddings alone do not predict the copied tokens
    copied = copied_positions()
    assert lens.next_probs[-1, copied].mean() > 0.5 > lens.next_probs[0, copied].mean()


def test_attention_history_follows_one_query_over_the_runs_snapshots(tmp_path):
    run = ckpt.RunDir.create(tmp_path / "run")
    run.config.write_text('name = "snapshots"\n')
    rng = np.random.default_rng(0)
    snaps = {}
    for step in (0, 10, 20):
        att = rng.random((2, 3, 4, 4)).astype(np.float32)
        snaps[step] = att
        ckpt.save_attention(run.attention, step, att, ["a", "b", "c", "d"], [1, 2, 3, 4])
    ckpt.save_attention(run.attention, 5, rng.random((2, 3, 2, 2)).astype(np.float32), ["x", "y"], [9, 9])
    hist = attention_history(run.path, 2)
    assert hist.steps == [0, 10, 20] and hist.skipped == 1
    assert hist.rows.shape == (3, 2, 3, 4)
    np.testing.assert_allclose(hist.rows[1], snaps[10][:, :, 2, :], atol=1e-3)  # float16 on disk
    with pytest.raises(ConfigError, match="outside the probe text"):
        attention_history(run.path, 4)
    with pytest.raises(ConfigError, match="query token -9 is outside"):
        attention_history(run.path, -9)
    assert attention_history(run.path, -1).query == 3


def test_the_inside_command_prints_what_the_engine_measures(copy_model, tok, tmp_path, capsys):
    from workbench.cli import main
    from workbench.engine.gpt2_interop import export_gpt2, import_gpt2

    run = import_gpt2(export_gpt2(copy_model, tok, tmp_path / "hf"), tmp_path / "run")
    probe = "hbacgfeihbacgfei"  # 8 tokens, then the same 8 again
    ids = tok.encode(probe)
    head = copy_head(copy_model, torch.tensor([ids]))
    assert main(["inside", "heads", str(run), "--probe", probe, "--json"]) == 0
    table = json.loads(capsys.readouterr().out)
    expected = ablation_table(copy_model, [ids])
    np.testing.assert_allclose(table["delta"], expected.delta, atol=1e-4)
    assert main(["inside", "heads", str(run), "--probe", probe]) == 0
    assert f"strongest: head 0.{head}" in capsys.readouterr().out
    assert main(["inside", "knockout", str(run), f"0.{head}", "--probe", probe, "--json"]) == 0
    ko = json.loads(capsys.readouterr().out)
    assert ko["heads"] == [[0, head]] and ko["delta"] > 1.0
    assert main(["inside", "lens", str(run), "--probe", probe, "--json"]) == 0
    lens = json.loads(capsys.readouterr().out)
    assert lens["top"][-1][P - 1:-1] == list(probe[:P])     # the last layer copies the first half
    assert main(["inside", "knockout", str(run), "0.x", "--probe", probe]) == 2
    assert "LAYER.HEAD" in capsys.readouterr().err
    assert main(["inside", "lens", str(run)]) == 2            # no probe text anywhere
    assert "--probe" in capsys.readouterr().err
