"""One in-context task builder (engine.icl_task) for `workbench eval` and the Evaluate page."""

import subprocess
import sys

import pytest

from workbench.engine.errors import ConfigError
from workbench.engine.evaluate import builtin_icl_task, default_template
from workbench.engine.icl_task import ICLTaskSpec, build_icl_task, builtin_data


def data_file(tmp_path):
    path = tmp_path / "data.tsv"
    path.write_text("sentence\tlabel\n" + "".join(f"{w}\t{i % 2}\n" for i, w in enumerate("abcdefghijklmnopqrst")))
    return path


def test_the_builtin_task_takes_its_keys_from_the_data_name():
    assert builtin_data(4) == "builtin:icl" and builtin_data(6) == "builtin:icl:6"
    task = build_icl_task(ICLTaskSpec(data="builtin:icl:6", limit=30, seed=2))
    want = builtin_icl_task(n=30, seed=2, n_keys=6)
    assert task.test == want.test and task.pool == want.pool and task.labels == want.labels
    assert len(build_icl_task(ICLTaskSpec(data="builtin:icl", limit=None)).test) == 200  # the default
    with pytest.raises(ConfigError, match="builtin:icl:six: use builtin:icl or builtin:icl:N"):
        build_icl_task(ICLTaskSpec(data="builtin:icl:six"))


def test_a_labelled_task_uses_the_default_template_where_a_part_is_not_given(tmp_path):
    data = data_file(tmp_path)
    task = build_icl_task(ICLTaskSpec(data=str(data), text="sentence", description="Guess.", limit=5, seed=1,
                                      verbalizer=(("1", "yes"),)))
    assert task.template == default_template(description="Guess.")
    assert len(task.test) == 5 and task.labels == ["0", "1"] and task.verbalize("1") == "yes"
    given = build_icl_task(ICLTaskSpec(data=str(data), text="sentence", input="{text} =", answer_template="{answer}",
                                       separator="", labels=("1", "0")))
    t = given.template
    assert (t.input, t.answer, t.separator) == ("{text} =", "{answer}", "")  # "" is a separator as typed
    assert given.labels == ["1", "0"]


def test_the_engine_builder_imports_no_torch():
    """The window makes specs on its GUI thread while torch loads in the background."""
    code = "import sys, workbench.engine.icl_task as m; m.ICLTaskSpec(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
