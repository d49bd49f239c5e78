"""Atomic writes and output locks: a reader sees a complete output or the old one, never a
half-written one, and two runs never write into the same output at once.

Everything is written under a temporary sibling name and renamed into place at the end
(rename is atomic within one file system). A write that fails - disk full, quota exceeded, file
size limit, read-only or vanished folder - raises one BiovaeError saying so, and leaves neither
temporary files nor a partial output behind; an output that existed before is left unchanged.

`output_lock(out)` guards a whole output (a folder or file path) for the length of a run with a
lock file `OUT.lock` beside it, created with O_EXCL and holding the owner's pid, host and process
start time. A second run refuses with a message naming the lock; a lock left by a run that died
(kill -9, power loss) is recognised by its dead pid and taken over.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import json
import os
import re
import shutil
import socket
import tempfile
import time
from pathlib import Path
from typing import Iterator

from biovae.errors import BiovaeError



def _umask() -> int:
    """The process's umask now (read by setting it and putting it back)."""
    mask = os.umask(0o22)
    os.umask(mask)
    return mask


# errno values that mean "the disk (or the process's file-size allowance) is full"
_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
# the same, as libraries that wrap the C error into their own exception word it (h5py, safetensors)
# (numpy's tofile reports a short write only as "N requested and M written")
_FULL_TEXT = re.compile(r"No space left on device|Disk quota exceeded|File too large|errno = 2[78]\b"
                        r"|os error 2[78]\b|\d+ requested and \d+ written")
_TAKEOVER_STALE_S = 60.0  # a takeover guard older than this was left by a process that died in it
MARKER = ".biovae-output"  # in every folder atomic_dir completes: biovae may replace that folder later


