"""Who may write where: a run folder belongs to one run, and other commands never write into it.

* ``RunLock``: an exclusive lock on ``RUN/run.lock`` (``fcntl.flock`` on an open file, with the
  holder's pid, host and start time written in it) held by a trainer for the whole run. The kernel
  drops a flock when its holder dies, even by kill -9, so a lock that can be taken is never held by
  a live run: a file left with another holder's details is a stale lock, taken over with a note.
* ``claim_run_folder``: what ``train`` may do with a folder: a new or empty folder becomes a run; a
  folder that holds a run is continued only with resume, or started over with ``overwrite``
  (which deletes only the files a run folder holds); a folder of other files is refused.
* ``remove_leftovers``: temporary files of an interrupted write (kill -9, a full disk) named as
  ``checkpoint.atomic_write_bytes`` names them, and checkpoints whose JSON was never written.
  Called while the lock is held, so no live process can still be writing them.
* ``set_aside_after``: a resume from an earlier checkpoint (or a diverged run) moves the later
  checkpoints into ``superseded/``; nothing of a run is deleted.
* ``check_output``: export, import, report, eval results and saved experiments never write inside
  a run folder, nor over a file or into a folder that is not theirs.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..fmt import human_bytes
from .errors import CheckpointError

try:  # POSIX; elsewhere the pid written in the file decides
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

LOCK_NAME = "run.lock"
# What a run folder holds (checkpoint.RunDir): --overwrite deletes these and nothing else.
RUN_FILES = ("config.toml", "tokenizer.json", "metrics.jsonl", "best.json", "balance.jsonl",
             "status.json", "control.json")  # the last two: control.py (steering from another process)
RUN_FOLDERS = {"checkpoints": re.compile(r"step_\d+\.(json|safetensors)$"),
               "attention": re.compile(r"step_\d+\.safetensors$"),
               "tensorboard": re.compile(r"events\.out\.tfevents\.")}  # [logging] tensorboard = true
# checkpoint.atomic_write_bytes: tempfile.mkstemp(prefix=".NAME.", suffix=".tmp") -> ".NAME.xxxxxxxx.tmp"
TEMP_FILE = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")


class RunFolderBusy(CheckpointError):
    """Another live run holds the folder's lock."""


def is_run_folder(path: Path) -> bool:
    """A folder training (or import) wrote: config.toml beside checkpoints/ or metrics.jsonl. A report
    folder also holds a config.toml, but neither of the others."""
    path = Path(path)
    return (path / "config.toml").is_file() and ((path / "checkpoints").is_dir() or (path / "metrics.jsonl").is_file())


def run_folder_around(path: Path) -> Path | None:
    """The run folder that ``path`` is, or lies inside, if any."""
    p = Path(path).resolve()
    for folder in (p, *p.parents):
        if is_run_folder(folder):
            return folder
    return None


# -- the lock -----------------------------------------------------------------------------------


def try_lock(fd: int) -> bool | None:
    """True: locked; False: another open file holds it; None: this file system cannot lock."""
    if fcntl is None:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    except OSError as e:
        if e.errno in (errno.EWOULDBLOCK, errno.EACCES, errno.EAGAIN):
            return False
        if e.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
            return None
        raise


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    except (OSError, OverflowError, ValueError):
        return False
    return True


def _read_holder(path: Path) -> dict:
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
        return info if isinstance(info, dict) else {}
    except (OSError, ValueError):
        return {}


def describe_holder(info: dict) -> str:
    if not info.get("pid"):
        return "another process (it has not written its details yet)"
    started = info.get("started")
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)) if isinstance(started, (int, float)) else "?"
    cmd = f", `{info['command']}`" if info.get("command") else ""
    return f"process {info['pid']} on host {info.get('host', '?')} (started {when}{cmd})"


