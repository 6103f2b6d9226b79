"""Property-based tests of every reader of user files: whatever the bytes, the result is a value
or a WorkbenchError (a message naming the file), never another exception.

Each reader gets arbitrary bytes and, to get past the first line of defence, text built from the
characters its format cares about. Example counts stay modest so the suite stays fast.
"""

import json
import string
import tempfile
from pathlib import Path

import pytest
import tomli_w
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workbench.engine import checkpoint as ckpt
from workbench.engine.config import Experiment, describe_settings, load_experiment, loads_experiment
from workbench.engine.corpus import Corpus
from workbench.engine.errors import WorkbenchError
from workbench.engine.gpt2_interop import export_gpt2, import_gpt2, read_gpt2_config
from workbench.engine.labelled import Columns, preview, read_labelled
from workbench.engine.loading import load_trained
from workbench.engine.model import GPT, GPTConfig
from workbench.engine.tokenizer import train_tokenizer

# database=None: nothing is written into the checkout (.hypothesis); a failure prints its example
FUZZ = settings(max_examples=150, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


def structured_text(tokens: list[str], max_size: int = 80):
    """Text made of the pieces a format is built from (names of columns and settings, quotes,
    separators), plus characters that break it (NUL, CR, non-ASCII, a byte order mark)."""
    pieces = tokens + ["\x00", "\r", "é", "\u2028", "\ufeff"]
    return st.lists(st.sampled_from(pieces), max_size=max_size).map("".join)


def file_bytes(tokens: list[str]):
    return st.one_of(st.binary(max_size=400), structured_text(tokens).map(lambda s: s.encode("utf-8")))


_TMP = tempfile.TemporaryDirectory(prefix="workbench-fuzz-")  # removed when the module goes


def scratch(suffix: str, data: bytes) -> Path:
    """The example's bytes in a file (the same file each time: examples run one after another)."""
    path = Path(_TMP.name) / f"input{suffix}"
    path.write_bytes(data)
    return path


CSV_CHARS = ["text", "label", ",", '"', '""', "\n", "\t", " ", "x", "1", "0"]
JSONL_CHARS = ["{", "}", "[", "]", '"', ":", ",", "\n", '"text"', '"label"', '"a"', "1", "-1e999", "null",
               "true", " ", "\\u", '"\\ud800"']
TOML_CHARS = ["[", "]", "[[tasks]]", "[training]", "[model]", "=", ".", '"', "\n", " ", "training", "model",
              "threads", "seed", "n_layer", "n_head", "n_embd", "batch_size", "kind", '"causal_lm"', "1", "-",
              "e", "9", "0", "inf", "nan", "true", "{", "}", ","]


# -- corpus ---------------------------------------------------------------------------------------


@FUZZ
@given(suffix=st.sampled_from([".txt", ".jsonl", ".csv", ".tsv"]), errors=st.sampled_from(["strict", "replace"]),
       data=st.data())
def test_corpus_readers_give_text_or_a_corpus_error(suffix, errors, data):
    alphabet = {".jsonl": JSONL_CHARS, ".csv": CSV_CHARS, ".tsv": CSV_CHARS}.get(suffix, list(string.printable))
    path = scratch(suffix, data.draw(file_bytes(alphabet)))
    try:
        corpus = Corpus([str(path)], encoding_errors=errors)
        stats = corpus.stats()
        pieces = list(corpus.pieces(max_chars=64))
    except WorkbenchError as e:
        assert str(path) in str(e)
        return
    assert stats.documents == sum(p.new_document for p in pieces) >= 1
    assert all(p.text and len(p.text) <= 64 for p in pieces)


# -- labelled data --------------------------------------------------------------------------------


@FUZZ
@given(suffix=st.sampled_from([".jsonl", ".csv", ".tsv"]), quoting=st.sampled_from(["auto", "csv", "none"]),
       data=st.data())
def test_labelled_readers_give_examples_or_a_corpus_error(suffix, quoting, data):
    path = scratch(suffix, data.draw(file_bytes(JSONL_CHARS if suffix == ".jsonl" else CSV_CHARS)))
    for read in (lambda: read_labelled(path, Columns(text="text", label="label"), quoting=quoting),
                 lambda: preview(path)):
        try:
            result = read()
        except WorkbenchError as e:
            assert str(path) in str(e)
            continue
        if isinstance(result, tuple):  # preview: (columns, rows)
            assert all(isinstance(c, str) for c in result[0])
        else:
            assert result.examples and all(e.text.strip() and e.label for e in result.examples)


# -- TOML settings --------------------------------------------------------------------------------

SETTING_NAMES = [name for name, _, _ in describe_settings() if "[]" not in name]
JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6)


@FUZZ
@given(raw=file_bytes(TOML_CHARS))
def test_an_experiment_file_of_any_bytes_loads_or_names_the_problem(raw):
    path = scratch(".toml", raw)
    try:
        exp = load_experiment(path)
    except WorkbenchError as e:
        assert str(path) in str(e)
        return
    assert isinstance(exp, Experiment)


