"""The fuzz harness itself (tests/fuzzing.py): a reader run in a forked child that dies of a
signal is reported as a native crash, one that never answers is reported as a hang and fails the
run, and neither takes pytest down."""

from __future__ import annotations

import collections
import faulthandler
import os
import shutil
import signal
import time
from pathlib import Path

import pytest
from fuzzing import Hang, isolated, judge_isolated, run
from hypothesis import strategies as st

from biovae.errors import BiovaeError


def _die(sig):
    """What a crash in C code looks like from outside: the child ends by a signal. (pytest's
    faulthandler would print the child's stack first; not needed here.)"""
    faulthandler.disable()
    os.kill(os.getpid(), sig)


def _refuse():
    raise BiovaeError("bad file", "give a good one")


def test_outcomes_of_a_child_that_returns():
    assert isolated(lambda: None) == "parsed"
    assert isolated(_refuse) == "refused"
    assert isolated(lambda: 1 / 0) == "ZeroDivisionError: division by zero"


@pytest.mark.parametrize("sig", [signal.SIGSEGV, signal.SIGABRT, signal.SIGBUS])
def test_a_child_killed_by_a_signal_is_a_native_crash_not_a_hang(sig):
    start = time.monotonic()
    outcome = isolated(lambda: _die(sig), timeout=30)
    assert outcome == f"native crash ({sig.name})"
    assert time.monotonic() - start < 20  # seen when the child died, not at the timeout
    counts = collections.Counter()
    with pytest.warns(UserWarning, match=f"h5ad: native crash \\({sig.name}\\)"):
        judge_isolated("h5ad", outcome, counts)  # reported, not a failure
    assert counts == {"h5ad: native crash": 1}


def test_a_child_that_sleeps_past_the_timeout_is_a_hang(tmp_path):
    start = time.monotonic()
    outcome = isolated(lambda: time.sleep(60), timeout=1)
    assert outcome == "hang (no answer after 1 s)"
    assert time.monotonic() - start < 30
    counts = collections.Counter()
    (tmp_path / "x.h5ad").write_bytes(b"the input that hung")
    with pytest.raises(Hang, match="h5ad: the reader hung: hang") as info:
        judge_isolated("h5ad", outcome, counts, keep=tmp_path)
    assert counts == {"h5ad: hang": 1}
    kept = Path(str(info.value).rsplit(" ", 1)[-1])  # the input outlives the test's folder
    assert kept != tmp_path and (kept / "x.h5ad").read_bytes() == b"the input that hung"
    shutil.rmtree(kept)
    # a hang stuck in C code, with SIGALRM and SIGTERM ignored, is a hang too
    def stuck():
        signal.signal(signal.SIGALRM, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.pause()
    assert isolated(stuck, timeout=1).startswith("hang")


def test_a_hang_fails_the_fuzz_run_at_once_and_a_crash_does_not():
    counts = collections.Counter()

    def prop(seconds):
        judge_isolated("sleepy", isolated(lambda: time.sleep(seconds), timeout=0.5), counts)

    start = time.monotonic()
    with pytest.raises(pytest.fail.Exception, match=r"hang, not a crash: sleepy: the reader hung.*case 1 of sleepy"):
        run("sleepy", st.just(5), prop, 20, counts=counts)
    assert time.monotonic() - start < 20  # stopped at the first hang: no shrinking, no 20 tries
    assert counts == {"sleepy": 1, "sleepy: hang": 1}

    def crashing(_):
        judge_isolated("crashy", isolated(lambda: _die(signal.SIGSEGV)), counts)

    with pytest.warns(UserWarning, match="crashy: native crash"):
        run("crashy", st.integers(0, 3), crashing, 5, counts=counts)  # crashes are reported, the run passes
    assert counts["crashy"] == counts["crashy: native crash"] >= 4
