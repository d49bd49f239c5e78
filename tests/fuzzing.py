"""Shared machinery of the fuzz tests (tests/test_fuzz_inputs.py): the per-property case
counter and its report file, byte-level corruption, gzip helpers, and the checks that a reader
either parses or raises BiovaeError with a message.

Not a test module itself (no test_ prefix); pytest puts tests/ on sys.path, so the test files
import it as `fuzzing`.
"""

from __future__ import annotations

import collections
import gzip
import json
import os
import select
import shutil
import signal
import tempfile
import time
import warnings
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from biovae.errors import BiovaeError

COUNTS: collections.Counter = collections.Counter()
SLOW_FACTOR = 20
OUT = Path(__file__).resolve().parents[1] / "benchmarks" / "out" / "fuzz_counts.json"


@pytest.fixture(scope="session", autouse=True)
def write_counts():
    """After the session, record how many cases each property tried."""
    yield
    if COUNTS:
        OUT.parent.mkdir(parents=True, exist_ok=True)
        old = json.loads(OUT.read_text()) if OUT.exists() else {}
        doc = {"when": time.strftime("%Y-%m-%d %H:%M:%S"), "total": sum(COUNTS.values()), "cases": dict(COUNTS)}
        old["slow" if any(k.endswith("+slow") for k in COUNTS) else "default"] = doc
        OUT.write_text(json.dumps(old, indent=2) + "\n")
        print(f"\nfuzz cases tried: {doc['total']} {dict(COUNTS)}")


def write_file(tmp: Path, name: str, data: bytes) -> Path:
    path = tmp / name
    path.write_bytes(data)
    return path


def maybe_gzip(data: bytes, gz: bool, split: int = 0) -> bytes:
    """gzip `data` (as two concatenated members when split cuts inside it, like bgzip)."""
    if not gz:
        return data
    if 0 < split < len(data):
        return gzip.compress(data[:split], mtime=0) + gzip.compress(data[split:], mtime=0)
    return gzip.compress(data, mtime=0)


def refused_or_parsed(call):
    """Run a reader on corrupt input: return its result, or None after a BiovaeError with a
    message; any other exception fails the test."""
    try:
        return call()
    except BiovaeError as exc:
        assert str(exc).strip() and exc.message.strip()
        return None


HANG_SECONDS = 60  # a damaged .h5ad is read in well under a second; a minute means a hang


class Hang(BaseException):
    """A reader that never returned. A BaseException, so that Hypothesis stops at once instead of
    shrinking the case (each try would wait out the timeout again); run() turns it into a failure."""


def isolated(call, timeout: float = HANG_SECONDS) -> str:
    """Run a reader in a forked child, so that a crash inside a C library (libhdf5 on a damaged
    .h5ad) cannot take pytest down. Returns "parsed", "refused" (BiovaeError with a message),
    "native crash (SIGSEGV)" and the like when a signal ended the child, "hang (no answer after
    60 s)" when the parent had to kill it, or "<OtherError>: message" (a test failure)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.close(r)
        try:
            call()
            msg = "parsed"
        except BiovaeError as exc:
            msg = "refused" if str(exc).strip() else "BiovaeError without a message"
        except BaseException as exc:  # noqa: BLE001 - reported to the parent as a failure
            msg = f"{type(exc).__name__}: {exc}"
        os.write(w, msg.encode()[:4000])
        os._exit(0)
    os.close(w)
    chunks, deadline = [], time.monotonic() + timeout
    with os.fdopen(r, "rb", buffering=0) as fh:
        while True:  # the pipe reaches EOF when the child exits, whichever way
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fh], [], [], left)[0]:
                os.kill(pid, signal.SIGKILL)  # ours, so not a crash of the reader
                os.waitpid(pid, 0)
                return f"hang (no answer after {timeout:g} s)"
            chunk = fh.read(4096)
            if not chunk:
                break
            chunks.append(chunk)
    code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    return f"native crash ({signal.Signals(-code).name})" if code < 0 else b"".join(chunks).decode(errors="replace")


def judge_isolated(name: str, outcome: str, counts: collections.Counter = COUNTS, keep: Path | None = None) -> None:
    """Count and judge one isolated() outcome of property `name`. A native crash is counted under
    "<name>: native crash" and reported as a warning (the C library's fault, not a Python
    exception); a hang is counted under "<name>: hang" and fails the run, with the input (the
    folder `keep`) copied to a folder that outlives the test; anything but "parsed" or "refused"
    fails."""
    if outcome.startswith("native crash"):
        counts[f"{name}: native crash"] += 1
        warnings.warn(f"{name}: {outcome} in a reader's child process (reported, not a failure)", stacklevel=2)
        return
    if outcome.startswith("hang"):
        counts[f"{name}: hang"] += 1
        where = ""
        if keep is not None:
            kept = Path(tempfile.mkdtemp(prefix="biovae-fuzz-hang-"))
            shutil.copytree(keep, kept, dirs_exist_ok=True)
            where = f"; its input is in {kept}"
        raise Hang(f"{name}: the reader hung: {outcome}{where}")
    assert outcome in ("parsed", "refused"), outcome


def refused(call, match: str = ""):
    with pytest.raises(BiovaeError, match=match) as info:
        call()
    assert str(info.value).strip()


# -- corruption of raw bytes ----------------------------------------------------------------
@st.composite
def mutated(draw, data: bytes) -> bytes:
    """`data` after 1-4 random byte flips, insertions, deletions or a truncation."""
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "set"]))
        i = draw(st.integers(0, max(len(out) - 1, 0)))
        if kind == "flip" and out:
            out[i] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set" and out:
            out[i] = draw(st.sampled_from(b"\n\r\t >@+-\x00\xff,;.eE"))
        elif kind == "insert":
            out[i:i] = draw(st.binary(min_size=1, max_size=4))
        elif kind == "delete" and out:
            del out[i : i + draw(st.integers(1, 8))]
        elif kind == "truncate":
            del out[i:]
    return bytes(out)



def run(name: str, strategy, prop, n: int, tag: str = "", counts: collections.Counter = COUNTS) -> None:
    """Run property `prop` on `n` derandomized examples of `strategy`, counting each under
    name + tag. A Hang raised by the property fails the test at once, named as a hang."""

    @settings(max_examples=n, deadline=None, derandomize=True, database=None, print_blob=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example])
    @given(strategy)
    def check(case):
        counts[name + tag] += 1
        prop(case)

    try:
        check()
    except Hang as exc:
        pytest.fail(f"hang, not a crash: {exc} (case {counts[name + tag]} of {name + tag})")
