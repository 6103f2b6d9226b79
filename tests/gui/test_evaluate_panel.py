"""The Evaluate panel (in-context learning): what it plots and shows is what the engine computes."""

import json

import numpy as np
import pytest
import torch
from PySide6 import QtGui

from workbench.engine import builtin_corpora
from workbench.engine.errors import ConfigError
from workbench.engine.evaluate import (build_prompt, builtin_icl_task, demonstration_attention,
                                       evaluate_in_context)
from workbench.engine.gpt2_interop import export_gpt2, import_gpt2
from workbench.engine.icl_task import ICLTaskSpec
from workbench.engine.loading import load_trained
from workbench.engine.model import GPT, GPTConfig
from workbench.engine.tokenizer import train_tokenizer
from workbench.gui.jobs.evaluate import check_task
from workbench.gui.panels.evaluate import page as ep
from workbench.gui.panels.evaluate import plot as eplot
from workbench.gui.panels.evaluate import prompt_view
from workbench.gui.panels.evaluate.page import EvaluatePanel


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A 1-layer char GPT with a 32-token context, saved as a run folder (random weights: the
    numbers only have to agree with the engine's; seed 3 happens to give a spread over draws)."""
    base = tmp_path_factory.mktemp("icl_run")
    tok = train_tokenizer("char", 64, [builtin_corpora.ICL_KEYS + builtin_corpora.ICL_VALUES + " \n,:abcxyz"])
    torch.manual_seed(3)
    model = GPT(GPTConfig(vocab_size=tok.vocab_size, n_layer=1, n_head=2, n_embd=16, block_size=32))
    return import_gpt2(export_gpt2(model, tok, base / "hf"), base / "run")


@pytest.fixture
def panel(qtbot):
    p = EvaluatePanel()
    qtbot.addWidget(p)
    p.resize(1300, 850)
    p.show()
    qtbot.waitExposed(p)
    yield p
    p.cancel()
    p.wait_idle()


def builtin_settings(panel, run, *, examples=30, k_max=2, draws=3, attention=4):
    panel.set_run(run)
    panel.use_builtin_task(4)
    panel.examples_spin.setValue(examples)
    panel.set_ks(k_max, every=True)
    panel.draws_spin.setValue(draws)
    panel.attention_spin.setValue(attention)
    assert panel.wait_idle()
    assert panel.trained() is not None and panel.task() is not None


def test_the_plot_shows_the_engines_accuracy_per_k_and_the_json_is_the_eval_commands(panel, tiny_run, tmp_path):
    builtin_settings(panel, tiny_run)
    with_summary = []
    panel.summaryChanged.connect(with_summary.append)
    panel.start_evaluation()
    assert panel.wait_idle()
    assert panel.result() is not None, panel.error.text()

    trained = load_trained(tiny_run, with_heads=False)
    want = evaluate_in_context(trained.model, trained.tokenizer, builtin_icl_task(n=30, seed=0, n_keys=4),
                               [0, 1, 2], 3, attention_examples=4)
    pts = panel.plotted_points()
    assert pts["k"].tolist() == [0, 1, 2] and pts["bar_x"].tolist() == [0, 1, 2]
    assert pts["mean"].tolist() == [r.accuracy for r in want.results]
    assert pts["bar_y"].tolist() == [r.accuracy for r in want.results]
    assert pts["top"].tolist() == pts["bottom"].tolist() == [r.std for r in want.results]
    assert want.results[1].std > 0 or want.results[2].std > 0  # the spread over draws is there to see
    # every draw as a dot, chance and majority as lines, all in the legend
    dx, dy = panel.plot.draw_dots.getData()
    assert sorted(zip(dx.tolist(), dy.tolist())) == sorted((r.k, a) for r in want.results for a in r.accuracies)
    assert panel.plot.chance_line.getData()[1].tolist() == [0.25, 0.25]
    assert panel.plot.majority_line.getData()[1].tolist() == [want.majority] * 2
    names = panel.plot.legend_names()
    assert "mean of 3 draws ± 1 std" in names and "one draw" in names and "chance .25" in names
    assert any(n.startswith("majority class") for n in names)
    first, last = want.results[0].accuracy, want.results[-1].accuracy
    assert with_summary[-1] == f"k=0 {eplot.short_acc(first)} → k=2 {eplot.short_acc(last)}" == panel.summary()
    assert panel.results_table.rowCount() == 3 and panel.results_table.item(2, 1).text() == f"{last:.3f}"

    # saved as `workbench eval --out` writes it
    from workbench.cli import main

    ours, theirs = tmp_path / "panel.json", tmp_path / "cli.json"
    panel.save_results(ours)
    assert main(["eval", str(tiny_run), "--data", "builtin:icl", "--k", "0,1,2", "--draws", "3", "--limit", "30",
                 "--attention", "4", "--device", "cpu", "--out", str(theirs)]) == 0
    a, b = json.loads(ours.read_text()), json.loads(theirs.read_text())
    assert a.keys() == b.keys()
    assert a["look_back"] == b["look_back"] and a["look_back"]["positions"] > 0  # induction-head scores
    assert "Look-back heads" in panel.plot_caption.text()
    att_a, att_b = a.pop("attention"), b.pop("attention")
    assert a == b
    assert att_a["demonstrations"] == pytest.approx(att_b["demonstrations"], abs=1e-5)


def test_the_prompt_view_shows_build_prompts_text_and_the_bars_the_querys_attention(panel, tiny_run):
    builtin_settings(panel, tiny_run)
    panel.inspect(3, 2, 1)
    assert panel.wait_idle()

    trained = load_trained(tiny_run, with_heads=False)
    task = builtin_icl_task(n=30, seed=0, n_keys=4)
    demos = task.demonstrations(2, 1)
    query = task.test[3]
    prompt = build_prompt(task.template, [(d, task.answers(d)[task.gold(d)]) for d in demos], query,
                          task.answers(query), gold=task.gold(query), tokenizer=trained.tokenizer, block_size=32)
    assert panel.prompt_view.toPlainText() == prompt.text
    # the parts are coloured: demonstrations alternate, the query stands out
    doc = panel.prompt_view.document()

    def background(pos):
        cur = QtGui.QTextCursor(doc)
        cur.setPosition(pos + 1)  # the format of the character before the cursor
        return cur.charFormat().background().color().name()

    starts = {(p.kind, p.index): sum(len(q.text) for q in prompt.parts[:i]) for i, p in enumerate(prompt.parts)}
    assert background(starts[("demonstration", 0)]) == prompt_view.DEMO_FILLS[0]
    assert background(starts[("demonstration", 1)]) == prompt_view.DEMO_FILLS[1]
    assert background(starts[("query", -1)]) == prompt_view.QUERY_FILL

    att = demonstration_attention(trained.model, prompt)
    bars = panel.attention_bars.values()
    assert len(bars) == 2 and bars == pytest.approx(att.demonstrations, abs=1e-6)
    assert 0 < sum(bars) <= 1 + 1e-6
    panel.attention_mode.setCurrentIndex(panel.attention_mode.findData("last"))
    last = [s for p, s in zip(att.parts, att.last) if p.kind == "demonstration"]
    assert panel.attention_bars.values() == pytest.approx(last, abs=1e-6) and sum(last) <= 1 + 1e-6
    # the candidates, the right one marked
    assert f"{prompt.answers[prompt.gold]!r} ✓" in panel.answers_label.text()

    # zero-shot: no demonstrations, no bars
    panel.inspect(0, 0, 0)
    assert panel.wait_idle()
    assert panel.prompt_view.toPlainText() == task.test[0].text and panel.attention_bars.values() == []


def fake_finetuned_run(base, data_file):
    from workbench.engine.config import Experiment, TaskConfig

    run = base / "finetuned"
    (run / "checkpoints").mkdir(parents=True)
    Experiment().replace(tasks=(TaskConfig(kind="classification", name="sst", train=str(data_file), label="label"),)
                         ).save(run / "config.toml")
    lines = [{"step": 10, "split": "val", "task": "sst", "loss": 0.6, "accuracy": 0.70},
             {"step": 20, "split": "val", "task": "sst", "loss": 0.5, "accuracy": 0.85},
             {"step": 30, "split": "val", "task": "sst", "loss": 0.5, "accuracy": 0.80}]
    (run / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    return run


def labelled_file(tmp_path, name="reviews.csv"):
    path = tmp_path / name
    words = ["good", "bad", "great", "awful", "fine", "poor", "nice", "dull"]
    path.write_text("sentence,label\n" + "".join(f"{w} {i},{i % 2}\n" for i, w in enumerate(words * 3)))
    return path


def test_the_fine_tuned_line_reads_the_runs_accuracy_or_a_typed_value(panel, tmp_path):
    data = labelled_file(tmp_path)
    panel.set_data_file(data)
    run = fake_finetuned_run(tmp_path, data)
    panel.reference.load(run)
    assert panel.wait_idle()
    assert panel.plot.reference() == 0.85 and panel.reference.spin.value() == 0.85
    assert panel.reference.box.isChecked() and "'sst'" in panel.reference.info.text()
    assert any(n.startswith("fine-tuned .85") for n in panel.plot.legend_names())
    panel.reference.which.setCurrentIndex(panel.reference.which.findData("last"))
    assert panel.wait_idle()
    assert panel.plot.reference() == 0.80
    panel.reference.spin.setValue(0.6)  # typed
    assert panel.plot.reference() == 0.6
    panel.reference.box.setChecked(False)
    assert panel.plot.reference() is None
    # a run without accuracies says so, inline
    (run / "metrics.jsonl").write_text("")
    panel.reference.load(run)
    assert panel.wait_idle()
    assert "no validation accuracy" in panel.reference.info.text()


def test_a_labelled_file_builds_the_task_and_a_missing_column_is_named(panel, tiny_run, tmp_path):
    data = labelled_file(tmp_path)
    panel.set_run(tiny_run)
    panel.set_data_file(data)
    assert panel.wait_idle()
    assert panel.task_form.columns["text"].value() == "sentence" and panel.task_form.columns["label"].value() == "label"
    task = panel.task()
    assert task is not None and task.labels == ["0", "1"] and panel.task_message() == ""
    assert panel.task_form.verbalizer_table.rowCount() == 2
    panel.task_form.verbalizer_table.item(1, 1).setText("yes")  # typed into the table
    panel.set_template(input="{text} =", answer=" {answer}", separator="\n")
    assert panel.wait_idle()
    task = panel.task()
    assert task.verbalize("1") == "yes" and task.verbalize("0") == "0"
    assert (task.template.input, task.template.separator) == ("{text} =", "\n")
    assert panel.task_spec().data == str(data)

    panel.set_column("text", "review")
    assert panel.wait_idle()
    assert panel.task() is None
    assert "'review'" in panel.task_message() and not panel.task_form.task_error.isHidden()
    panel.start_evaluation()  # the evaluation meets the same error and says so, inline
    assert panel.wait_idle()
    assert panel.result() is None and "'review'" in panel.error.text()

    panel.set_data_file(tmp_path / "nope.csv")
    assert panel.wait_idle()
    assert "no such file" in panel.task_message()


def test_cancel_stops_the_evaluation(panel, tiny_run, qtbot):
    builtin_settings(panel, tiny_run, examples=100, k_max=8, draws=40, attention=0)
    panel.start_evaluation()
    job = panel._eval.job
    seen = []

    def first_progress(value):
        seen.append(value)
        if len(seen) == 1:
            panel.cancel_button.click()

    job.progress.connect(first_progress)
    assert panel.cancel_button.isEnabled() and not panel.run_eval_button.isEnabled()
    with qtbot.waitSignal(job.cancelled, timeout=60000):
        pass
    assert panel.wait_idle()
    done, total = seen[-1]
    assert done < total and total == 100 * (1 + 8 * 40)
    assert panel.result() is None and panel.plotted_points()["k"].size == 0
    assert panel.status.text().startswith("Stopped") and panel.run_eval_button.isEnabled()
    assert not panel.cancel_button.isEnabled()


def test_ks_are_every_k_or_doubling():
    assert ep.ks_for(8, every=False) == [0, 1, 2, 4, 8]
    assert ep.ks_for(6, every=False) == [0, 1, 2, 4, 6]
    assert ep.ks_for(3, every=True) == [0, 1, 2, 3]
    assert ep.ks_for(0, every=False) == [0]
    assert np.isclose(float(eplot.short_acc(0.25)), 0.25) and eplot.short_acc(1.0) == "1.00"


def test_accuracy_plot_scrolls_the_page_zooms_with_ctrl_and_double_click_fits(qtbot):
    """The wheel over the plot scrolls the page (it zoomed the plot by accident); Ctrl+wheel
    zooms; a double-click brings back the whole k range and accuracy 0..1."""
    from PySide6 import QtCore, QtWidgets

    from workbench.gui.panels.evaluate.plot import AccuracyPlot

    plot = AccuracyPlot()
    plot.set_ks([0, 1, 2, 4, 8])
    plot.set_baselines(0.25, 0.5)
    host = QtWidgets.QWidget()
    lay = QtWidgets.QVBoxLayout(host)
    plot.setFixedHeight(300)
    lay.addWidget(plot)
    lay.addSpacing(1500)
    page = QtWidgets.QScrollArea()
    page.setWidgetResizable(True)
    page.setWidget(host)
    qtbot.addWidget(page)
    page.resize(600, 500)
    page.show()
    qtbot.waitExposed(page)
    qtbot.wait(50)
    vb = plot.item.getViewBox()
    viewport = plot.view.viewport()
    before = [list(r) for r in vb.viewRange()]

    def wheel(dy, modifiers):
        pos = QtCore.QPointF(viewport.width() / 2, viewport.height() / 2)
        QtWidgets.QApplication.sendEvent(viewport, QtGui.QWheelEvent(
            pos, viewport.mapToGlobal(pos), QtCore.QPoint(0, 0), QtCore.QPoint(0, dy),
            QtCore.Qt.MouseButton.NoButton, modifiers, QtCore.Qt.ScrollPhase.NoScrollPhase, False))

    wheel(-360, QtCore.Qt.KeyboardModifier.NoModifier)
    assert page.verticalScrollBar().value() > 0
    assert [list(r) for r in vb.viewRange()] == before
    wheel(480, QtCore.Qt.KeyboardModifier.ControlModifier)
    zoomed = [list(r) for r in vb.viewRange()]
    assert zoomed[0][1] - zoomed[0][0] < 0.9 * (before[0][1] - before[0][0])
    qtbot.mouseDClick(viewport, QtCore.Qt.MouseButton.LeftButton,
                      pos=QtCore.QPoint(viewport.width() // 2, viewport.height() // 2))
    assert np.allclose(vb.viewRange(), before, atol=1e-6)
    assert "Ctrl+wheel" in plot.view.toolTip()


def test_the_page_and_workbench_eval_build_the_same_task_from_the_same_settings(panel, tiny_run, tmp_path, capsys):
    """One builder (engine.icl_task) for both: a labelled file with its columns, verbalizer,
    description, template, number of examples and seed gives the same prompts and the same scores."""
    from workbench.cli import main

    data = labelled_file(tmp_path)
    panel.set_run(tiny_run)
    panel.set_data_file(data)
    panel.set_verbalizer("0", "no")
    panel.set_verbalizer("1", "yes")
    panel.set_template(description="Good or bad?", input="{text} =", separator="\n")
    panel.examples_spin.setValue(12)
    panel.seed_spin.setValue(7)
    panel.set_ks(2, every=True)
    panel.draws_spin.setValue(3)
    panel.attention_spin.setValue(0)
    assert panel.wait_idle() and panel.trained() is not None
    panel.start_evaluation()
    assert panel.wait_idle() and panel.result() is not None, panel.error.text()
    panel.inspect(0, 2, 0)
    assert panel.wait_idle()
    ours, theirs = tmp_path / "panel.json", tmp_path / "cli.json"
    panel.save_results(ours)

    capsys.readouterr()
    assert main(["eval", str(tiny_run), "--data", str(data), "--text", "sentence", "--label", "label",
                 "--verbalizer", "0=no,1=yes", "--description", "Good or bad?", "--template", "{text} =",
                 "--separator", r"\n", "--limit", "12", "--seed", "7", "--k", "0,1,2", "--draws", "3",
                 "--attention", "0", "--show-prompt", "2", "--device", "cpu", "--out", str(theirs)]) == 0
    printed = capsys.readouterr().out
    shown = printed.split("---\n", 1)[1].rsplit("\n--- answers:", 1)[0]
    assert shown == panel.prompt_view.toPlainText() and shown.startswith("Good or bad?\n")
    a, b = json.loads(ours.read_text()), json.loads(theirs.read_text())
    assert a == b and len(a["results"][2]["accuracies"]) == 3


def test_a_model_still_loading_when_another_is_chosen_is_dropped(panel, tiny_run, tmp_path):
    """The first load ends after the second (which fails at once): its model must not arrive."""
    panel.set_run(tiny_run)
    panel.set_run(tmp_path / "no-such-run")
    assert panel.wait_idle()
    assert panel.trained() is None and panel.run_path() == str(tmp_path / "no-such-run")
    assert "no-such-run" in panel.model_info.text() and "blocks" not in panel.model_info.text()


class _State:
    """What a job function sees, without a thread."""

    def check(self):
        pass


def test_the_task_job_reads_the_task_and_names_what_the_form_lacks(tmp_path):
    data = str(labelled_file(tmp_path))
    info = check_task(_State(), ICLTaskSpec(data=data, text="sentence", limit=5))
    assert info["n_test"] == 5 and info["labels"] == ["0", "1"] and sum(info["counts"]) == 5
    assert info["chance"] == 0.5 and info["task"].template.input == info["default"]["input"]
    with pytest.raises(ConfigError, match="Choose a labelled data file"):
        check_task(_State(), ICLTaskSpec(data=""))
    with pytest.raises(ConfigError, match="Choose the text column and the label column"):
        check_task(_State(), ICLTaskSpec(data=data, text=""))
