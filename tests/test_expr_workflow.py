"""Expression workflow on real (pbmc68k_reduced) and simulated (VAExprs vignette) data."""

import json

import anndata as ad
import numpy as np
import pytest

import biovae.expr as ex
from biovae.cli import main
from browser import check_report
from biovae.evaluate.generation import diagonal_gaussian_baseline, evaluate_generation, split_cells
from biovae.expr.simulate import simulate_vaexprs

QUICK = dict(epochs=60, patience=15, progress=False, seed=0)


def test_generated_cells_of_a_group_show_that_groups_up_regulated_genes():
    sim = simulate_vaexprs(seed=0)
    model = ex.fit(sim, labels="group", likelihood="normal", latent_dim=4, **QUICK)
    gen = model.generate(labels={g: 100 for g in sorted(set(sim.obs["group"]))}, method="prior", seed=1)
    for g in sorted(set(sim.obs["group"])):
        up = np.flatnonzero((sim.var["up_in"] == g).to_numpy() & (sim.var["shift"] > 3).to_numpy())
        mine = gen[gen.obs["label"] == g].X[:, up].mean(0)
        others = gen[gen.obs["label"] != g].X[:, up].mean(0)
        assert (mine > others + 2).mean() > 0.9, g  # nearly all of g's up genes are up in its cells


def test_lattice_of_log_normalised_counts_is_recognised_only_there():
    from biovae.expr.preprocess import Preprocessor, lattice_size_factors

    rng = np.random.default_rng(0)
    k = rng.poisson(2.0, size=(60, 50))
    s = rng.uniform(0.5, 4.0, size=60)
    logn = np.round(np.log1p(k * s[:, None]), 3)  # stored with 3 decimals, as in pbmc68k_reduced
    np.testing.assert_allclose(lattice_size_factors(logn), s, rtol=2e-3)
    assert Preprocessor("hurdle").fit(logn).lattice
    assert not Preprocessor("bernoulli").fit(logn).lattice
    assert lattice_size_factors(k) is None  # raw counts: expm1 breaks the ladder
    assert lattice_size_factors(np.log1p(rng.gamma(2.0, 1.0, size=(60, 50)))) is None  # continuous
    assert lattice_size_factors(np.log1p((k > 0) * s[:, None])) is None  # one value per cell
    pre = Preprocessor("hurdle").fit(logn)
    y = pre.transform_data(logn)
    back = pre.inverse(y, size=s)
    np.testing.assert_allclose(back, np.log1p(k * s[:, None]), atol=2e-3)  # round trip onto the lattice


def test_cell_scale_hurdle_density_and_scale_floor():
    import torch
    from torch.distributions import Normal

    from biovae.engine import likelihoods
    from biovae.engine.likelihoods.hurdle import HURDLE_CELL_MIN_SCALE as MIN_SCALE

    lik = likelihoods.get("hurdle_cell")(3).double()
    # decoder output per gene: locations, zero logits, raw scales
    raw = torch.tensor([[0.5, 1.0, -1.0, 0.0, 2.0, -2.0, -30.0, 0.0, 1.0]], dtype=torch.float64)
    x = torch.tensor([[0.0, 1.2, 0.3]], dtype=torch.float64)
    sp = torch.nn.functional.softplus
    want = (np.log(0.5)
            + float(torch.nn.functional.logsigmoid(torch.tensor(-2.0)) + Normal(1.0, sp(torch.tensor(0.0)) + MIN_SCALE).log_prob(torch.tensor(1.2)))
            + float(torch.nn.functional.logsigmoid(torch.tensor(2.0)) + Normal(-1.0, sp(torch.tensor(1.0)) + MIN_SCALE).log_prob(torch.tensor(0.3))))
    assert float(lik.log_prob(x, raw)) == pytest.approx(want, rel=1e-6)
    d = lik.distribution(raw)
    assert float(d.normal.scale[0, 0]) == pytest.approx(MIN_SCALE, rel=1e-6)  # floored, never 0
    torch.manual_seed(0)
    draws = d.sample((4000,))[:, 0]
    assert float((draws[:, 0] == 0).double().mean()) == pytest.approx(0.5, abs=0.03)


@pytest.fixture(scope="module")
def pbmc_split(pbmc):
    raw = pbmc.raw.to_adata()
    raw.obs = pbmc.obs[["bulk_labels"]].copy()
    return split_cells(raw, 0.2, label_key="bulk_labels", seed=0)


@pytest.fixture(scope="module")
def default_cvae(pbmc_split):
    return ex.fit(pbmc_split[0], labels="bulk_labels", progress=False, seed=0)  # default settings