@FUZZ
@given(values=st.dictionaries(st.sampled_from(SETTING_NAMES), JSONISH.filter(lambda v: v is not None), max_size=4))
def test_settings_of_any_type_and_size_load_or_name_the_setting(values):
    data: dict = {}
    for name, value in values.items():
        section, key = name.split(".", 1)
        data.setdefault(section, {})[key] = value
    try:
        text = tomli_w.dumps(data)
    except (TypeError, ValueError):  # not representable in TOML (NaN keys and the like): nothing to test
        return
    try:
        exp = loads_experiment(text, source="fuzz.toml")
    except WorkbenchError as e:
        assert "fuzz.toml" in str(e)
        return
    assert isinstance(exp, Experiment)


# -- checkpoint sidecars and GPT-2 config.json ----------------------------------------------------


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz-run")
    tok = train_tokenizer("char", 64, ["the cat sat on the mat. " * 10])
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=tok.vocab_size, n_layer=1, n_head=2, n_embd=16, block_size=16))
    run = import_gpt2(export_gpt2(model, tok, root / "hf"), root / "run")
    path = run / "checkpoints" / "step_0000000.json"
    return run, path, json.loads(path.read_text())


@FUZZ
@given(raw=file_bytes(JSONL_CHARS))
def test_a_sidecar_of_any_bytes_is_read_or_refused_with_its_name(raw, tiny_run):
    path = scratch(".json", raw)
    try:
        meta = ckpt.read_checkpoint_meta(path)
    except WorkbenchError as e:
        assert str(path) in str(e)
        return
    assert isinstance(meta, dict) and meta["format"] == ckpt.FORMAT_VERSION


META_KEYS = ["format", "step", "experiment", "vocab_size", "tokens", "elapsed", "optimizer", "scaler",
             "last_val_loss", "best", "trainable"]


@FUZZ
@given(changes=st.dictionaries(st.sampled_from(META_KEYS), JSONISH, min_size=1, max_size=3),
       drop=st.lists(st.sampled_from(META_KEYS), max_size=2))
def test_a_damaged_sidecar_loads_or_fails_with_a_message(changes, drop, tiny_run):
    run, path, meta = tiny_run
    damaged = {**meta, **changes}
    for key in drop:
        damaged.pop(key, None)
    try:
        path.write_text(json.dumps(damaged))
    except ValueError:  # NaN is not JSON
        return
    try:
        trained = load_trained(run)
    except WorkbenchError as e:
        assert str(path) in str(e) or str(run) in str(e)
    else:
        assert trained.model.config.vocab_size == meta["vocab_size"]
    finally:
        path.write_text(json.dumps(meta))


GPT2_KEYS = ["n_layer", "n_head", "n_embd", "n_positions", "n_ctx", "vocab_size", "resid_pdrop",
             "layer_norm_epsilon", "n_inner", "activation_function", "model_type", "tie_word_embeddings"]


@FUZZ
@given(cfg=st.dictionaries(st.sampled_from(GPT2_KEYS), JSONISH, max_size=5))
def test_a_gpt2_config_of_any_values_is_read_or_refused_naming_config_json(cfg):
    folder = Path(_TMP.name) / "gpt2"
    folder.mkdir(exist_ok=True)
    try:
        (folder / "config.json").write_text(json.dumps(cfg))
    except ValueError:
        return
    try:
        config, _ = read_gpt2_config(folder)
    except WorkbenchError as e:
        assert "config.json" in str(e)
        return
    assert config.n_layer >= 1 and config.n_embd % config.n_head == 0


@pytest.mark.parametrize("name, body, columns, what", [
    ("fields.csv", "text,label\nfine,pos\none,two,three\n", {"label": "label"}, "3 fields"),
    ("empty_text.csv", "text,label\n,pos\n", {"label": "label"}, "empty text"),
    ("null_label.jsonl", '{"text": "a", "label": "pos"}\n{"text": "b", "label": null}\n', {"label": "label"},
     "missing label"),
    ("header_only.tsv", "text\tlabel\n", {"label": "label"}, "no examples"),
    ("latin1.csv", "text,label\ncaf\xe9,pos\n".encode("latin-1"), {"label": "label"}, "not UTF-8"),
])
def test_a_damaged_labelled_file_names_its_line_and_exits_1(tmp_path, name, body, columns, what):
    # exit codes (README): 2 a bad command or setting (a column the file lacks is a setting), 1 a file
    # that turned out damaged
    path = tmp_path / name
    path.write_bytes(body if isinstance(body, bytes) else body.encode())
    with pytest.raises(WorkbenchError) as e:
        read_labelled(path, Columns(**columns))
    assert str(path) in str(e.value) and what in str(e.value)
    assert e.value.exit_code == 1, str(e.value)
