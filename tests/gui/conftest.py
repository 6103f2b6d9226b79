import os

# Qt without a display: every GUI test runs on the offscreen platform unless told otherwise.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402


@pytest.fixture
def fresh_window(qtbot, qapp, tmp_path, monkeypatch):
    """A shown window with its own data and cache folders (nothing shared with other tests)."""
    from .windows import shown_window

    monkeypatch.setenv("WORKBENCH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("WORKBENCH_CACHE_DIR", str(tmp_path / "cache"))
    with shown_window(qtbot, tmp_path) as w:
        yield w