@dataclass
class RunLock:
    """``RunLock.acquire(folder)`` or RunFolderBusy; ``release()`` at the end of the run. ``notes``:
    things worth telling the person (a stale lock taken over, leftovers removed)."""

    folder: Path
    fd: int
    notes: list[str] = field(default_factory=list)

    @property
    def path(self) -> Path:
        return self.folder / LOCK_NAME

    @classmethod
    def acquire(cls, folder: Path) -> "RunLock":
        folder = Path(folder)
        path = folder / LOCK_NAME
        me = socket.gethostname()
        for _ in range(20):  # retried only when the file was replaced between open and lock
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                got = try_lock(fd)
                previous = _read_holder(path)
                if got is False:
                    raise RunFolderBusy(busy_message(folder, previous))
                if got is None and previous.get("pid") and (previous.get("host") != me or pid_alive(previous["pid"])) \
                        and previous.get("pid") != os.getpid():
                    raise RunFolderBusy(busy_message(folder, previous) + f" (This file system cannot lock files; if "
                                        f"that run has ended, delete {path}.)")
                if os.fstat(fd).st_ino != os.stat(path).st_ino:  # the holder released (deleted) it meanwhile
                    os.close(fd)
                    continue
            except FileNotFoundError:
                os.close(fd)
                continue
            except BaseException:
                os.close(fd)
                raise
            lock = cls(folder, fd)
            if previous.get("pid"):
                lock.notes.append(f"Took over a stale lock on {folder}: {describe_holder(previous)} "
                                  f"held it and ended without releasing it.")
            info = {"pid": os.getpid(), "host": me, "started": time.time(), "command": _command()}
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, json.dumps(info).encode("utf-8"))
            return lock
        raise RunFolderBusy(f"{path}: the lock file keeps changing; another process is starting and ending runs "
                            f"in this folder. Try again, or train into another folder.")

    def release(self, *, made_folder: bool = False) -> None:
        """Delete the lock file (while still holding it: a process that opened the old file sees it
        replaced and retries), then close it, which drops the lock. ``made_folder``: the folder was
        made for this run; if the run never wrote its config there, remove it again (only empty
        folders are removed, so nothing of anyone's is deleted)."""
        if self.fd < 0:
            return
        try:
            if os.fstat(self.fd).st_ino == os.stat(self.path).st_ino:
                self.path.unlink()
        except OSError:
            pass
        os.close(self.fd)
        self.fd = -1
        if made_folder and not (self.folder / "config.toml").exists():
            for sub in ("checkpoints", "attention", ""):
                try:
                    (self.folder / sub).rmdir()
                except OSError:
                    pass

    def __del__(self):  # a Trainer dropped without run() (benchmarks call prepare() alone)
        if getattr(self, "fd", -1) >= 0:
            os.close(self.fd)


def busy_message(folder: Path, holder: dict) -> str:
    return (f"{folder}: another training run is writing to this folder: {describe_holder(holder)}. Wait for it "
            f"to finish, or stop it (Ctrl-C in its terminal, Stop in its window); to train at the same time, "
            f"train into a new folder instead.")


def lock_holder(folder: Path) -> dict | None:
    """Details of the live process holding ``folder``'s lock, or None when nobody holds it."""
    path = Path(folder) / LOCK_NAME
    if not path.is_file():
        return None
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        got = try_lock(fd)
    finally:
        os.close(fd)  # closing drops the lock we may just have taken
    info = _read_holder(path)
    if got is None:
        me = socket.gethostname()
        return info if info.get("pid") and (info.get("host") != me or pid_alive(info["pid"])) else None
    return None if got else info


def training_now(folder: Path) -> dict | None:
    """The holder written in ``folder``'s run.lock if it looks alive (its pid runs on this host, or
    it is on another host), without touching the lock: for listings, where a guess is enough."""
    info = _read_holder(Path(folder) / LOCK_NAME)
    pid = info.get("pid")
    if not isinstance(pid, int):
        return None
    return info if info.get("host") != socket.gethostname() or pid_alive(pid) else None


def _command() -> str:
    import sys

    argv = [Path(sys.argv[0]).name] + sys.argv[1:] if sys.argv and sys.argv[0] else []
    if argv and argv[0] in ("__main__.py", "-m"):
        argv[0] = "workbench"
    return " ".join(argv)[:200]


# -- what train may do with a folder --------------------------------------------------------------


def _entries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name != LOCK_NAME) if folder.is_dir() else []


def _foreign(folder: Path) -> list[str]:
    """Entries of ``folder`` that no run writes."""
    out = []
    for name in _entries(folder):
        p = folder / name
        if name in RUN_FILES or TEMP_FILE.match(name) or name == "samples":
            continue
        if name in RUN_FOLDERS and p.is_dir() and all(RUN_FOLDERS[name].match(c.name) or TEMP_FILE.match(c.name)
                                                      for c in p.iterdir()):
            continue
        out.append(name)
    return out