def test_hurdle_decoder_starts_at_each_genes_marginal():
    import scipy.sparse as sp
    import torch

    from biovae.engine.marginals import marginals
    from biovae.engine.vae import VAE

    rng = np.random.default_rng(0)
    y = rng.normal(5.0, 0.5, size=(300, 4)) * (rng.random((300, 4)) > [0.0, 0.2, 0.5, 0.9])
    m = marginals(y)
    for j in range(4):
        nonzero = y[:, j][y[:, j] != 0]
        assert m.nonzero_mean[j] == pytest.approx(nonzero.mean()) and m.nonzero_sd[j] == pytest.approx(nonzero.std(ddof=1))
        assert m.zero_fraction[j] == pytest.approx((y[:, j] == 0).mean())
    np.testing.assert_allclose(marginals(sp.csr_matrix(y)).nonzero_mean, m.nonzero_mean)  # sparse rows: the same
    for likelihood in ("hurdle_cell", "hurdle"):
        vae = VAE(4, likelihood=likelihood, hidden=(8,))
        assert vae.start_at_marginals(y) == ["x"]
        # the heads' biases alone (every hidden unit silent) decode each gene's marginal
        bias = vae.module.decoder.heads["x"].bias.detach()[None]
        with torch.no_grad():
            d = vae.module.likelihoods["x"].distribution(bias)
        np.testing.assert_allclose(d.normal.loc[0].numpy(), m.nonzero_mean, rtol=1e-5)
        np.testing.assert_allclose(d.normal.scale[0].numpy(), m.nonzero_sd, rtol=1e-4)
        np.testing.assert_allclose(torch.sigmoid(d.zero_logits[0]).numpy(), np.clip(m.zero_fraction, 1e-3, 1 - 1e-3),
                                   rtol=1e-4)
    assert VAE(4, likelihood="normal").start_at_marginals(y) == []  # centred data: nothing to move


def test_genes_detected_in_every_cell_keep_their_within_type_spread(pbmc_split, default_cvae):
    # Hurdle data are scaled, not centred: RPS24 and FTL (detected in > 95 % of cells) sit at
    # 3-5.5 sd from 0. Without the marginal start (marginal_start=False) the decoder had not
    # reached them when early stopping ended training, and generated cells spread them 1.8-1.9x
    # as wide as real cells of the same type (median over labels and genes; up to 3.6x for one
    # label); with it 0.98-1.08x (generation seeds 1-3).
    train, _ = pbmc_split
    x = train.X.toarray() if hasattr(train.X, "toarray") else np.asarray(train.X)
    lab = train.obs["bulk_labels"].astype(str).to_numpy()
    detected = (x != 0).mean(0)
    genes = np.flatnonzero((detected > 0.95) & (x.sum(0) / (x != 0).sum(0) > 3 * x.std(0)))
    assert len(genes) >= 2
    gen = default_cvae.generate(labels={k: 100 for k in default_cvae.labels}, seed=1)
    g, gl = np.asarray(gen.X), gen.obs["label"].astype(str).to_numpy()
    big = [k for k in default_cvae.labels if (lab == k).sum() >= 40]
    ratio = [g[gl == k][:, j].std() / x[lab == k][:, j].std() for k in big for j in genes]
    assert 0.7 < np.median(ratio) < 1.3, ratio


def test_cvae_cells_are_more_realistic_than_the_diagonal_gaussian_baseline(pbmc_split, default_cvae):
    train, test = pbmc_split
    model = default_cvae
    want = test.obs["bulk_labels"].value_counts().to_dict()
    gen = model.generate(labels=want, method="mixture", seed=1)
    assert gen.obs["label"].value_counts().to_dict() == want and gen.obs["generated"].all()
    ours = evaluate_generation(test, gen, label_key="bulk_labels", seed=0)
    base = evaluate_generation(test, diagonal_gaussian_baseline(train, want, "bulk_labels", seed=1),
                               label_key="bulk_labels", seed=0)
    assert ours["overall"]["rf_auc"] < base["overall"]["rf_auc"] - 0.1, (ours["overall"], base["overall"])
    # default likelihood "auto" picks "hurdle" here (lower validation loss): this metric (10 PCs of the
    # held-out cells, per-label balanced) reads 0.73-0.75 over generation seeds 1-3, where
    # "hurdle_cell" reads 0.58-0.65; the benchmark's forest (50 PCs of both sides) reads the other
    # way on this split, 0.556 against 0.581 (docs/generation.md, "What is not done")
    assert ours["overall"]["rf_auc"] < 0.76
    assert ours["overall"]["ks_detected_genes"] < 0.4  # zeros are modelled, not smeared
    assert ours["per_label_mean"]["mean_corr"] > 0.85
    # .raw is log-normalised counts, and so are the generated cells: log1p(k * s) with whole k
    assert model.pre.lattice
    X = np.asarray(gen.X, dtype=np.float64)
    s = np.expm1(np.where(X > 0, X, np.inf).min(1))
    k = np.expm1(X) / s[:, None]
    assert np.abs(k - np.round(k)).max() < 1e-3

    mean = model.encode(test)
    assert test.obsm["X_biovae"].shape == (test.n_obs, 10) and np.array_equal(mean, test.obsm["X_biovae"])


