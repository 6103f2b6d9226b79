import pytest

from workbench.engine.config import (Experiment, describe_settings, load_experiment, loads_experiment,
                                     preset_names, resolve_experiment)
from workbench.engine.errors import ConfigError


def test_defaults_round_trip_through_toml(tmp_path):
    exp = Experiment()
    path = tmp_path / "exp.toml"
    exp.save(path)
    assert load_experiment(path) == exp


def test_values_are_read_and_coerced():
    exp = loads_experiment("""
        name = "x"
        [model]
        n_layer = 6
        dropout = 0          # an int where a float is wanted is fine
        [training]
        learning_rate = 3e-4
        device = "cpu"
    """)
    assert exp.model.n_layer == 6 and exp.model.dropout == 0.0 and isinstance(exp.model.dropout, float)
    assert exp.training.learning_rate == 3e-4


@pytest.mark.parametrize("text, words", [
    ("[model]\nn_layers = 4", ["model.n_layers", 'did you mean "n_layer"']),
    ("[trainig]\nmax_steps = 4", ["trainig", 'did you mean "training"']),
    ("[model]\nn_layer = 'four'", ["model.n_layer", "whole number"]),
    ("[model]\nn_layer = 0", ["model.n_layer", "minimum"]),
    ("[tokenizer]\nkind = 'bpee'", ["tokenizer.kind", 'did you mean "bpe"']),
    ("[model]\nn_embd = 130\nn_head = 4", ["n_embd = 130", "n_head = 4", "128", "132"]),
    ("[training]\nmin_lr = 1.0\nlearning_rate = 0.1", ["training.min_lr"]),
    ("[training]\ndevice = 'gpu'", ["training.device", "cuda"]),
    ("[model\nn_layer = 4", ["not valid TOML", "line 1"]),
    ("[corpus]\npaths = []", ["corpus.paths"]),
])
def test_bad_settings_name_the_key_and_what_to_do(text, words):
    with pytest.raises(ConfigError) as err:
        loads_experiment(text, source="exp.toml")
    msg = str(err.value)
    assert msg.startswith("exp.toml")
    for w in words:
        assert w in msg


def test_overrides_parse_values_as_toml_and_check_them():
    exp = Experiment().with_overrides(["training.max_steps=10", "tokenizer.kind=bpe", "model.dropout=0.1",
                                       'corpus.paths=["a.txt", "b.txt"]'])
    assert exp.training.max_steps == 10 and exp.tokenizer.kind == "bpe" and exp.model.dropout == 0.1
    assert exp.corpus.paths == ("a.txt", "b.txt")
    with pytest.raises(ConfigError, match="training.max_step"):
        Experiment().with_overrides(["training.max_step=10"])
    with pytest.raises(ConfigError, match="section.key=value"):
        Experiment().with_overrides(["max_steps"])


def test_relative_corpus_paths_are_relative_to_the_toml_file(tmp_path):
    (tmp_path / "sub").mkdir()
    path = tmp_path / "sub" / "exp.toml"
    path.write_text('[corpus]\npaths = ["../data.txt", "builtin:toy"]\n')
    exp = load_experiment(path)
    assert exp.corpus.paths == (str(tmp_path / "data.txt"), "builtin:toy")


def test_every_preset_loads_and_every_setting_is_described():
    assert {"demo_toy", "stdlib_bpe"} <= set(preset_names())
    for name in preset_names():
        assert resolve_experiment(name).name
    rows = describe_settings()
    assert all(help_text for _, help_text, _ in rows)
    assert "training.max_steps" in {name for name, _, _ in rows}


def test_a_missing_file_names_the_presets(tmp_path):
    with pytest.raises(ConfigError, match="demo_toy"):
        resolve_experiment(str(tmp_path / "nope.toml"))


def test_gradnorm_and_pcgrad_need_every_task_in_every_step():
    for weighting in ("gradnorm", "pcgrad"):
        with pytest.raises(ConfigError, match=f'weighting = "{weighting}".*sampling = "all"'):
            loads_experiment(f'[multitask]\nweighting = "{weighting}"\nsampling = "round_robin"\n', source="exp.toml")


def test_a_bad_value_from_set_is_blamed_on_set_not_on_the_file(tmp_path):
    from workbench.engine.config import load_experiment

    good = tmp_path / "exp.toml"
    good.write_text("[training]\nmax_steps = 10\n")
    with pytest.raises(ConfigError, match=r"^--set \(over .*exp\.toml\): training\.seed"):
        load_experiment(good, ["training.seed=9223372036854775808"])
    bad = tmp_path / "bad.toml"
    bad.write_text("[training]\nmax_steps = -1\n")
    with pytest.raises(ConfigError, match=r"bad\.toml: training\.max_steps"):  # the file's own fault
        load_experiment(bad, ["training.seed=1"])
