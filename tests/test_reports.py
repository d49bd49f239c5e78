"""biovae.report: the run report page itself (every command's report is checked in its own tests)."""

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from browser import IMG, assert_report_shows_plots, needs_browser
from biovae.report import render_report, report_path, write_report

HISTORY = [{"epoch": i, "train_loss": 10 - i, "train_recon": 9 - i, "train_kl": 1 + 0.1 * i,
            "val_loss": 10.5 - i, "val_recon": 9.4 - i, "val_kl": 1.1, "seconds": 0.5} for i in range(6)]


def _png(path, colour="tab:red"):
    fig = Figure(figsize=(4, 3))
    fig.subplots().scatter(np.arange(50), np.arange(50) ** 0.5, c=colour, s=40)
    fig.savefig(path)
    return path


def test_page_escapes_text_groups_nested_values_and_notes_the_best_epoch(tmp_path):
    page = render_report("biovae <test>", lead="3 < 4 & done", summary={"cells": 1200, "auc": 0.61234,
                         "per": {"a": {"x": 1}}, "ids": list(range(30)), "flag": True, "gap": None},
                         parameters={"seed": 1}, history=HISTORY)
    assert "<title>biovae &lt;test&gt;</title>" in page and "3 &lt; 4 &amp; done" in page
    assert "1,200" in page and "0.6123" in page and "a.x" in page and "(30 in all)" in page
    assert "<caption>per</caption>" in page
    assert "6 epochs, 3.0 s of training" in page and "best validation loss 5.5 (epoch 6)" in page
    assert len(IMG.findall(page)) == 1  # the training curves


def test_images_are_embedded_pdf_linked_missing_noted_and_tables_drawn(tmp_path):
    png = _png(tmp_path / "plot.png")
    svg = tmp_path / "plot.svg"
    Figure().savefig(svg)
    (tmp_path / "plot.pdf").write_bytes(b"%PDF-1.4")
    table = pd.DataFrame({"f1": [0.91, 0.5]}, index=["bin_0", "bin_1"])
    out = write_report(tmp_path / "report.html", "t", images=[png, ("vector", svg), tmp_path / "plot.pdf",
                                                            tmp_path / "gone.png"], tables={"Per bin": table},
                       outputs=["bins.tsv"])
    page = out.read_text()
    assert 'src="data:image/png;base64,' in page and 'src="data:image/svg+xml;base64,' in page
    assert 'href="plot.pdf"' in page and "gone.png was not written" in page
    assert "Per bin" in page and "bin_1" in page and "0.91" in page and 'href="bins.tsv"' in page
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # written atomically
    assert report_path(tmp_path / "g.h5ad") == tmp_path / "g.h5ad.report.html"


@needs_browser
def test_chromium_draws_the_plots_and_the_check_can_fail(tmp_path):
    good = write_report(tmp_path / "good.html", "plots", images=[_png(tmp_path / "a.png")], history=HISTORY)
    assert_report_shows_plots(good, tmp_path, images=2, text=["plots", "Training"])
    # a page whose image does not decode draws nothing, and the check says so
    broken = tmp_path / "broken.html"
    broken.write_text(good.read_text().replace("base64,iVBOR", "base64,AAAA", 1))
    with pytest.raises(AssertionError):
        assert_report_shows_plots(broken, tmp_path, images=2, text=["plots"])
