"""Output rules: biovae replaces only what biovae wrote.

Every command checks its output path before it reads or computes anything:

- a folder output (`bin`, `fit`, `fit-images`, `demo`) may name a path that does not exist, an
  empty folder, or a folder an earlier biovae run wrote (it holds the marker file `.biovae-output`);
- a file output (`generate -o cells.h5ad`, `anomaly -o scores.tsv`, ...) and the files written
  beside it (`OUT.summary.json`, `OUT.report.html`) may name a path that does not exist or a file
  biovae wrote: its `OUT.summary.json` records the output's size and modification time, and they
  still match (a file the user edited or replaced no longer matches); summaries, reports and plots
  carry biovae's name in their content; files inside a biovae output folder are biovae's;
- anything else that exists is refused (BiovaeError, exit status 2) unless `force` is set;
- whatever `force` says, a run is refused when one of its inputs lies inside the output (the
  replacement would delete it), and when the output is the current folder, one that holds it, or
  the root folder.

`output_folder(out, inputs, force)` checks and holds the output lock for the run; atomic_dir
writes the marker into every folder it completes.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from pathlib import Path
from typing import Iterable, Iterator

from biovae.errors import BiovaeError
from biovae.io.atomic import MARKER, folder_is_ours, is_main_process, output_lock, write_json

SIDECARS = (".summary.json", ".report.html")
_CONTENT_MARK = b"biovae"  # written into reports (generator meta) and plots (Software / Creator)


def check_output_folder(out, inputs: Iterable = (), force: bool = False) -> Path:
    """Check that the folder output `out` may be written; return it as a Path. See the module doc."""
    out = Path(out)
    _check_place(out, inputs)
    if out.exists() and not out.is_dir():
        raise BiovaeError(f"output {out} exists and is a file", "give a folder path with -o")
    if out.is_dir() and not force and not folder_is_ours(out):
        raise BiovaeError(
            f"output folder {out} already exists, is not empty and was not written by biovae "
            f"(it has no {MARKER} file); biovae replaces its output folder as a whole and would delete what is there",
            "give a new folder name with -o, or add --force to replace that folder and everything in it")
    return out


def check_output_file(out, inputs: Iterable = (), force: bool = False, sidecars: Iterable[str] = SIDECARS) -> Path:
    """Check that the file output `out` and the files written beside it (OUT + each suffix in
    `sidecars`) may be written; return `out` as a Path. See the module doc."""
    out = Path(out)
    _check_place(out, inputs)
    if out.is_dir():
        raise BiovaeError(f"output {out} is a folder, expected a file path", "give a file name with -o")
    for path in [out, *(Path(str(out) + s) for s in sidecars)]:
        if path.is_dir():
            raise BiovaeError(f"{path} is a folder, but biovae writes a file of that name",
                              "choose another output name")
        if path.exists() and not force and not file_is_ours(path):
            raise BiovaeError(
                f"{path} already exists and was not written by biovae (or was changed since)",
                "give a new file name with -o, or add --force to replace it")
    return out


@contextlib.contextmanager
def output_folder(out, inputs: Iterable = (), force: bool = False) -> Iterator[Path]:
    """Check the folder output (check_output_folder), then hold its lock while the body runs."""
    out = check_output_folder(out, inputs, force)
    with output_lock(out):
        yield out


def file_is_ours(path) -> bool:
    """True when `path` is a file biovae wrote and nobody changed since (see the module doc)."""
    path = Path(path)
    if _recorded_in_summary(path) or (path.parent / MARKER).is_file():
        return True
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            head = fh.read(1 << 16)
            if size > 1 << 16:
                fh.seek(max(size - (1 << 16), 1 << 16))
                head += fh.read()
    except OSError:
        return False
    suffix = path.suffix.lower()
    if suffix == ".json":
        try:
            doc = json.loads(head.decode("utf-8"))
        except ValueError:
            return False
        return isinstance(doc, dict) and "biovae_version" in doc
    if suffix in (".html", ".png", ".svg", ".pdf"):
        return _CONTENT_MARK in head
    return False


def output_record(path) -> dict:
    """The output's size and modification time, for its summary (see file_is_ours)."""
    st = Path(path).stat()
    return {"path": str(path), "bytes": st.st_size, "mtime_ns": st.st_mtime_ns}


def _recorded_in_summary(path: Path) -> bool:
    summary = Path(str(path) + ".summary.json")
    try:
        doc = json.loads(summary.read_text(encoding="utf-8"))
        rec = doc["output_file"]
        st = path.stat()
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return (isinstance(rec, dict) and "biovae_version" in doc and rec.get("bytes") == st.st_size
            and rec.get("mtime_ns") == st.st_mtime_ns)


def _check_place(out: Path, inputs: Iterable) -> None:
    """Refuse the root folder, the current folder or one holding it, and outputs holding an input."""
    if str(out).strip() == "":
        raise BiovaeError("the output path is empty", "give a path with -o")
    target = Path(os.path.realpath(out))
    here = Path(os.path.realpath(os.getcwd()))
    if target == target.parent:
        raise BiovaeError(f"cannot write outputs to the root folder ({out})", "give a new folder name with -o")
    if target == here or target in here.parents:
        raise BiovaeError(
            f"-o {out} names the current folder or a folder that holds it; biovae replaces its output as a whole",
            "give a new folder name with -o, e.g. -o results")
    for item in inputs:
        if item is None:
            continue
        src = Path(os.path.realpath(item))
        if src == target or target in src.parents:
            raise BiovaeError(
                f"input {item} lies inside the output {out}, which biovae replaces as a whole (also with --force)",
                "write the output somewhere else, e.g. a new folder beside the input")


@contextlib.contextmanager
def work_folder(out, resume: bool = False) -> Iterator[Path]:
    """OUT.partial, the folder of a run's intermediates (cached features, checkpoints), for the
    body of the run. Created with MARKER; a leftover of an earlier biovae run is emptied (kept with
    `resume`); a folder of that name that biovae did not write is refused, never deleted. Removed
    when the body succeeds, or fails before leaving anything to resume from."""
    out = Path(out)
    work = out.with_name(out.name + ".partial")
    if work.exists() and not (work.is_dir() and folder_is_ours(work)):
        raise BiovaeError(f"{work} exists and was not written by biovae; biovae keeps a run's intermediates there",
                          f"move or rename {work}, or choose another output name")
    if work.exists() and not resume:
        shutil.rmtree(work)
    try:
        work.mkdir(parents=True, exist_ok=True)
        (work / MARKER).write_text(json.dumps({"written_by": "biovae"}) + "\n")
    except OSError as exc:
        raise BiovaeError(f"cannot create {work}: {exc.strerror}", "check that the output's folder is writable") from None
    try:
        yield work
    except BaseException:
        if [p.name for p in work.iterdir()] == [MARKER]:
            shutil.rmtree(work, ignore_errors=True)
        raise
    if is_main_process():  # the other ranks of a distributed run leave rank 0's folder alone
        shutil.rmtree(work, ignore_errors=True)


def write_file_summary(out, summary: dict) -> Path:
    """Write OUT.summary.json: `summary`, biovae's version and the size and modification time of
    the output file OUT (by which a later run knows OUT as biovae's, see file_is_ours)."""
    from biovae import __version__

    path = Path(str(out) + ".summary.json")
    write_json(path, {**summary, "biovae_version": __version__, "output_file": output_record(out)})
    return path
