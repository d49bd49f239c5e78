"""Typed state of expression models (issue 18): the samplers and the input-library model are
records under their own namespaces, and a model file written before them (flat "gmm.*",
"post.*", "lib.*" keys) loads and generates the same cells."""

import numpy as np
import pandas as pd

import biovae.expr as ex
from biovae.engine import state
from biovae.expr.samplers import InputLibraries, LatentSamplers


def _cells(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.poisson(rng.gamma(2.0, 2.0, size=(1, 15)), size=(90, 15)).astype(float)
    labels = np.array(["a", "b", "c"] * 30)
    x[labels == "b", :5] += 6
    import anndata as ad

    return ad.AnnData(X=x, obs=pd.DataFrame({"type": labels}, index=[f"c{i}" for i in range(90)]))


def test_old_flat_state_loads_and_generates_the_same_cells(tmp_path):
    model = ex.fit(_cells(), labels="type", likelihood="normal", transform="normalize_log1p", epochs=3,
                   hidden=[16], latent_dim=2, progress=False, seed=1)
    samplers = state.get(model.vae.state, LatentSamplers)
    libs = state.get(model.vae.state, InputLibraries)
    assert len(samplers.labels) == 3 and libs.blocks["cells"].shape == (4, 4)
    new = tmp_path / "new"
    model.save(new)
    want = ex.load(new).generate(labels={"a": 20, "b": 20}, seed=5)

    # the same model as earlier versions wrote it: flat per-label keys
    flat = {k: v for k, v in model.vae.state.items()
            if not k.startswith((LatentSamplers.namespace + ".", InputLibraries.namespace + "."))}
    flat.update(samplers.to_arrays())
    for i, row in enumerate(libs.blocks["cells"][1:]):
        flat[f"lib.{i}"] = row
    model.vae.state = flat
    model.save(tmp_path / "old")
    assert not any(k.startswith("samplers.") for k in model.vae.state)
    back = ex.load(tmp_path / "old")
    got = back.generate(labels={"a": 20, "b": 20}, seed=5)
    assert np.array_equal(np.asarray(got.X), np.asarray(want.X))
    assert len(back.samplers.labels) == 3 and np.allclose(back.samplers.posterior_means(1), samplers.labels[1].post_mean)
