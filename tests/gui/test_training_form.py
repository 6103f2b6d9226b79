"""The Training page's number fields take their limits from the settings' metadata, the limits
config.check_range enforces, so the window cannot offer a value a run would refuse."""

import dataclasses

from workbench.engine.config import TrainingConfig
from workbench.gui.panels.training_panel import HYPER, TrainingPanel


def test_hyperparameter_fields_have_the_settings_limits(qtbot):
    panel = TrainingPanel()
    qtbot.addWidget(panel)
    meta = {f.name: f.metadata for f in dataclasses.fields(TrainingConfig)}
    for name, _label, _kind in HYPER:
        box, lo, hi = panel.fields[name], meta[name].get("min"), meta[name].get("max")
        if lo is not None:
            assert box.minimum() == lo, name
        if hi is not None:
            assert box.maximum() == min(hi, 2**31 - 1), name
