"""``workbench bench gui``: does the window stay responsive while it trains, and does training
stay as fast as without the window?

One real training run goes on in a real ``MainWindow`` (offscreen unless a display is there),
started through the window's own Start path, so the bridge's QThread, throttled signals and
attention mailbox are all exercised. Measured, and printed as one JSON object:

- ``event_loop``: how late a 5 ms single-shot QTimer fires on the GUI thread (re-armed at each
  shot), p50 / p99 / max in milliseconds, while the curves page is shown and updates live; the
  same for the attention page (``event_loop_attention``, with "Snapshot now" pressed every
  0.4 s so that there are snapshots to time).
- ``throughput``: training tokens/s in the window (from the run's ``StepMetrics``, as the bridge
  sends them, against wall time) divided by the tokens/s of the same experiment trained by the
  engine's ``Trainer`` without Qt in a plain thread of this process, with the number of threads
  the window gives its worker (cores - 1), and also with every core. The measurement goes in
  rounds, so that the drift of a shared machine hits both alike: the window's run with the
  5 ms timer (``ratio_with_lateness_timer``: the timer itself costs the GUI thread 1-2% of a
  core), the window's run alone (``ratio_same_threads``), then the headless run for as long,
  the window's run paused meanwhile and the main thread asleep.
- ``curves_redraw``: ``widgets.redraw_benchmark`` with 10^6 points.
- ``attention_to_pixels``: from an ``AttentionSnapshot`` put into the bridge's mailbox to the
  attention panel's heatmap painted (the paint done and the frame flushed), for the run's own
  snapshots while it trains, and for snapshots posted from another thread with the run stopped;
  ``attention_widget``: ``widgets.paint_benchmark`` (set + paint of the widget alone).

Wall-clock figures on a shared machine include time lost to other programs: CPU times (of the
process, of the GUI thread and, on Linux, of the worker thread with its run-queue wait) and the
load average are reported beside them.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from PySide6 import QtCore, QtWidgets

TIMER_MS = 5


# -- small helpers -----------------------------------------------------------------------------


def _pcts(values_ms: list[float]) -> dict:
    a = np.asarray(values_ms, dtype=np.float64)
    if a.size == 0:
        return {"n": 0}
    return {"n": int(a.size), "p50_ms": round(float(np.percentile(a, 50)), 3),
            "p99_ms": round(float(np.percentile(a, 99)), 3), "max_ms": round(float(a.max()), 3),
            "mean_ms": round(float(a.mean()), 3)}


def _spin(seconds: float) -> None:
    """Run the Qt event loop (really exec'd, not polled) for ``seconds``."""
    loop = QtCore.QEventLoop()
    QtCore.QTimer.singleShot(max(0, int(seconds * 1000)), loop.quit)
    loop.exec()


def _spin_until(predicate, timeout: float, poll_ms: int = 20) -> bool:
    deadline = time.monotonic() + timeout
    loop = QtCore.QEventLoop()
    timer = QtCore.QTimer()
    timer.setInterval(poll_ms)
    timer.timeout.connect(lambda: (predicate() or time.monotonic() > deadline) and loop.quit())
    timer.start()
    if not predicate():
        loop.exec()
    timer.stop()
    return bool(predicate())


def _thread_stat(tid: int | None) -> tuple[float, float] | None:
    """(CPU seconds, seconds waiting for a CPU) of a thread of this process (Linux schedstat)."""
    if tid is None:
        return None
    try:
        on_cpu, waiting, _ = Path(f"/proc/self/task/{tid}/schedstat").read_text().split()
        return int(on_cpu) / 1e9, int(waiting) / 1e9
    except (OSError, ValueError):
        return None


def _diff(b, a):
    return None if a is None or b is None else tuple(round(y - x, 3) for x, y in zip(a, b))


class _LatenessProbe(QtCore.QObject):
    """A 5 ms single-shot precise timer, re-armed at each shot: lateness = fire - (arm + 5 ms)."""

    def __init__(self):
        super().__init__()
        self.timer = QtCore.QTimer(self)
        self.timer.setTimerType(QtCore.Qt.TimerType.PreciseTimer)
        self.timer.setSingleShot(True)
        self.timer.setInterval(TIMER_MS)
        self.timer.timeout.connect(self._fired)
        self.samples: list[float] = []
        self._armed = 0.0

    def start(self) -> None:
        self.samples = []
        self._armed = time.perf_counter()
        self.timer.start()

    def stop(self) -> list[float]:
        self.timer.stop()
        return self.samples

    def _fired(self) -> None:
        now = time.perf_counter()
        self.samples.append(max(0.0, (now - self._armed) * 1e3 - TIMER_MS))
        self._armed = now
        self.timer.start()


class _TimedMailbox:
    """The bridge's one-slot mailbox, noting when each snapshot went in and came out."""

    def __init__(self, inner):
        self.inner = inner
        self.put_times: dict[int, float] = {}   # id(event) -> perf_counter at put
        self.taken: list[tuple[float, float]] = []  # (put time, take time) of each snapshot taken

    def put(self, item) -> None:
        self.put_times[id(item)] = time.perf_counter()
        self.inner.put(item)

    def take(self):
        item = self.inner.take()
        if item is not None:
            t_put = self.put_times.pop(id(item), None)
            if t_put is not None:
                self.taken.append((t_put, time.perf_counter()))
        return item


class _PaintWatch(QtCore.QObject):
    """Times the first paint of a widget after each snapshot was taken from the mailbox: the
    paint event's start, and (a zero timer posted from inside it) the end of that whole frame."""

    def __init__(self, widget: QtWidgets.QWidget, mailbox: _TimedMailbox):
        super().__init__()
        self.mailbox = mailbox
        self.results: list[dict] = []
        self.done = threading.Event()
        self._seen = 0
        widget.installEventFilter(self)

    def sync(self) -> None:
        self._seen = len(self.mailbox.taken)

    def eventFilter(self, obj, event) -> bool:
        if event.type() == QtCore.QEvent.Type.Paint and len(self.mailbox.taken) > self._seen:
            t_put, t_take = self.mailbox.taken[-1]
            self._seen = len(self.mailbox.taken)
            t_paint = time.perf_counter()
            QtCore.QTimer.singleShot(0, lambda: self._frame_done(t_put, t_take, t_paint))
        return False

    def _frame_done(self, t_put, t_take, t_paint) -> None:
        t = time.perf_counter()
        self.results.append({"total": (t - t_put) * 1e3, "queued": (t_take - t_put) * 1e3,
                             "render": (t - t_take) * 1e3, "paint_start": (t_paint - t_put) * 1e3,
                             "taken_at": t_take})
        self.done.set()


def _summary_latency(results: list[dict]) -> dict:
    out = _pcts([r["total"] for r in results])
    if results:
        out["queued_p50_ms"] = round(float(np.median([r["queued"] for r in results])), 3)
        out["render_p50_ms"] = round(float(np.median([r["render"] for r in results])), 3)
    return out


# -- headless throughput -------------------------------------------------------------------------


class _Clock:
    """A reporter for a headless run: (wall time, tokens, training seconds) at each step."""

    def __init__(self):
        self.samples: list[tuple[float, int, float]] = []
        self.paused = threading.Event()
        self.ended = threading.Event()

    def report(self, e) -> None:
        from workbench.engine import events as ev

        if isinstance(e, ev.StepMetrics):
            self.samples.append((time.perf_counter(), int(e.tokens), float(e.elapsed)))
        elif isinstance(e, ev.Paused):
            self.paused.set()
        elif isinstance(e, ev.Resumed):
            self.paused.clear()
        elif isinstance(e, (ev.Finished, ev.Failed)):
            self.ended.set()
            if isinstance(e, ev.Failed):
                self.failure = e.message


class _HeadlessRun:
    """The experiment trained by the engine's Trainer in a plain thread (no Qt, no signals), paused
    and resumed between measured segments while the main thread sleeps, so that nothing else in
    this process runs beside it: training as ``workbench train`` does it, with ``threads``."""

    def __init__(self, exp, threads: int, run_dir: str):
        from workbench.engine.control import RunControl
        from workbench.engine.trainer import Trainer

        self.threads = threads
        self.control = RunControl()
        self.clock = _Clock()
        self.trainer = Trainer(exp, run_dir=run_dir, default_threads=threads)
        self.thread = threading.Thread(target=lambda: self.trainer.run(self.control, self.clock),
                                       name=f"bench-headless-{threads}", daemon=True)
        self.segments: list[tuple[float, float]] = []
        self.cpu = 0.0

    def start(self, warmup: float) -> None:
        """Prepare and train for ``warmup`` seconds of steps, then pause."""
        self.thread.start()
        while not self.clock.samples and not self.clock.ended.is_set():
            time.sleep(0.05)
        time.sleep(warmup)
        self.pause()

    def pause(self) -> None:
        self.control.pause()
        while not self.clock.paused.is_set() and not self.clock.ended.is_set():
            time.sleep(0.01)

    def segment(self, seconds: float) -> None:
        """Train for ``seconds`` (measured), the calling thread asleep meanwhile, then pause."""
        if self.clock.ended.is_set():
            raise RuntimeError(f"the headless run ended early: {getattr(self.clock, 'failure', '')}")
        self.control.resume()
        time.sleep(0.2)  # the first step after resuming is not measured
        c0, t0 = time.process_time(), time.perf_counter()
        time.sleep(seconds)
        self.cpu += time.process_time() - c0
        self.pause()  # the step under way ends first: count it (slow steps with every core)
        self.segments.append((t0, time.perf_counter()))

    def stop(self) -> None:
        self.control.stop()
        self.thread.join(120)

    def result(self) -> dict:
        rates = [_rates([s for s in self.clock.samples if a <= s[0] <= b]) for a, b in self.segments]
        return _combine(rates, threads=self.threads,
                        cpu_per_wall=round(self.cpu / max(1e-9, sum(b - a for a, b in self.segments)), 3))


def _rates(samples: list[tuple[float, int, float]]) -> dict:
    """tokens/s against wall time and against the trainer's own step time, first to last sample."""
    if len(samples) < 2:
        return {"tokens": 0, "wall_s": 0.0, "step_s": 0.0}
    (t0, k0, e0), (t1, k1, e1) = samples[0], samples[-1]
    return {"tokens": k1 - k0, "wall_s": t1 - t0, "step_s": e1 - e0}


def _combine(parts: list[dict], **extra) -> dict:
    tokens = sum(p["tokens"] for p in parts)
    wall = sum(p["wall_s"] for p in parts)
    step = sum(p["step_s"] for p in parts)
    return {"tokens_per_s": round(tokens / wall, 1) if wall > 0 else float("nan"),
            "step_tokens_per_s": round(tokens / step, 1) if step > 0 else float("nan"),
            "segments_tokens_per_s": [round(p["tokens"] / p["wall_s"], 1) if p["wall_s"] > 0 else float("nan")
                                      for p in parts],
            "seconds": round(wall, 2), **extra}


class _GCWatch:
    """Pauses of Python's garbage collector (any thread), by generation."""

    def __init__(self):
        import gc

        self.gc = gc
        self.pauses: list[tuple[int, float]] = []
        self._t = 0.0
        self.on = False

    def __call__(self, phase, info) -> None:
        if phase == "start":
            self._t = time.perf_counter()
        elif self.on:
            self.pauses.append((info["generation"], (time.perf_counter() - self._t) * 1e3))

    def __enter__(self):
        self.gc.callbacks.append(self)
        return self

    def __exit__(self, *exc):
        self.gc.callbacks.remove(self)

    def summary(self) -> dict:
        out = {}
        for g in (0, 1, 2):
            ms = [p for gen, p in self.pauses if gen == g]
            out[f"gen{g}"] = {"n": len(ms), "max_ms": round(max(ms), 3) if ms else 0.0,
                              "total_ms": round(sum(ms), 3)}
        return out


# -- the benchmark ---------------------------------------------------------------------------------


def bench_gui(preset: str = "demo_toy", seconds: float = 20.0, overrides: list[str] | None = None, *,
              segments: int = 4, warmup: float = 3.0, attention_seconds: float | None = None,
              all_cores_seconds: float | None = None, redraw_points: int = 1_000_000,
              paint_repeats: int = 9) -> dict:
    """See the module docstring. ``seconds`` of lateness measurement on the curves page, in
    ``segments`` pieces; each is followed by as long a piece without the timer and as long a
    headless piece (about 3 x ``seconds`` in all, plus the attention page and the rest)."""
    if not os.environ.get("QT_QPA_PLATFORM") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    from workbench.engine.config import resolve_experiment

    from workbench.gui import app as app_mod
    from workbench.gui.bridge import Job

    segments = max(1, int(segments))
    seg = seconds / segments
    attention_seconds = max(1.0, seconds / 4) if attention_seconds is None else attention_seconds
    all_cores_seconds = min(seconds, 6.0) if all_cores_seconds is None else all_cores_seconds
    cores = os.cpu_count() or 1
    gui_threads = max(1, cores - 1)  # what the window gives its worker (MainWindow.start)
    base = resolve_experiment(preset, list(overrides or []))
    # long enough never to finish while measured; everything else (eval, snapshots, checkpoints) as set
    exp = base.replace(training=dataclasses.replace(base.training, max_steps=max(base.training.max_steps, 10**7)))

    load_before = os.getloadavg() if hasattr(os, "getloadavg") else None
    t_begin = time.perf_counter()
    tmp = tempfile.TemporaryDirectory(prefix="workbench-bench-gui-")
    old_data = os.environ.get("WORKBENCH_DATA_DIR")
    os.environ["WORKBENCH_DATA_DIR"] = str(Path(tmp.name) / "data")  # runs go to a scratch folder
    result: dict = {"bench": "gui", "experiment": preset, "overrides": list(overrides or []),
                    "cores": cores, "gui_worker_threads": gui_threads, "seconds": seconds, "segments": segments}
    headless = None
    w = None
    try:
        app_mod.create_app()
        result["platform"] = QtWidgets.QApplication.platformName()
        from workbench.gui.window.main_window import MainWindow

        headless = _HeadlessRun(exp, gui_threads, os.path.join(tmp.name, "headless"))
        headless.start(warmup=min(2.0, warmup))

        settings = QtCore.QSettings(str(Path(tmp.name) / "settings.ini"), QtCore.QSettings.Format.IniFormat)
        w = MainWindow(settings=settings)
        w.confirm_close = False
        w.tokenizer.auto_train = False  # no background tokenizer job beside the run: the run trains its own
        w.resize(1440, 900)
        w.show()
        if not _spin_until(w.engine_ready, 120):
            raise RuntimeError("the window did not finish loading PyTorch within 120 s")
        w.set_experiment(exp, base_label=preset)
        _spin_until(lambda: not Job.running(), 60)  # corpus statistics and preview: done before Start
        mailbox = _TimedMailbox(w.session.mailbox)
        w.session.mailbox = mailbox  # the reporter picks it up when the run starts
        watch = _PaintWatch(w.attention.heatmap.plot_widget.viewport(), mailbox)

        samples: list[tuple[float, int, float]] = []
        worker_tid: list[int] = []

        def on_metrics(batch) -> None:  # runs in the worker thread (direct connection), at each send
            if not worker_tid:
                worker_tid.append(threading.get_native_id())
            samples.append((time.perf_counter(), int(batch.tokens[-1]), float(batch.elapsed[-1])))

        w.session.metrics.connect(on_metrics, QtCore.Qt.ConnectionType.DirectConnection)
        if not w.start():
            raise RuntimeError("the window refused to start the run")
        w.show_panel("curves")
        if not _spin_until(lambda: bool(samples) or not w.session.is_active(), 180):
            raise RuntimeError("no training step within 180 s")
        if not w.session.is_active():
            raise RuntimeError(f"the run ended before it was measured: {w.session.last_result}")
        _spin(warmup)

        probe = _LatenessProbe()
        gui_tid = threading.get_native_id()
        pages: dict[str, dict] = {}

        def measure(page: str, secs: float, snapshot_every_ms: int = 0, lateness: bool = True) -> None:
            """One measured stretch with ``page`` shown (and the 5 ms timer running, if
            ``lateness``); adds to pages[key], key = page, + "/quiet" without the timer."""
            acc = pages.setdefault(page if lateness else page + "/quiet", {
                "lateness": [], "rates": [], "windows": [], "wall": 0.0, "cpu": 0.0, "gui_cpu": 0.0,
                "gui_stat": [0.0, 0.0], "worker_stat": [0.0, 0.0]})
            if w.current_panel() != page:
                watch.sync()  # snapshots taken while the heatmap was hidden: painted now, not timed
                w.show_panel(page)
                _spin(0.3)  # the page's first full paint is not what is measured
            watch.sync()
            asker = QtCore.QTimer()
            if snapshot_every_ms:  # "Snapshot now", as a person would press it: more snapshots to time
                asker.timeout.connect(w.request_snapshot)
                asker.start(snapshot_every_ms)
            tid = worker_tid[0] if worker_tid else None
            n0, wk0, gs0 = len(samples), _thread_stat(tid), _thread_stat(gui_tid)
            c0, g0, t0 = time.process_time(), time.thread_time(), time.perf_counter()
            acc["windows"].append(t0)
            if lateness:
                probe.start()
            _spin(secs)
            acc["lateness"] += probe.stop() if lateness else []
            asker.stop()
            t1 = time.perf_counter()
            acc["windows"][-1] = (t0, t1)
            acc["rates"].append(_rates([s for s in samples[n0:] if t0 <= s[0] <= t1]))
            acc["wall"] += t1 - t0
            acc["cpu"] += time.process_time() - c0
            acc["gui_cpu"] += time.thread_time() - g0
            for key, now, before in (("gui_stat", _thread_stat(gui_tid), gs0), ("worker_stat", _thread_stat(tid), wk0)):
                d = _diff(now, before)
                if d is not None:
                    acc[key] = [a + b for a, b in zip(acc[key], d)]

        def set_paused(paused: bool) -> None:
            (w.pause if paused else w.resume)()
            want = "paused" if paused else "running"
            if not _spin_until(lambda: w.session.state == want or not w.session.is_active(), 60):
                raise RuntimeError(f"the window's run did not become {want}")

        redraw_intervals: list[int] = []  # the window's paced redraw interval after each segment
        with _GCWatch() as gcw:
            for i in range(segments):
                gcw.on = True
                measure("curves", seg)
                gcw.on = False
                redraw_intervals.append(w.plot_timer.interval())
                measure("curves", seg, lateness=False)  # the window alone: no 200 Hz timer beside it
                set_paused(True)
                headless.segment(seg)  # this thread sleeps: no event loop, no GUI work meanwhile
                set_paused(False)
                _spin(0.3)
            gcw.on = True
            measure("attention", attention_seconds, snapshot_every_ms=400)
            gcw.on = False
        live_attention = [r for r in watch.results
                          if any(a <= r["taken_at"] <= b for a, b in pages["attention"]["windows"])]

        w.stop()
        headless.stop()
        if not _spin_until(lambda: not w.session.is_active(), 120):
            raise RuntimeError("the run did not stop within 120 s")

        # snapshots posted from another thread into the mailbox with the run stopped
        idle = _post_snapshots(w, mailbox, watch, n=paint_repeats)

        from .widgets import paint_benchmark, redraw_benchmark

        snap = w.attention.current()
        t_probe = snap.attention.shape[-1] if snap is not None and snap.attention is not None else 64
        widget_paint = paint_benchmark(sizes=(t_probe,), repeats=paint_repeats)
        w.close()
        w.deleteLater()
        w = None
        _spin(0.05)
        redraw = redraw_benchmark(n=redraw_points, repeats=paint_repeats)

        all_cores = _HeadlessRun(exp, cores, os.path.join(tmp.name, "headless-all"))
        all_cores.start(warmup=min(2.0, warmup))
        all_cores.segment(all_cores_seconds)
        all_cores.stop()
    finally:
        if w is not None:
            w.confirm_close = False
            w.shutdown(30000)
            w.close()
        if headless is not None and headless.thread.is_alive():
            headless.stop()
        if old_data is None:
            os.environ.pop("WORKBENCH_DATA_DIR", None)
        else:
            os.environ["WORKBENCH_DATA_DIR"] = old_data
        tmp.cleanup()

    curves, quiet, attn = pages["curves"], pages["curves/quiet"], pages["attention"]
    gui = _combine(quiet["rates"])
    gui_probed = _combine(curves["rates"])
    same = headless.result()
    allc = all_cores.result()
    result["event_loop"] = {"timer_ms": TIMER_MS, "page": "curves", **_pcts(curves["lateness"])}
    result["event_loop_attention"] = {"timer_ms": TIMER_MS, "page": "attention", **_pcts(attn["lateness"])}
    result["throughput"] = {
        "gui_tokens_per_s": gui["tokens_per_s"],
        "gui_segments_tokens_per_s": gui["segments_tokens_per_s"],
        "gui_step_tokens_per_s": gui["step_tokens_per_s"],
        "gui_with_lateness_timer_tokens_per_s": gui_probed["tokens_per_s"],
        "gui_attention_page_tokens_per_s": _combine(attn["rates"])["tokens_per_s"],
        "headless_same_threads": same,
        "headless_all_cores": allc,
        "ratio_same_threads": _ratio(gui["tokens_per_s"], same["tokens_per_s"]),
        "ratio_same_threads_per_segment": [_ratio(a, b) for a, b in zip(gui["segments_tokens_per_s"],
                                                                        same["segments_tokens_per_s"])],
        "ratio_with_lateness_timer": _ratio(gui_probed["tokens_per_s"], same["tokens_per_s"]),
        "ratio_all_cores": _ratio(gui["tokens_per_s"], allc["tokens_per_s"]),
    }

    def cpu(acc: dict) -> dict:
        wall = max(acc["wall"], 1e-9)
        return {"wall_s": round(wall, 2), "process_cpu_per_wall": round(acc["cpu"] / wall, 3),
                "gui_thread_cpu_per_wall": round(acc["gui_cpu"] / wall, 3),
                "gui_thread_runqueue_wait_per_wall": round(acc["gui_stat"][1] / wall, 3),
                "worker_cpu_per_wall": round(acc["worker_stat"][0] / wall, 3),
                "worker_runqueue_wait_per_wall": round(acc["worker_stat"][1] / wall, 3)}

    result["cpu"] = {"curves_page": cpu(curves), "curves_page_no_timer": cpu(quiet), "attention_page": cpu(attn)}
    result["redraw_interval_ms"] = redraw_intervals
    result["gc_pauses"] = gcw.summary()
    result["curves_redraw"] = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in redraw.items()}
    result["attention_to_pixels"] = {"while_training": _summary_latency(live_attention),
                                     "run_stopped": _summary_latency(idle)}
    result["attention_widget"] = {k: round(v, 3) for k, v in widget_paint.items()}
    result["load_average"] = {"before": [round(x, 2) for x in load_before] if load_before else None,
                              "after": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None}
    result["total_s"] = round(time.perf_counter() - t_begin, 1)
    return result