def check_new_run_folder(folder: Path, *, overwrite: bool = False) -> None:
    """Raise CheckpointError unless a new run may be written to ``folder``: it is missing, empty, or
    (with ``overwrite``) holds a run whose files may be deleted."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise CheckpointError(f"{folder}: is a file, not a folder; give a new folder for the run.")
    entries = _entries(folder)
    if not entries:
        return
    q = _quote(folder)
    if is_run_folder(folder):
        if overwrite:
            return
        from .checkpoint import RunDir

        steps = RunDir(folder).checkpoint_steps()
        if steps:
            raise CheckpointError(
                f"{folder}: this folder already holds a run (latest checkpoint: step {steps[-1]}). To continue it: "
                f"`workbench train --resume {q}`; to start it over, deleting its checkpoints and metrics: add "
                f"--overwrite; otherwise choose a new folder (or leave out --run-dir).")
        raise CheckpointError(
            f"{folder}: this folder holds a run that saved no checkpoint (it was stopped or died before its first "
            f"one), so it cannot be continued. To start it over, deleting its metrics: add --overwrite; otherwise "
            f"choose a new folder (or leave out --run-dir).")
    foreign = _foreign(folder)
    if not foreign and (folder / "config.toml").is_file() and not (folder / "tokenizer.json").exists() \
            and not any((folder / name).exists() for name in RUN_FOLDERS):
        foreign = ["config.toml"]  # a config.toml alone is no trace of a run start (it writes the tokenizer too)
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise CheckpointError(f"{folder}: the folder is not empty and is not a run folder (it holds {shown}); "
                              f"choose a new or empty folder for the run.")
    if not overwrite:  # the files of a run without its config.toml: an interrupted start or import
        raise CheckpointError(f"{folder}: the folder holds parts of a run that never started properly (no "
                              f"checkpoint and no metrics). Add --overwrite to delete them and start there, or choose "
                              f"a new folder.")


def clear_run_files(folder: Path) -> int:
    """--overwrite: delete what a run folder holds (and nothing else); returns the bytes freed."""
    folder = Path(folder)
    freed = 0

    def rm(p: Path) -> None:
        nonlocal freed
        try:
            freed += p.stat().st_size
            p.unlink()
        except FileNotFoundError:
            pass

    for name in _entries(folder):
        p = folder / name
        if (name in RUN_FILES or TEMP_FILE.match(name)) and p.is_file():
            rm(p)
        elif name in RUN_FOLDERS and p.is_dir():
            for c in p.iterdir():
                if c.is_file() and (RUN_FOLDERS[name].match(c.name) or TEMP_FILE.match(c.name)):
                    rm(c)
    return freed


def remove_leftovers(folder: Path) -> list[Path]:
    """Temporary files of interrupted writes in a run folder, and checkpoint tensors whose JSON was
    never written (a checkpoint is complete exactly when its JSON exists). Call only while holding
    the folder's RunLock: then no live process is writing them."""
    folder = Path(folder)
    removed = []
    for where in (folder, folder / "checkpoints", folder / "attention"):
        if not where.is_dir():
            continue
        for p in where.iterdir():
            orphan = (where.name == "checkpoints" and re.fullmatch(r"step_\d+\.safetensors", p.name)
                      and not p.with_suffix(".json").exists())
            if p.is_file() and (TEMP_FILE.match(p.name) or orphan):
                p.unlink(missing_ok=True)
                removed.append(p)
    return removed


def claim_run_folder(folder: Path, *, resume: bool = False, overwrite: bool = False) -> RunLock:
    """Lock ``folder`` for a run, then check (under the lock, so two starts cannot both pass) that
    the run may write there (with ``resume``: that it has a checkpoint to continue from); remove
    leftovers of interrupted writes. Creates the folder if needed."""
    folder = Path(folder)
    if resume:
        from .checkpoint import RunDir

        RunDir.open(folder)
    else:
        if (folder.exists() or folder.is_symlink()) and not folder.is_dir():
            raise CheckpointError(f"{folder}: is a file (or a broken link), not a folder; give a new folder for "
                                  f"the run.")
        outer = run_folder_around(folder.parent)
        if outer is not None:
            raise CheckpointError(f"{folder}: lies inside the run folder {outer}, which belongs to its own run; "
                                  f"give a folder outside it.")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:  # a parent that is a file, no permission, a read-only disk
        raise CheckpointError(f"{folder}: cannot create the run folder ({e.strerror or e}); give a folder that "
                              f"can be written.") from None
    lock = RunLock.acquire(folder)
    try:
        if not resume:
            check_new_run_folder(folder, overwrite=overwrite)
            if overwrite and _entries(folder):
                freed = clear_run_files(folder)
                lock.notes.append(f"--overwrite: deleted the earlier run's files in {folder} ({human_bytes(freed)}).")
        removed = remove_leftovers(folder)
        if removed:
            lock.notes.append(f"Removed {len(removed)} leftover file(s) of an interrupted write: "
                              + ", ".join(str(p.relative_to(folder)) for p in removed[:4])
                              + (" ..." if len(removed) > 4 else ""))
        if resume:
            check_resume_folder(folder)
    except BaseException:
        lock.release()
        raise
    return lock


