"""Faults while writing outputs: a full disk (a real small tmpfs where one can be mounted, and a
file-size limit, RLIMIT_FSIZE, in a subprocess) gives one clear BiovaeError and leaves no partial
files, with earlier results unchanged; the output lock refuses a second run and takes over the
lock of a run that died."""

from __future__ import annotations

import errno
import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from biovae.errors import BiovaeError
from biovae.io import atomic
from biovae.io.atomic import atomic_dir, atomic_file, lock_path, output_lock, write_json

# Writes every kind of output biovae makes, each bigger than the space allowed; prints JSON
# {case: "ok" | "BiovaeError: ..." | "<OtherType>: ..."} so the test can check each.
_WRITER = textwrap.dedent("""
    import json, os, resource, signal, sys
    from pathlib import Path
    import numpy as np, torch, anndata as ad
    from biovae.errors import BiovaeError
    from biovae.io.atomic import atomic_dir, atomic_file, write_json
    from biovae.io.expression import write_expression
    from biovae.engine import files
    root, limit = Path(sys.argv[1]), int(sys.argv[2])
    if limit:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG from write() instead of a kill
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    big = np.random.default_rng(0).normal(size=(400, 400)).astype(np.float32)  # 640 kB
    def text_file():
        with atomic_file(root / "old.tsv") as tmp, open(tmp, "w") as fh:
            for i in range(40000):
                fh.write(f"row{i}\\t{i * 0.5}\\n")
    def folder():
        with atomic_dir(root / "olddir") as tmp:
            (tmp / "small.txt").write_text("fits\\n")
            big.tofile(tmp / "big.f32")
    def json_file():
        write_json(root / "report.json", {"x": big[:200].tolist()})
    def model():
        files.write(root / "model", weights={"w": torch.as_tensor(big)}, state={}, config={}, history=[])
    def h5ad():
        write_expression(ad.AnnData(X=big), root / "expr.h5ad")
    out = {}
    for name, fn in [("text_file", text_file), ("folder", folder), ("json", json_file), ("model", model),
                     ("h5ad", h5ad)]:
        try:
            fn()
            out[name] = "ok"
        except BiovaeError as exc:
            out[name] = "BiovaeError: " + str(exc)
        except Exception as exc:
            out[name] = f"{type(exc).__name__}: {exc}"
    print("RESULT " + json.dumps(out), flush=True)
""")


def _seed_old_outputs(root: Path) -> dict[str, bytes]:
    """Earlier results that a failed write must leave as they were."""
    (root / "olddir").mkdir(parents=True)
    (root / "olddir" / "bins.tsv").write_text("old\n")
    (root / "olddir" / atomic.MARKER).write_text("{}\n")  # an earlier biovae result, which biovae may replace
    (root / "old.tsv").write_text("old table\n")
    return _snapshot(root)


def _snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _check_results(out: dict, expect_word: str) -> None:
    assert set(out) == {"text_file", "folder", "json", "model", "h5ad"}
    for name, result in out.items():
        assert result.startswith("BiovaeError: no space left to write"), (name, result)
        assert (expect_word in result or "requested and" in result) and "Fix: free space" in result, (name, result)


def _env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1"}


def test_file_size_limit_gives_a_clear_error_and_no_partial_files(tmp_path):
    before = _seed_old_outputs(tmp_path)
    proc = subprocess.run([sys.executable, "-c", _WRITER, str(tmp_path), str(100_000)], env=_env(),
                          capture_output=True, text=True, timeout=300)
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert proc.returncode == 0 and line, proc.stderr[-3000:]
    _check_results(json.loads(line[0][7:]), "File too large")
    assert _snapshot(tmp_path) == before  # old outputs unchanged, nothing new, no .tmp left
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.tsv", "olddir"]


def _can_mount_tmpfs() -> bool:
    if not shutil.which("unshare") or sys.platform != "linux":
        return False
    probe = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c",
                            "d=$(mktemp -d) && mount -t tmpfs -o size=64k tmpfs $d && umount $d"],
                           capture_output=True, timeout=30)
    return probe.returncode == 0


@pytest.mark.skipif(not _can_mount_tmpfs(), reason="cannot mount a tmpfs here (no user namespaces)")
def test_full_tmpfs_gives_a_clear_error_and_no_partial_files(tmp_path):
    """A real ENOSPC: a 512 kB tmpfs mounted in a private mount namespace."""
    check = textwrap.dedent("""
        import json, sys
        from pathlib import Path
        root = Path(sys.argv[1])
        print("AFTER " + json.dumps({p.relative_to(root).as_posix(): p.read_text(errors="replace")
                                      for p in sorted(root.rglob("*")) if p.is_file()}))
    """)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    script = (f"mount -t tmpfs -o size=512k tmpfs {mnt} && mkdir -p {mnt}/olddir && "
              f"echo old > {mnt}/olddir/bins.tsv && echo '{{}}' > {mnt}/olddir/{atomic.MARKER} && "
              f"echo 'old table' > {mnt}/old.tsv && "
              f"{sys.executable} -c '{_WRITER}' {mnt} 0 && {sys.executable} -c '{check}' {mnt} && "
              f"df -k {mnt} | tail -1")
    assert "'" not in _WRITER + check
    proc = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script],
                          env=_env(), capture_output=True, text=True, timeout=300)
    lines = proc.stdout.splitlines()
    result = [ln for ln in lines if ln.startswith("RESULT ")]
    after = [ln for ln in lines if ln.startswith("AFTER ")]
    assert proc.returncode == 0 and result and after, proc.stdout[-2000:] + proc.stderr[-3000:]
    _check_results(json.loads(result[0][7:]), "No space left on device")
    assert json.loads(after[0][6:]) == {"old.tsv": "old table\n", "olddir/bins.tsv": "old\n",
                                        f"olddir/{atomic.MARKER}": "{}\n"}
    used_kb = int(lines[-1].split()[2])
    assert used_kb <= 16, lines[-1]  # every temporary file was removed: the space is free again