def _ratio(a: float, b: float) -> float:
    return round(a / b, 4) if b and b > 0 and math.isfinite(a) and math.isfinite(b) else float("nan")


def _post_snapshots(w, mailbox: _TimedMailbox, watch: _PaintWatch, n: int) -> list[dict]:
    """Post ``n`` snapshots shaped like the run's from a plain thread, as the worker does (put into
    the mailbox, then the payload-free signal), each after the previous one has been painted."""
    from workbench.engine.events import AttentionSnapshot

    w.show_panel("attention")
    _spin(0.3)
    watch.sync()
    last = w.attention.current()
    if last is not None and last.attention is not None:
        L, H, T, _ = last.attention.shape
        tokens, step0 = list(last.tokens), last.step
    else:
        L, H, T, tokens, step0 = 2, 4, 64, [f"t{i}" for i in range(64)], 0
    rng = np.random.default_rng(0)
    mask = np.tril(np.ones((T, T), dtype=bool))
    start = len(watch.results)
    stop = threading.Event()

    def post() -> None:
        for k in range(n):
            if stop.is_set():
                return
            x = np.where(mask, rng.standard_normal((L, H, T, T)) * 2.0, -np.inf)
            a = np.exp(x - x.max(-1, keepdims=True))
            a = (a / a.sum(-1, keepdims=True)).astype(np.float32)
            watch.done.clear()
            mailbox.put(AttentionSnapshot(step0 + 1000 + k, tokens, list(range(T)), a))
            w.session.attentionReady.emit()
            watch.done.wait(10.0)
            time.sleep(0.05)

    t = threading.Thread(target=post, name="bench-post-snapshots")
    t.start()
    _spin_until(lambda: not t.is_alive(), 10.0 * n + 5)
    stop.set()
    t.join()
    return watch.results[start:]


def main(preset: str = "demo_toy", seconds: float = 20.0, overrides: list[str] | None = None, **kw) -> dict:
    """bench_gui with NaN turned into null (JSON has no NaN)."""
    return _finite(bench_gui(preset, seconds, overrides, **kw))


def _finite(obj):
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj
