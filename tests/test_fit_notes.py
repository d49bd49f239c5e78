"""Issue 17 item 4: a fit that produced little says so on its summary line and in its report."""

import numpy as np
import pandas as pd

from biovae.cli import main
from biovae.engine.fit_notes import training_notes


def _rows(betas, vals):
    return [{"epoch": i, "beta": b, "train_loss": 1.0, "val_loss": v} for i, (b, v) in enumerate(zip(betas, vals))]


def test_notes_name_the_problem_and_what_to_try():
    assert training_notes(_rows([1.0] * 20, np.linspace(5, 1, 20)), 1.0) == []
    stopped = training_notes(_rows(np.linspace(0.05, 0.5, 12), np.linspace(5, 1, 12)), 1.0)
    assert len(stopped) == 1 and "before the KL warm-up ended" in stopped[0] and "--epochs" in stopped[0]
    short = training_notes(_rows([1.0] * 3, [3.0, 2.0, 1.0]), 1.0)
    assert len(short) == 1 and "only 3 epochs" in short[0]
    stalled = training_notes(_rows([0.5] * 5 + [1.0] * 30, [9, 8, 7, 6, 5] + [2.0] + [2.5] * 29), 1.0)
    assert len(stalled) == 1 and "never improved" in stalled[0] and "--lr" in stalled[0]
    assert "no epoch" in training_notes([], 1.0)[0]


def test_short_fit_warns_on_its_summary_line_and_report(tmp_path, capsys):
    rng = np.random.default_rng(1)
    path = tmp_path / "cells.csv"
    pd.DataFrame(rng.poisson(2.0, (40, 8)), index=[f"c{i}" for i in range(40)],
                 columns=[f"g{j}" for j in range(8)]).to_csv(path)
    out = tmp_path / "model"
    assert main(["fit", str(path), "-o", str(out), "--epochs", "3", "--hidden", "8", "--latent-dim", "2",
                 "--likelihood", "gaussian", "--quiet"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("biovae fit:") and "WARNING: only 3 epochs" in last
    assert "WARNING: only 3 epochs" in (out / "report.html").read_text()
