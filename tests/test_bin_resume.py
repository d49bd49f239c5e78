"""kill -9 of `biovae bin` during training: OUT stays absent, and --resume finishes the job with
the same bins as a run that was never interrupted (cached features + training checkpoint)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from test_bin_workflow import _demo_records, _fasta

ARGS = ["--epochs", "40", "--patience", "40", "--quiet", "--threads", "1", "--seed", "4"]


def _bin(reads: Path, out: Path, *extra: str) -> subprocess.Popen:
    code = "import sys; from biovae.cli import main; sys.exit(main(sys.argv[1:]))"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-c", code, "bin", str(reads), "-o", str(out), *ARGS, *extra],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_kill_during_training_then_resume_gives_the_same_bins(tmp_path):
    reads = _fasta(tmp_path / "reads.fa", _demo_records(500))
    whole = tmp_path / "whole"
    assert _bin(reads, whole).wait(timeout=300) == 0

    out = tmp_path / "out"
    proc = _bin(reads, out)
    checkpoint = tmp_path / "out.partial" / "checkpoint"
    deadline = time.time() + 240
    while not (checkpoint.exists() and any(checkpoint.iterdir())):
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.time() < deadline, "no checkpoint was written"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not out.exists()  # nothing half-written
    assert (tmp_path / "out.partial" / "features" / "meta.json").exists()

    resumed = _bin(reads, out, "--resume")
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read().decode()
    assert (out / "bins.tsv").read_bytes() == (whole / "bins.tsv").read_bytes()
    assert not (tmp_path / "out.partial").exists() and not (tmp_path / "out.lock").exists()
