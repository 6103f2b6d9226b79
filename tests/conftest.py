import os
import random

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path_factory, monkeypatch):
    """Runs and caches of every test go to temporary folders, never the user's data dir."""
    root = tmp_path_factory.mktemp("workbench")
    monkeypatch.setenv("WORKBENCH_DATA_DIR", str(root / "data"))
    monkeypatch.setenv("WORKBENCH_CACHE_DIR", str(root / "cache"))
    monkeypatch.setenv("WORKBENCH_CONFIG_DIR", str(root / "config"))
    return root


@pytest.fixture
def small_text(tmp_path):
    """~40 KB of patterned text the project makes itself: quick to learn, long enough to split."""
    rng = random.Random(0)
    words = "the a cat dog sat on mat ran to big small red blue and then saw".split()
    lines = [" ".join(rng.choice(words) for _ in range(rng.randint(4, 10))) + "." for _ in range(1500)]
    path = tmp_path / "small.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
