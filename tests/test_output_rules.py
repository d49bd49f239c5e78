"""Issue 17: biovae never deletes or replaces what it did not write.

Each rule of biovae.io.outputs through the command line, as a user meets it: the input inside the
output, a foreign non-empty folder with and without --force, a foreign file for `generate -o`,
`-o .` (and `..`, `/`), and file modes that follow the umask.
"""

import os
import stat
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from biovae.cli import main
from biovae.errors import BiovaeError
from biovae.io.atomic import MARKER, atomic_dir


@pytest.fixture()
def cells_csv(tmp_path):
    """A tiny cells x genes count table: fits in a second."""
    rng = np.random.default_rng(0)
    x = rng.poisson(3.0, size=(60, 12))
    frame = pd.DataFrame(x, index=[f"c{i}" for i in range(60)], columns=[f"g{j}" for j in range(12)])
    path = tmp_path / "cells.csv"
    frame.to_csv(path)
    return path


FAST = ["--epochs", "2", "--hidden", "16", "--latent-dim", "2", "--likelihood", "gaussian", "--quiet"]


def _tree(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _fails_cleanly(capsys, argv, *words) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    for w in words:
        assert w in err, err
    return err


@pytest.mark.parametrize("force", [False, True])
def test_input_inside_output_is_refused_even_with_force(tmp_path, cells_csv, capsys, force):
    project = cells_csv.parent
    (project / "notes.txt").write_text("my notes")
    before = _tree(project)
    argv = ["fit", str(cells_csv), "-o", str(project), *FAST] + (["--force"] if force else [])
    _fails_cleanly(capsys, argv, str(cells_csv), "inside the output")
    assert _tree(project) == before

    # binning: reads inside OUT, the issue's own example
    reads = project / "reads.fa"
    reads.write_text(">r1\n" + "ACGT" * 300 + "\n")
    before = _tree(project)
    _fails_cleanly(capsys, ["bin", str(reads), "-o", str(project), "--quiet"] + (["--force"] if force else []),
                   "inside the output")
    assert _tree(project) == before


def test_foreign_folder_refused_without_force_replaced_with_it(tmp_path, cells_csv, capsys):
    out = tmp_path / "results"
    out.mkdir()
    (out / "thesis.tex").write_text("years of work")
    err = _fails_cleanly(capsys, ["fit", str(cells_csv), "-o", str(out), *FAST], str(out), "--force")
    assert "not written by biovae" in err
    assert (out / "thesis.tex").read_text() == "years of work" and len(list(out.iterdir())) == 1
    assert not list(tmp_path.glob(".results.*")) and not (tmp_path / "results.lock").exists()

    assert main(["fit", str(cells_csv), "-o", str(out), *FAST, "--force"]) == 0
    assert not (out / "thesis.tex").exists() and (out / "model.safetensors").is_file() and (out / MARKER).is_file()

    # a folder biovae wrote is replaced without --force (re-running a command just works)
    assert main(["fit", str(cells_csv), "-o", str(out), *FAST, "--seed", "2"]) == 0
    # an empty folder is fine too
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["fit", str(cells_csv), "-o", str(empty), *FAST]) == 0


def test_foreign_file_for_generate(tmp_path, cells_csv, capsys):
    model = tmp_path / "model"
    assert main(["fit", str(cells_csv), "-o", str(model), *FAST]) == 0
    capsys.readouterr()
    target = tmp_path / "x.h5ad"
    target.write_bytes(b"someone else's data")
    _fails_cleanly(capsys, ["generate", str(model), "-n", "5", "-o", str(target)], str(target), "--force")
    assert target.read_bytes() == b"someone else's data"
    assert not (tmp_path / "x.h5ad.summary.json").exists()

    fresh = tmp_path / "fresh.h5ad"
    assert main(["generate", str(model), "-n", "5", "-o", str(fresh)]) == 0
    assert main(["generate", str(model), "-n", "5", "-o", str(fresh), "--seed", "3"]) == 0  # ours: replaced

    # once the user edits the file, it is theirs
    os.utime(fresh, ns=(1, 1))
    _fails_cleanly(capsys, ["generate", str(model), "-n", "5", "-o", str(fresh)], str(fresh))
    # a foreign sidecar (x.csv.summary.json written by someone else) is protected too
    side = tmp_path / "t.csv.summary.json"
    side.write_text('{"mine": 1}')
    _fails_cleanly(capsys, ["generate", str(model), "-n", "5", "-o", str(tmp_path / "t.csv")], str(side))
    assert main(["generate", str(model), "-n", "5", "-o", str(target), "--force"]) == 0
    assert target.read_bytes()[:4] == b"\x89HDF"


@pytest.mark.parametrize("where", [".", "..", "/"])
def test_current_parent_and_root_folders_refused(tmp_path, cells_csv, capsys, monkeypatch, where):
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    (work / "keep.txt").write_text("keep")
    for force in ([], ["--force"]):
        err = _fails_cleanly(capsys, ["fit", str(cells_csv), "-o", where, *FAST, *force], where)
        assert "current folder" in err or "root folder" in err or "inside the output" in err
    assert (work / "keep.txt").read_text() == "keep"
    _fails_cleanly(capsys, ["generate", str(tmp_path), "-n", "2", "-o", where])


@pytest.mark.parametrize("mask", [0o022, 0o027])
def test_file_modes_follow_the_umask(tmp_path, cells_csv, mask):
    old = os.umask(mask)
    try:
        out = tmp_path / "model"
        assert main(["fit", str(cells_csv), "-o", str(out), *FAST]) == 0
        gen = tmp_path / "gen.h5ad"
        assert main(["generate", str(out), "-n", "4", "-o", str(gen)]) == 0
    finally:
        os.umask(old)
    files = [p for p in out.rglob("*") if p.is_file()] + list(tmp_path.glob("gen.h5ad*"))
    assert any(p.name == "model.safetensors" for p in files) and len(files) >= 6
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in files}
    assert set(modes.values()) == {0o666 & ~mask}, modes
    assert stat.S_IMODE(out.stat().st_mode) == 0o777 & ~mask


def test_api_writers_refuse_foreign_folders(tmp_path):
    """The Python API keeps the rule too: atomic_dir (under every model save) refuses a foreign
    non-empty folder unless force=True."""
    out = tmp_path / "mine"
    out.mkdir()
    (out / "data.txt").write_text("x")
    with pytest.raises(BiovaeError, match="not written by biovae"):
        with atomic_dir(out) as tmp:
            (tmp / "a").write_text("new")
    assert (out / "data.txt").read_text() == "x"
    with atomic_dir(out, force=True) as tmp:
        (tmp / "a").write_text("new")
    assert sorted(p.name for p in out.iterdir()) == [MARKER, "a"]