def check_resume_folder(folder: Path) -> None:
    """Raise CheckpointError when ``folder`` has nothing to resume from, offering what can be done."""
    from .checkpoint import RunDir

    run = RunDir.open(folder)
    if not run.checkpoint_steps():
        q = _quote(run.path)
        raise CheckpointError(
            f"{run.path}: the run saved no complete checkpoint (it was stopped or died before its first one), so "
            f"there is nothing to resume. Start it over in the same folder with `workbench train EXPERIMENT "
            f"--run-dir {q} --overwrite` (its metrics are deleted), or train into a new folder.")


def preflight(*, run_dir: Path | None, resume: Path | None, overwrite: bool) -> None:
    """The CLI's checks before anything is loaded, so that a wrong folder is exit code 2 at once.
    The Trainer checks the same again under the lock."""
    target = resume or run_dir
    if target is None:
        return
    # the flock is tried only when the lock file names a live process: a run starting meanwhile
    # must never find it taken by this check
    holder = lock_holder(target) if Path(target).is_dir() and training_now(target) else None
    if holder is not None:  # first: a live run explains everything else about the folder
        raise RunFolderBusy(busy_message(Path(target), holder))
    if resume is not None:
        check_resume_folder(resume)
    else:
        check_new_run_folder(run_dir, overwrite=overwrite)


# -- outputs of other commands --------------------------------------------------------------------


def check_output(path: Path, what: str, *, own_file=None, own_folder=None) -> None:
    """Refuse to write ``what`` at ``path`` inside a run folder (runs belong to training), over an
    existing file unless ``own_file(path)`` says it is an earlier output of the same kind, or into
    a non-empty folder unless ``own_folder(path)`` says the same of the folder."""
    path = Path(path)
    if (path.exists() or path.is_symlink()) and not (path.is_file() or path.is_dir()):
        # a device, a FIFO, a socket or a dangling link: an atomic write would replace it
        raise CheckpointError(f"{path}: exists and is not a regular file or folder (a device, pipe or broken "
                              f"link); write the {what} to a file or folder path.")
    run = run_folder_around(path if path.is_dir() else path.parent)
    if run is not None:
        raise CheckpointError(f"{path}: lies inside the run folder {run}; a run folder is written by its training "
                              f"run only. Write the {what} somewhere else.")
    if path.is_file():
        if own_file is None:
            raise CheckpointError(f"{path}: is a file; give a new or empty folder for the {what}.")
        if not own_file(path):
            raise CheckpointError(f"{path}: the file exists and is not an earlier {what}; it is left as it is. "
                                  f"Choose a new file name, or delete it first.")
    elif path.is_dir() and own_folder is not None and any(path.iterdir()) and not own_folder(path):
        raise CheckpointError(f"{path}: the folder is not empty and holds no earlier {what}; choose a new or "
                              f"empty folder.")


def _quote(path: Path) -> str:
    import shlex

    return shlex.quote(str(path))


def set_aside_after(run_dir, step: int) -> Path | None:
    """Move the checkpoints and attention snapshots of ``run_dir`` (a checkpoint.RunDir) after ``step``
    (and best.json when it names a later step), with a copy of metrics.jsonl as it was, into
    superseded/after_step_N-TIME/: nothing is deleted, and the run folder then reads like a run that
    stopped at ``step``. Returns that folder, or None when there was nothing to move."""
    later = [run_dir.checkpoint_path(s) for s in run_dir.checkpoint_steps() if s > step]
    later += [p.with_suffix(".safetensors") for p in later]
    later += [p for p in run_dir.attention.glob("step_*.safetensors") if _step_of(p) > step]
    best = run_dir.path / "best.json"
    if best.exists():
        try:
            if json.loads(best.read_text(encoding="utf-8")).get("step", 0) > step:
                later.append(best)
        except (OSError, ValueError):
            pass
    if not later:
        return None
    aside = run_dir.path / "superseded" / f"after_step_{step}-{time.strftime('%Y%m%d-%H%M%S')}"
    aside.mkdir(parents=True, exist_ok=True)
    if run_dir.metrics.exists():
        shutil.copy2(run_dir.metrics, aside / "metrics.jsonl")
    for p in later:
        if p.exists():
            dest = aside / p.relative_to(run_dir.path)
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(p, dest)
    return aside


def _step_of(path: Path) -> int:
    digits = "".join(ch for ch in path.stem if ch.isdigit())
    return int(digits) if digits else -1
