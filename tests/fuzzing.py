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
import signal
import time
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


def isolated(call) -> str:
    """Run a reader in a forked child, so that a crash inside a C library (libhdf5 on a damaged
    .h5ad) cannot take pytest down. Returns "parsed", "refused" (BiovaeError with a message),
    "native crash (SIGSEGV)" and the like, or "<OtherError>: message" (a test failure)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.close(r)
        signal.alarm(60)  # a hang counts as a crash
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
    with os.fdopen(r, "rb") as fh:
        msg = fh.read().decode(errors="replace")
    code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    return f"native crash ({signal.Signals(-code).name})" if code < 0 else msg


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



def run(name: str, strategy, prop, n: int, tag: str = "") -> None:
    """Run property `prop` on `n` derandomized examples of `strategy`, counting each under
    name + tag."""

    @settings(max_examples=n, deadline=None, derandomize=True, database=None, print_blob=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example])
    @given(strategy)
    def check(case):
        COUNTS[name + tag] += 1
        prop(case)

    check()