def test_failed_swap_puts_the_previous_folder_back(tmp_path, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.txt").write_text("old")
    (out / atomic.MARKER).write_text("{}\n")  # an earlier biovae result
    real_replace = os.replace

    def failing(src, dst):
        if str(src).endswith(".tmp"):  # the new folder cannot be moved into place
            raise OSError(errno.ENOSPC, "No space left on device", str(src))
        return real_replace(src, dst)

    monkeypatch.setattr(atomic.os, "replace", failing)
    with pytest.raises(BiovaeError, match="no space left to write .*out"):
        with atomic_dir(out) as tmp:
            (tmp / "a.txt").write_text("new")
    assert [p.name for p in tmp_path.iterdir()] == ["out"] and (out / "a.txt").read_text() == "old"


def test_unrelated_errors_pass_through_unchanged(tmp_path):
    with pytest.raises(FileNotFoundError):
        with atomic_file(tmp_path / "x.txt") as tmp:
            tmp.write_text("partial")
            open(tmp_path / "missing-input.txt").read()
    with pytest.raises(KeyError):
        with atomic_dir(tmp_path / "d"):
            raise KeyError("bug")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(TypeError):
        write_json(tmp_path / "j.json", {"x": object()})
    assert list(tmp_path.iterdir()) == []


# -- the output lock ------------------------------------------------------------------------
_HOLDER = textwrap.dedent("""
    import os, sys, time
    from biovae.io.atomic import output_lock
    from biovae.errors import BiovaeError
    while len(sys.argv) > 3 and not os.path.exists(sys.argv[3]):  # start line: all try at once
        time.sleep(0.01)
    try:
        with output_lock(sys.argv[1]):
            print("got", flush=True)
            time.sleep(float(sys.argv[2]))
    except BiovaeError as exc:
        print("refused", exc, flush=True)
""")


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_second_run_is_refused_then_a_killed_runs_lock_is_taken_over(tmp_path):
    out = tmp_path / "OUT"
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(out), "60"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "got"
        lock = lock_path(out)
        assert lock == tmp_path / "OUT.lock" and json.loads(lock.read_text())["pid"] == holder.pid
        with pytest.raises(BiovaeError) as info:
            with output_lock(out):
                pass
        msg = str(info.value)
        assert f"another biovae run is writing to {out}" in msg and str(lock) in msg
        assert f"pid {holder.pid} on host {socket.gethostname()}" in msg
        assert "wait for that run to finish" in msg and f"delete {lock}" in msg
    finally:
        holder.kill()  # like kill -9: no clean-up runs, the lock stays behind
        holder.wait()
    assert lock.exists()
    with output_lock(out) as held:
        assert held == lock and json.loads(lock.read_text())["pid"] == os.getpid()
    assert not lock.exists()


def test_stale_locks_are_taken_over_and_live_or_foreign_ones_are_not(tmp_path):
    out = tmp_path / "res"
    lock = lock_path(out)
    me = atomic._owner_record()
    cases = [  # (lock content, taken over?)
        ({"pid": _dead_pid(), "host": me["host"], "started": 1.0}, True),
        ({**me, "started": me["started"] - 1000}, True),  # our pid, reused by another process
        ({"pid": _dead_pid(), "host": "another-node"}, False),  # cannot check: assume alive
        ({**me}, False),  # this very process holds it
    ]
    for content, taken in cases:
        lock.write_text(json.dumps(content))
        if taken:
            with output_lock(out):
                assert json.loads(lock.read_text()) == me
            assert not lock.exists()
        else:
            with pytest.raises(BiovaeError, match="locked by"):
                with output_lock(out):
                    pass
            assert json.loads(lock.read_text()) == content  # left alone
    lock.write_text("")  # a run is creating it right now: refused...
    with pytest.raises(BiovaeError, match="a run that is starting"):
        with output_lock(out):
            pass
    old = time.time() - 600  # ...unless it is old: its writer died before writing its pid
    os.utime(lock, (old, old))
    with output_lock(out):
        pass
    assert not lock.exists()


def test_lock_is_released_on_error_and_skipped_on_worker_ranks(tmp_path, monkeypatch):
    out = tmp_path / "o"
    with pytest.raises(ValueError):
        with output_lock(out):
            raise ValueError("a failing run")
    assert not lock_path(out).exists()
    monkeypatch.setenv("LOCAL_RANK", "1")  # a worker process of a distributed run
    with output_lock(out) as held:
        assert held is None and not lock_path(out).exists()
    monkeypatch.setenv("RANK", "0")
    with output_lock(out) as held:
        assert held == lock_path(out)


def test_only_one_of_many_runs_takes_a_stale_lock(tmp_path):
    out = tmp_path / "race"
    lock_path(out).write_text(json.dumps({"pid": _dead_pid(), "host": socket.gethostname(), "started": 1.0}))
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", _HOLDER, str(out), "2", str(go)], stdout=subprocess.PIPE,
                              text=True) for _ in range(5)]
    time.sleep(1.5)
    go.touch()
    words = [p.communicate(timeout=60)[0].split(maxsplit=1)[0] for p in procs]
    assert sorted(words) == ["got"] + ["refused"] * 4, words
    assert not lock_path(out).exists()