def test_model_folder_round_trip_and_repeatable_generation(pbmc_split, tmp_path):
    train, _ = pbmc_split
    model = ex.fit(train[:200].copy(), labels="bulk_labels", **{**QUICK, "epochs": 3})
    model.save(tmp_path / "m")
    back = ex.load(tmp_path / "m")
    a = model.generate(30, method="posterior", seed=4)
    b = back.generate(30, method="posterior", seed=4)
    assert np.array_equal(a.X, b.X) and list(a.obs["label"]) == list(b.obs["label"])
    with pytest.raises(ex.ExpressionModel.__mro__[0].__init__.__globals__["BiovaeError"], match="not seen"):
        back.generate(5, labels="Alien cell")


def _h5ad(tmp_path, x, obs=None, name="d.h5ad"):
    a = ad.AnnData(X=np.asarray(x, dtype=np.float32))
    if obs is not None:
        a.obs = obs
        a.obs_names = [f"c{i}" for i in range(a.n_obs)]
    a.var_names = [f"g{j}" for j in range(a.n_vars)]
    path = tmp_path / name
    a.write_h5ad(path)
    return path


def test_cli_fit_generate_and_bad_inputs(tmp_path, capsys):
    import pandas as pd

    rng = np.random.default_rng(0)
    x = rng.poisson(3.0, size=(120, 15))
    obs = pd.DataFrame({"type": np.where(np.arange(120) % 2, "A", "B")})
    good = _h5ad(tmp_path, x, obs)
    assert main(["fit", str(good), "-o", str(tmp_path / "m"), "--labels", "type", "--likelihood", "nb",
                 "--epochs", "3", "--quiet"]) == 0
    assert json.loads((tmp_path / "m" / "summary.json").read_text())["cells"] == 120
    check_report(tmp_path / "m" / "report.html", tmp_path, images=1, text=["biovae fit", "120 cells", "Labels"])
    assert main(["generate", str(tmp_path / "m"), "--label", "A=7", "-o", str(tmp_path / "g.h5ad")]) == 0
    gen = ad.read_h5ad(tmp_path / "g.h5ad")
    assert gen.n_obs == 7 and np.allclose(gen.X, np.round(gen.X))  # nb gives counts
    check_report(tmp_path / "g.h5ad.report.html", tmp_path, images=0, text=["biovae generate", "7 cells"])
    assert main(["plot-model", str(tmp_path / "m"), "-o", str(tmp_path / "arch.png")]) == 0
    check_report(tmp_path / "arch.png.report.html", tmp_path, images=1, text=["biovae plot-model"])
    capsys.readouterr()

    def fails(argv, message):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, err

    fails(["generate", str(tmp_path / "m"), "--label", "C=3", "-o", str(tmp_path / "h.h5ad")], "'C'")
    assert not (tmp_path / "h.h5ad").exists()
    bad = x.astype(float)
    bad[3, 4] = np.nan
    fails(["fit", str(_h5ad(tmp_path, bad, obs, "nan.h5ad")), "-o", str(tmp_path / "x")], "NaN")
    bad[3, 4] = np.inf
    fails(["fit", str(_h5ad(tmp_path, bad, obs, "inf.h5ad")), "-o", str(tmp_path / "x")], "infinite")
    fails(["fit", str(_h5ad(tmp_path, -x, obs, "neg.h5ad")), "-o", str(tmp_path / "x")], "negative")
    fails(["fit", str(_h5ad(tmp_path, x + 0.5, obs, "frac.h5ad")), "-o", str(tmp_path / "x"),
           "--likelihood", "nb"], "non-integer")
    fails(["fit", str(good), "-o", str(tmp_path / "x"), "--labels", "celltype"], "'celltype'")
    holes = obs.copy()
    holes.loc[5, "type"] = None
    fails(["fit", str(_h5ad(tmp_path, x, holes, "holes.h5ad")), "-o", str(tmp_path / "x"), "--labels", "type"],
          "empty or NaN")
    fails(["fit", str(_h5ad(tmp_path, np.zeros((0, 15)), None, "empty.h5ad")), "-o", str(tmp_path / "x")], "no cells")
    fails(["fit", str(_h5ad(tmp_path, np.zeros((120, 0)), obs, "nogenes.h5ad")), "-o", str(tmp_path / "x")],
          "no genes")
    assert not (tmp_path / "x").exists()
    # new data on another gene set: generated cells lacking genes of the real ones
    fails(["evaluate-generation", str(good), str(_h5ad(tmp_path, x[:, :10], obs, "fewer.h5ad")),
           "-o", str(tmp_path / "m.json")], "g10")
    assert not (tmp_path / "m.json").exists()

    model = ex.load(tmp_path / "m")
    other = ad.AnnData(X=x[:, :10].astype(np.float32))
    other.var_names = [f"g{j}" for j in range(10)]
    with pytest.raises(Exception, match="g10"):
        model.encode(other, labels=np.array(["A"] * 120))
