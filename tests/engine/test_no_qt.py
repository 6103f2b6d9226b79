import subprocess
import sys


def test_importing_the_engine_loads_no_qt():
    code = ("import sys, workbench.engine, workbench.engine.trainer, workbench.bench.train, workbench.bench.demo, workbench.cli; "
            "bad = [m for m in sys.modules if m.startswith(('PySide6', 'pyqtgraph', 'workbench.gui'))]; "
            "print(bad); sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
