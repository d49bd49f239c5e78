"""kill -9 of `biovae bin` during feature extraction, training or writing: OUT stays absent (or as
it was), and --resume finishes the job with the same bins as a run that was never interrupted
(cached features + training checkpoint); the next run clears what the killed one left."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from test_bin_workflow import _demo_records, _fasta

ARGS = ["--epochs", "40", "--patience", "40", "--quiet", "--threads", "1", "--seed", "4", "--plot", "pca"]


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


def _kill_when(proc: subprocess.Popen, ready, what: str, timeout: float = 240) -> None:
    deadline = time.time() + timeout
    while not ready():
        assert proc.poll() is None, f"finished before {what}: " + proc.stderr.read().decode()
        assert time.time() < deadline, f"never reached {what}"
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def test_kill_during_features_or_writing_leaves_nothing_and_resume_matches(tmp_path):
    # 6,000 reads (the demo's 3,000, twice under new names): feature extraction takes a few seconds
    records = _demo_records(3000)
    reads = _fasta(tmp_path / "reads.fa", records + [(f"{i}_copy", s) for i, s in records])
    fast = ["--epochs", "3", "--patience", "3"]
    whole = tmp_path / "whole"
    assert _bin(reads, whole, *fast).wait(timeout=400) == 0

    out = tmp_path / "out"
    proc = _bin(reads, out, *fast)
    _kill_when(proc, lambda: (tmp_path / "out.partial" / "features.partial").exists(), "feature extraction")
    assert not out.exists() and not (tmp_path / "out.partial" / "features").exists()
    resumed = _bin(reads, out, *fast, "--resume")
    assert resumed.wait(timeout=400) == 0, resumed.stderr.read().decode()
    assert (out / "bins.tsv").read_bytes() == (whole / "bins.tsv").read_bytes()

    # killed while writing a new result (another seed) over the old one: the old result stays
    before = (out / "bins.tsv").read_bytes()
    proc = _bin(reads, out, *fast, "--seed", "9")
    _kill_when(proc, lambda: any(tmp_path.glob(".out.*.tmp")), "writing")
    assert (out / "bins.tsv").read_bytes() == before
    again = _bin(reads, out, *fast, "--seed", "9", "--resume")
    assert again.wait(timeout=400) == 0, again.stderr.read().decode()
    whole9 = tmp_path / "whole9"
    assert _bin(reads, whole9, *fast, "--seed", "9").wait(timeout=400) == 0
    assert (out / "bins.tsv").read_bytes() == (whole9 / "bins.tsv").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "reads.fa", "whole", "whole9"]  # no leftovers