def folder_is_ours(path: str | os.PathLike) -> bool:
    """True for a folder biovae may replace: it holds the marker file, or it is empty."""
    path = Path(path)
    try:
        return (path / MARKER).is_file() or not any(path.iterdir())
    except OSError:
        return False


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success rename it onto `path`.

    If writing fails for lack of space or any OS error on the output, raises BiovaeError and
    removes the temporary file; `path` keeps its previous content (or stays absent). On a
    non-zero rank of a distributed run the file goes to a scratch folder and is dropped: only
    rank 0 writes outputs.
    """
    if not is_main_process():
        with _scratch() as folder:
            yield folder / Path(path).name
        return
    path = Path(path)
    if path.is_dir():
        raise BiovaeError(f"{path} is a folder, expected a file path", "choose another output name")
    _ensure_parent(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise _write_error(path, exc) from None
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp (and some writers) make 0600; outputs follow the umask
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        converted = _as_write_error(path, tmp, exc)
        if converted is not None:
            raise converted from None
        raise


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, *, force: bool = False) -> Iterator[Path]:
    """Yield an empty temporary folder beside `path`; on success it replaces `path`.

    An existing folder at `path` is replaced only when biovae wrote it (it holds MARKER), it is
    empty, or `force` is set; anything else raises BiovaeError before anything is written. The
    completed folder gets MARKER, and every file and folder in it the user's umask. An existing
    folder is swapped out only after the new one is complete, so an interrupted or failed run
    (disk full: BiovaeError) leaves the old results (or nothing) in place and no temporary folder
    behind. On a non-zero rank of a distributed run the folder is scratch, dropped afterwards:
    only rank 0 writes outputs.
    """
    if not is_main_process():
        with _scratch() as folder:
            yield folder
        return
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise BiovaeError(f"output {path} exists and is a file", "give a folder path for the output")
    if path.is_dir() and not force and not folder_is_ours(path):
        raise BiovaeError(f"output folder {path} exists, is not empty and was not written by biovae (no {MARKER})",
                          "choose a new output folder, or pass force / --force to replace it")
    _ensure_parent(path)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    except OSError as exc:
        raise _write_error(path, exc) from None
    try:
        os.chmod(tmp, 0o777 & ~_umask())
        yield tmp
        (tmp / MARKER).write_text(json.dumps({"written_by": "biovae"}) + "\n")
        _apply_umask(tmp)
        if path.exists():
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            os.replace(path, old)
            try:
                os.replace(tmp, path)
            except BaseException:
                os.replace(old, path)  # put the previous results back
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        converted = _as_write_error(path, tmp, exc)
        if converted is not None:
            raise converted from None
        raise


def _apply_umask(folder: Path) -> None:
    """Give every file (0666) and folder (0777) under `folder` the user's umask: some writers
    (safetensors, mkstemp) create files 0600, which labmates then cannot read."""
    mask = _umask()
    for root, dirs, names in os.walk(folder):
        for d in dirs:
            os.chmod(os.path.join(root, d), 0o777 & ~mask)
        for n in names:
            full = os.path.join(root, n)
            if not os.path.islink(full):
                os.chmod(full, 0o666 & ~mask)


@contextlib.contextmanager
def _scratch() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="biovae-rank-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def write_json(path: str | os.PathLike, obj) -> None:
    """Write `obj` as indented JSON, atomically."""
    text = json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n"
    with atomic_file(path) as tmp:
        tmp.write_text(text)


# -- output lock ----------------------------------------------------------------------------
def lock_path(out: str | os.PathLike) -> Path:
    """The lock file guarding output `out`: `OUT.lock` beside it (not inside: OUT is replaced
    as a whole by atomic_dir)."""
    out = Path(os.path.abspath(out))  # "." and "results/" have a name to put ".lock" after
    if not out.name:
        raise BiovaeError(f"cannot write outputs to the root folder {out}", "choose an output folder")
    return out.with_name(out.name + ".lock")


def is_main_process() -> bool:
    """False in the non-zero ranks of a distributed run (torchrun / fabric run / Fabric's own
    launcher set RANK, or NODE_RANK and LOCAL_RANK); those must neither lock nor write outputs."""
    if os.environ.get("RANK") not in (None, ""):
        return os.environ["RANK"] == "0"
    return all(os.environ.get(k, "0") in ("", "0") for k in ("NODE_RANK", "LOCAL_RANK", "GROUP_RANK"))


@contextlib.contextmanager
def output_lock(out: str | os.PathLike) -> Iterator[Path | None]:
    """Hold `OUT.lock` while the body runs; yields the lock path (None on a non-main rank).

    Raises BiovaeError naming the lock, its owner (pid, host, start time) and what to do when
    another live run holds it. A lock whose owner process no longer exists on this host (or whose
    pid now belongs to another process) is stale and is taken over. The lock is removed on exit,
    also when the body raises; a process killed with -9 leaves it, and the next run takes it over
    and removes the temporary folder that run's atomic_dir left beside OUT.
    """
    if not is_main_process():
        yield None
        return
    lock = lock_path(out)
    _ensure_parent(lock)
    mine = _owner_record()
    for _ in range(10):  # a stale lock is removed, then creation is tried again
        try:
            fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            _take_over_if_stale(lock, out)
            continue
        except OSError as exc:
            raise _write_error(lock, exc) from None
        try:
            os.write(fd, (json.dumps(mine) + "\n").encode())
        except OSError as exc:
            os.close(fd)
            lock.unlink(missing_ok=True)
            raise _write_error(lock, exc) from None
        os.close(fd)
        break
    else:
        raise BiovaeError(f"could not take the output lock {lock}: other runs keep taking it",
                          f"make sure only one run writes to {out}")
    _remove_leftovers(Path(os.path.abspath(out)))
    try:
        yield lock
    finally:
        if _read_owner(lock) == mine:  # never remove a lock another run holds
            lock.unlink(missing_ok=True)


def _remove_leftovers(out: Path) -> None:
    """Temporary folders of OUT left by a run killed while writing: `.OUT.*.tmp` (a new result
    not yet complete) is removed; `.OUT.old-PID` (the previous result, set aside for the swap) is
    put back when OUT is missing, else removed. Only called under OUT's lock, so no live run is
    writing them."""
    for left in sorted(out.parent.glob(f".{glob.escape(out.name)}.*")):
        if not left.is_dir():
            continue
        if ".old-" in left.name and not out.exists():
            os.replace(left, out)
        elif left.name.endswith(".tmp") or ".old-" in left.name:
            shutil.rmtree(left, ignore_errors=True)


def _owner_record() -> dict:
    return {"pid": os.getpid(), "host": socket.gethostname(), "started": _start_time(os.getpid())}


def _start_time(pid: int) -> float | None:
    """Start time of process `pid` (seconds since the epoch, rounded), None if it does not exist."""
    try:
        import psutil

        return round(psutil.Process(pid).create_time(), 2)
    except Exception:  # psutil.NoSuchProcess, AccessDenied, or psutil missing
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return -1.0  # alive, start time unknown


def _read_owner(lock: Path) -> dict | None:
    """The owner recorded in a lock file; {} if it is unreadable or half-written; None if absent."""
    try:
        doc = json.loads(lock.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def _is_stale(owner: dict, lock: Path) -> bool:
    if not owner:  # empty or garbled: stale only once old enough that its writer surely finished
        try:
            return time.time() - lock.stat().st_mtime > _TAKEOVER_STALE_S
        except FileNotFoundError:
            return True
    if owner.get("host") != socket.gethostname():
        return False  # cannot see processes on another machine: assume it is alive
    pid, started = owner.get("pid"), owner.get("started")
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return True
    now = _start_time(pid)
    if now is None:
        return True  # the process is gone
    if not isinstance(started, (int, float)) or started <= 0 or now <= 0:
        return False  # start times unknown: the pid is alive, so assume it is the owner
    return abs(now - started) > 1.0  # the pid was reused by another process


def _describe(owner: dict) -> str:
    if not owner:
        return "a run that is starting"
    who = f"pid {owner.get('pid')} on host {owner.get('host')}"
    started = owner.get("started")
    if isinstance(started, (int, float)) and 0 < started < 1e11:
        who += f", started {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(started))}"
    return who


def _take_over_if_stale(lock: Path, out) -> None:
    """Remove `lock` if its owner is dead, under a short O_EXCL guard so that two runs taking
    over the same stale lock cannot remove each other's fresh one; else raise BiovaeError."""
    owner = _read_owner(lock)
    if owner is None:
        return  # released meanwhile: just try again
    if not _is_stale(owner, lock):
        raise BiovaeError(
            f"another biovae run is writing to {out}: the output is locked by {lock} ({_describe(owner)})",
            f"wait for that run to finish, or choose another output; if no such run exists "
            f"(e.g. it ran on another machine and died), delete {lock}")
    guard = lock.with_name(lock.name + ".takeover")
    try:
        fd = os.open(guard, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        try:
            if time.time() - guard.stat().st_mtime > _TAKEOVER_STALE_S:
                guard.unlink(missing_ok=True)
        except FileNotFoundError:
            pass
        time.sleep(0.05)
        return  # another run is taking over: try again (it will then hold the lock)
    except OSError as exc:
        raise _write_error(guard, exc) from None
    os.close(fd)
    try:
        if _read_owner(lock) == owner:  # still the same dead owner: nobody took it meanwhile
            lock.unlink(missing_ok=True)
    finally:
        guard.unlink(missing_ok=True)


# -- errors -----------------------------------------------------------------------------------
def _is_full(exc: BaseException) -> bool:
    if isinstance(exc, OSError) and exc.errno in _FULL:
        return True
    return _FULL_TEXT.search(str(exc)) is not None


def _write_error(path: Path, exc: BaseException) -> BiovaeError:
    """A BiovaeError for a failed write of `path`: disk full or another OS error."""
    reason = " ".join(str(getattr(exc, "strerror", None) or exc).split())  # h5py's run over lines
    if _is_full(exc):
        return BiovaeError(
            f"no space left to write {path} ({reason}); nothing was written "
            f"and any previous {path.name} is unchanged",
            f"free space on the disk holding {path.parent} (or raise the quota / file size limit), "
            f"or choose an output on another disk")
    return BiovaeError(f"cannot write {path}: {reason}; nothing was written and any previous {path.name} is unchanged",
                       f"check that {path.parent} is writable and on a healthy disk, or choose another output")


def _as_write_error(path: Path, tmp: Path, exc: BaseException) -> BiovaeError | None:
    """The BiovaeError for an exception raised while writing `path` via `tmp`, or None when the
    exception is not a write failure (it is then re-raised unchanged): disk full in any form;
    or an OSError without a file name (write/close/flush) or about the temporary or final path."""
    if isinstance(exc, BiovaeError) or not isinstance(exc, Exception):
        return None
    if _is_full(exc):
        return _write_error(path, exc)
    if isinstance(exc, OSError):
        names = [str(n) for n in (exc.filename, exc.filename2) if n is not None]
        ours = (str(tmp), str(path))
        if not names or any(n == o or n.startswith(o + os.sep) for n in names for o in ours):
            return _write_error(path, exc)
    return None


def _json_default(obj):
    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot write {type(obj).__name__} as JSON")


def _ensure_parent(path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BiovaeError(f"cannot create folder {path.parent}: {exc.strerror}") from None
