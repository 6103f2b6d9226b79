"""The sampling settings of the Generate page as typed: a field per setting and the
stop-at-end-of-text check, read into the engine's ``SamplingSettings``."""

from __future__ import annotations

from PySide6 import QtWidgets

from ... import theme
from ...widgets.flow import together

SETTING_FIELDS = ("max_tokens", "temperature", "top_k", "top_p", "seed")
SPECS = [  # name, label, default, tooltip: in the order shown
    ("temperature", "Temperature", "0.8", "0: greedy (always the most likely token); below 1: safer; "
                                          "above 1: more surprising."),
    ("top_k", "Top-k", "0", "Sample only among the k most likely tokens (0: all)."),
    ("top_p", "Top-p", "1.0", "Sample only among the most likely tokens whose probabilities add up to "
                              "p (1: all)."),
    ("max_tokens", "Max tokens", "200", "How many tokens to generate at most."),
    ("seed", "Seed", "0", "The same seed gives the same text; blank or \"random\" for a new one each "
                          "time."),
]


class SamplingFields:
    """The fields (``fields[name]``, each with its label in ``rows``) and ``eos_check``; the page
    lays them out. ``on_change`` is called whenever a field is edited."""

    def __init__(self, on_change):
        self.fields: dict[str, QtWidgets.QLineEdit] = {}
        self.rows: list[QtWidgets.QWidget] = []  # label and field kept together in a wrapping row
        for name, label, default, tip in SPECS:
            lab = QtWidgets.QLabel(label)
            lab.setToolTip(tip)
            edit = QtWidgets.QLineEdit(default)
            edit.setObjectName(f"gen_{name}")
            edit.setToolTip(tip)
            edit.setMaximumWidth(80 if name != "seed" else 90)
            if name == "seed":
                edit.setPlaceholderText("random")
            edit.textChanged.connect(on_change)
            self.rows.append(together(lab, edit))
            self.fields[name] = edit
        self.eos_check = QtWidgets.QCheckBox("Stop at <|endoftext|>")
        self.eos_check.setChecked(True)
        self.eos_check.setToolTip("End when the model produces the end-of-text token")

    def settings(self):
        """The sampling settings typed in; raises ConfigError naming the setting when one is wrong."""
        from workbench.engine.errors import ConfigError
        from workbench.engine.generate import SamplingSettings

        values = {}
        for name in SETTING_FIELDS:
            text = self.fields[name].text().strip().replace(",", ".")
            if name == "seed" and text.lower() in ("", "random", "none"):
                values[name] = None
                continue
            try:
                if name in ("max_tokens", "top_k", "seed"):
                    values[name] = int(text)
                else:
                    values[name] = float(text)
            except ValueError:
                kind = "a whole number" if name in ("max_tokens", "top_k", "seed") else "a number"
                extra = ' (or leave it blank for a random seed)' if name == "seed" else ""
                raise ConfigError(f"{name} = {text!r}: give {kind}{extra}.") from None
        s = SamplingSettings(stop_at_eos=self.eos_check.isChecked(), **values)
        s.check()
        return s

    def set_settings(self, settings) -> None:
        """Fill the fields from a ``SamplingSettings``."""
        for name in SETTING_FIELDS:
            v = getattr(settings, name)
            self.fields[name].setText("" if v is None else str(v))
        self.eos_check.setChecked(settings.stop_at_eos)

    def validate(self) -> str:
        """"" when the settings are fine, else the message (and the field is outlined in red)."""
        from workbench.engine.errors import WorkbenchError

        bad = ""
        try:
            self.settings()
            message = ""
        except WorkbenchError as e:
            message = str(e)
            bad = message.split(" = ", 1)[0]
        for name, edit in self.fields.items():
            edit.setStyleSheet(f"QLineEdit {{ border: 1px solid {theme.ERROR_COLOR}; }}" if name == bad else "")
        return message
