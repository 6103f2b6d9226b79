"""Screenshots of every page of the window, for the docs and for looking at the GUI.

    xvfb-run -s "-screen 0 1440x900x24" python tools/screenshots.py --size 1440x900 --modes normal presentation
    xvfb-run -s "-screen 0 1024x768x24" python tools/screenshots.py --size 1024x768 --presentation

Opens the window (with temporary settings, data and cache folders unless --keep-dirs), shows the
corpus, tokenizer and model pages, then presses Demo, lets it train until it moves to the Attention
page by itself (a copy head has formed) or for --seconds, and grabs the training, curves and
attention pages while it runs; pauses it and generates from the live model (the Generate page) and
switches its most useful head off (the Inside page); stops it and shows the Runs page;
runs a lesson (--lesson, the first listed by default) and shoots the Lessons page while it runs
(lessons_running.png, once half its runs have finished) and at its end (lessons.png); then the rest.
Finally closes cleanly.

Every page is shot at the window size --size (the screen should be that big: the window is kept
on its screen) in each of --modes (--presentation: presentation mode only), into
OUT/<size>[-presentation]/<page>.png. With --top-level the normal-mode shots of the pages the
README shows are also written to OUT/<page>.png.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


# the pages README.md shows (tools/screens_mt_ft.py makes tasks, balance, finetune)
README_PAGES = ("corpus", "tokenizer", "model", "training", "curves", "attention", "evaluate", "generate", "inside",
                "runs", "lessons", "lessons_running")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    ap.add_argument("--seconds", type=float, default=120.0, help="at most this long the demo trains before the live shots (it moves on "
                    "as soon as a copy head forms)")
    ap.add_argument("--size", default="1440x900", help="window size WIDTHxHEIGHT (at most the screen's free area)")
    ap.add_argument("--modes", nargs="+", choices=("normal", "presentation"), default=["normal"],
                    help="shoot every page in these modes (default: normal)")
    ap.add_argument("--presentation", action="store_true", help="the same as --modes presentation")
    ap.add_argument("--top-level", action="store_true",
                    help="also write the normal-mode shots of the README's pages to OUT/<page>.png")
    ap.add_argument("--keep-dirs", action="store_true", help="use the normal data and cache folders")
    ap.add_argument("--icl-run", help="a run of the icl_keyvalue preset: also shoot the Evaluate page on it")
    ap.add_argument("--lesson", help="the lesson to run on the Lessons page (default: the first one listed)")
    ap.add_argument("--lesson-size", choices=("full", "small"), default="full",
                    help="its size (default full: the figures the docs report; small: quicker)")
    ap.add_argument("--only-lessons", action="store_true", help="shoot the Lessons page only (no demo run)")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="workbench-shots-"))
    if not args.keep_dirs:
        os.environ["WORKBENCH_DATA_DIR"] = str(tmp / "data")
        os.environ["WORKBENCH_CACHE_DIR"] = str(tmp / "cache")

    import shiboken6
    from PySide6 import QtCore

    from workbench.gui.app import create_app

    app = create_app()
    from workbench.gui.window.main_window import MainWindow

    out = Path(args.out)
    modes = ["presentation"] if args.presentation else list(dict.fromkeys(args.modes))
    folders = {m: out / (args.size + ("-presentation" if m == "presentation" else "")) for m in modes}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    settings = QtCore.QSettings(str(tmp / "settings.ini"), QtCore.QSettings.Format.IniFormat)
    w = MainWindow(settings=settings)
    width, height = (int(v) for v in args.size.lower().split("x"))
    w.show()
    w.resize(width, height)
    w.fit_to_screen()  # a window bigger than the screen would be cut off: say so below

    def spin(seconds: float, until=lambda: False) -> bool:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            app.processEvents(QtCore.QEventLoop.ProcessEventsFlag.AllEvents, 50)
            if until():
                return True
            time.sleep(0.02)
        return until()

    shot: set[str] = set()

    def shoot(*panels: str, name: str = "", then=lambda: None) -> None:
        """Each page in each mode (the window's own pixels: the same with any window manager), into
        <panel>.png or ``name``.png; ``then()`` once the page is shown (scroll to what matters)."""
        for mode in modes:
            w.set_presentation(mode == "presentation")
            for panel in panels:
                w.show_panel(panel)
                spin(0.6)
                w.curves.refresh(force=True)
                w.lessons.live.refresh()
                then()
                spin(0.3)
                file = name or panel
                paths = [folders[mode] / f"{file}.png"]
                readme = file in README_PAGES and (panel != "evaluate" or args.icl_run)  # README's is of ICL
                if args.top_level and mode == "normal" and readme:
                    paths.append(out / f"{file}.png")
                image = w.grab()
                for path in paths:
                    image.save(str(path))
                    print(f"saved {path} ({image.width()}x{image.height()})", flush=True)
                shot.add(panel)
        w.set_presentation(False)

    def shoot_lessons() -> None:
        """A lesson while it runs (once half its runs have finished) and at its end."""
        w.show_panel("lessons")
        spin(120, lambda: bool(w.lessons.lesson_names()) or bool(w.lessons.error.text()))
        if not w.lessons.lesson_names():
            print("note: no lessons are installed; the Lessons page is shot empty", flush=True)
            return
        w.lessons.select(args.lesson or w.lessons.lesson_names()[0])
        w.lessons.set_size(args.lesson_size)
        w.lessons.run()
        half = lambda: w.lessons.progress()[1] > 0 and w.lessons.progress()[0] >= w.lessons.progress()[1] // 2
        spin(1200, lambda: not w.lessons.is_running() or half())
        shoot("lessons", name="lessons_running")
        spin(1200, lambda: not w.lessons.is_running())
        shoot("lessons", then=w.lessons.reveal_verdict)

    if (w.width(), w.height()) != (width, height):
        print(f"note: the window is {w.width()}x{w.height()}: the screen has no room for {args.size}", flush=True)
    spin(30, w.engine_ready)
    if args.only_lessons:
        shoot_lessons()
        w.confirm_close = False
        w.close()
        shiboken6.delete(w)  # now, not at the interpreter's exit, where a plot's callback crashed it
        return 0
    spin(30, lambda: not w.corpus.is_counting())
    shoot("corpus")
    w.show_panel("tokenizer")
    spin(2)
    spin(120, lambda: not w.tokenizer.is_training())
    w.tokenizer.sample_edit.setPlainText("abcde>abcde\nponmk>ponmk\n")
    spin(0.5)
    shoot("tokenizer", "model", "tasks", "finetune")

    w.run_demo()
    spin(args.seconds, lambda: w.current_panel() == "attention")  # the Demo shows its copy head
    spin(3)  # a few more steps on the curves
    shoot("training", "curves", "balance", "attention")

    # Generate from the live model of the paused run: the demo's copy task ("bjdpg>" -> "bjdpg")
    from workbench.engine.generate import SamplingSettings

    w.pause()
    spin(30, lambda: w.generate.live_available())
    w.show_panel("generate")
    w.generate.set_source("live")
    w.generate.prompt_edit.setPlainText("bjdpg>")
    w.generate.set_settings(SamplingSettings(max_tokens=16, temperature=0.0, seed=0))
    w.generate.generate()
    spin(60, lambda: not w.generate.is_generating())
    if w.generate.generated_tokens():  # the third generated token (chips count the prompt first)
        w.generate.select_token(w.generate.prompt_count() + min(2, len(w.generate.generated_tokens()) - 1))
    shoot("generate")

    # Inside, on the same paused model: every head's effect on the probe, the strongest switched off
    w.show_panel("inside")
    w.inside.live_radio.setChecked(True)
    w.inside.probe_edit.setText(w.experiment().training.probe_text)
    w.inside.measure()
    spin(120, lambda: not w.inside.is_busy())
    if w.inside._result is not None:
        layer, head, _ = w.inside._result["table"].strongest()
        w.inside.toggle_head(layer, head)
        spin(60, lambda: not w.inside.is_busy())
    shoot("inside")

    if args.icl_run:  # in-context accuracy against k on a model trained on builtin:icl
        w.show_panel("evaluate")
        w.evaluate.set_run(args.icl_run)
        w.evaluate.use_builtin_task(4)
        w.evaluate.set_ks(8, every=True)
        w.evaluate.draws_spin.setValue(5)
        w.evaluate.examples_spin.setValue(200)
        spin(1.0)
        w.evaluate.start_evaluation()
        spin(600, lambda: not w.evaluate.is_busy())
        w.evaluate.inspect(5, 8, 0)
        spin(30, lambda: not w.evaluate.is_busy())
        shoot("evaluate")

    # stop the run; it is listed on the Runs page beside any earlier ones
    w.confirm_close = False
    w.stop()
    spin(60, lambda: not w.session.is_active())
    w.runs.refresh()
    spin(30, lambda: not w.runs.is_listing())
    w.runs.select_runs([w.session.run_dir])
    spin(1.0)
    shoot("runs")
    shoot_lessons()
    rest = [p for p in w.panels if p not in shot]  # Evaluate with the demo's model, unless --icl-run
    shoot(*rest)
    w.close()
    spin(60, lambda: not w.session.is_active())
    spin(1.0)
    w.close()
    print("closed cleanly" if not w.session.is_active() else "run still going", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
