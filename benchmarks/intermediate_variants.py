"""Why a random forest tells generated cells of a held-out time point from the real ones, and
whether other ways of turning OT-paired neighbour cells into cells do better (round 3, issue 21).

For one seed per data set (one VAE as in benchmarks/intermediate_cells.py), cells for the
held-out point are made from the same optimal-transport pairs of latent means by:
  shift       biovae.tl.intermediate_cells' default: one real cell of the pair moved by the
              decoded change from its latent mean to the pair's mix (zeros kept)
  resmix      decoder output at the mix plus the pair's residuals (y - decoded mean) mixed at f
              (zeros of the starting cell kept); resmix_var rescales the mixed residual to the
              residuals' own spread; resmix_nz keeps no zeros
  otmix_eval  (1 - f) x_B + f x_A of the OT pair in the evaluation space (no model)
  quantile    per gene, the starting cell's rank mapped onto the quantile function
              (1 - f) Q_B + f Q_A (1-D displacement interpolation of each gene; no model)
  nearest     (round 4) for each mixed latent point, the real neighbour cell (B or A) whose latent
              mean is nearest: real cells of the neighbouring time points, chosen by the model,
              nothing generated (a cell may be chosen more than once); nearest_distinct: the n
              distinct cells nearest to any mixed point (each point takes its nearest unused cell)
  pooled      the real cells of both neighbours
Printed: RF-AUC against the real held-out cells, mean-profile r / RMSE, the share of zeros and
the mean within-cell sd against the real cells', and the six genes the forest leans on most for
"shift" (mean log value / share of zeros in real held-out, shift, before B and after A cells),
and the pace line (see pace()).

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/intermediate_variants.py lung hsmm guo [--fraction=0.25]

--fraction=F (a diagnostic, never a setting) makes every row's cells at F instead of the
held-out time's fraction, e.g. nearer the earlier neighbour.
"""
import sys

import numpy as np
import torch
import explore_data
from intermediate_cells import setup
from biovae.evaluate.generation import classifier_auc, pearson
from biovae.tl.intermediate import neighbour_side, time_setup, transport_pairs
from biovae.tl.interpolate import model_parts
from biovae.tl.times import to_log
from biovae.io.expression import get_labels
from sklearn.ensemble import RandomForestClassifier

def pace(name, key, labels, before, after, work, expr, logs):
    """Where the held-out point lies on the line from the earlier to the later neighbour: the
    real held-out mean projected onto it (0 = before, 1 = after), and what a natural cubic
    spline in time through the other time points predicts (latent centroids; mean log values)."""
    from scipy.interpolate import CubicSpline

    hold = explore_data.HOLD_OUT[name]
    _, values, *_ = time_setup(explore_data.load(name), key, hold)
    wl = get_labels(work, key)
    points = sorted(set(wl), key=lambda k: values[k])
    t, th = np.array([values[p] for p in points]), values[hold]

    def along(path_at, first, last):
        d = last - first
        return float(np.dot(path_at - first, d) / np.dot(d, d))

    cents = np.array([expr.vae.encode(expr.model_input(work[wl == p], None, "cells"), None)[0].mean(0) for p in points])
    means = np.array([logs[labels == p].mean(0) for p in points])
    ib, ia = points.index(before), points.index(after)
    print(f"  pace: real held-out mean at {along(logs[labels == hold].mean(0), means[ib], means[ia]):.3f} of the way; "
          f"spline through the other time points: latent {along(CubicSpline(t, cents, bc_type='natural')(th), cents[ib], cents[ia]):.3f}, "
          f"expression {along(CubicSpline(t, means, bc_type='natural')(th), means[ib], means[ia]):.3f}")


def run(name, seed=0, genes=500, fraction=None):
    key, labels, before, after, f, mode, keep, work, model, logs = setup(name, genes, seed, {"likelihood": "hurdle_cell"})
    hold = explore_data.HOLD_OUT[name]
    real = logs[labels == hold]
    xb, xa = logs[labels == before], logs[labels == after]
    n = len(real)
    f = f if fraction is None else fraction  # diagnostic only: the cells at another point of the path
    _, expr = model_parts(model)
    pace(name, key, labels, before, after, work, expr, logs)
    wl = get_labels(work, key)
    rng = np.random.default_rng(seed)
    b = neighbour_side(expr, work[wl == before], None, rng, "b")
    a = neighbour_side(expr, work[wl == after], None, rng, "a")
    i, j = transport_pairs(b["mean"], a["mean"], n, rng)
    from_b = rng.random(n) >= f
    dec = lambda z: expr.vae.decode(np.asarray(z, np.float32), None)
    zm = ((1 - f) * b["mean"][i] + f * a["mean"][j]).astype(np.float32)
    yb, ya = b["y"][i], a["y"][j]
    rb, ra = yb - dec(b["mean"][i]), ya - dec(a["mean"][j])
    ystart = np.where(from_b[:, None], yb, ya)
    xstart = np.where(from_b[:, None], b["x"][i], a["x"][j])
    zs = np.where(from_b[:, None], b["mean"][i], a["mean"][j])
    out = {}
    def fin(y, zeros=True):
        v = expr.pre.inverse(y.astype(np.float32))
        if zeros:
            v = np.where(xstart == 0, 0.0, v)
        return to_log(v, mode)
    out["shift"] = fin(ystart + dec(zm) - dec(zs))
    out["resmix"] = fin(dec(zm) + (1 - f) * rb + f * ra)
    s = np.sqrt((1 - f) ** 2 + f ** 2)
    out["resmix_var"] = fin(dec(zm) + ((1 - f) * rb + f * ra) / s)
    out["resmix_nz"] = fin(dec(zm) + (1 - f) * rb + f * ra, zeros=False)
    lb, la = to_log(b["x"][i], mode), to_log(a["x"][j], mode)
    out["otmix_eval"] = (1 - f) * lb + f * la
    # per-gene quantile (McCann) interpolation, start cell's ranks
    LB, LA = to_log(b["x"], mode), to_log(a["x"], mode)
    qs = np.linspace(0, 1, 201)
    QB, QA = np.quantile(LB, qs, axis=0), np.quantile(LA, qs, axis=0)
    Qf = (1 - f) * QB + f * QA
    lstart = np.where(from_b[:, None], lb, la)
    u = np.where(from_b[:, None], (LB[None, :, :] < lb[:, None, :]).mean(1) + 0.5 * (LB[None] == lb[:, None]).mean(1),
                 (LA[None] < la[:, None]).mean(1) + 0.5 * (LA[None] == la[:, None]).mean(1))
    out["quantile"] = np.stack([np.interp(u[:, g], qs, Qf[:, g]) for g in range(u.shape[1])], 1)
    zall = np.vstack([b["mean"], a["mean"]])
    lall = np.vstack([LB, LA])
    from sklearn.neighbors import NearestNeighbors
    order = NearestNeighbors(n_neighbors=min(len(zall), n)).fit(zall).kneighbors(zm)[1]
    out["nearest"] = lall[order[:, 0]]
    used, pick = set(), []
    for row in order:  # each mixed point takes its nearest cell not yet taken
        c = next((c for c in row if c not in used), None)
        if c is not None:
            used.add(c)
            pick.append(c)
    out["nearest_distinct"] = lall[pick]
    print(f"  nearest: {len(set(order[:, 0]))} distinct cells for {n} points, {np.mean(order[:, 0] < len(LB)):.2f} from B")
    out["pooled"] = np.vstack([xb, xa])
    target = real.mean(0)
    lin = (1 - f) * xb.mean(0) + f * xa.mean(0)
    print(f"\n{name} f={f:.3f} n={n} genes={len(keep)}  linear mean r={pearson(lin, target):.3f} rmse={np.sqrt(np.mean((lin-target)**2)):.3f}")
    for k, v in out.items():
        auc = classifier_auc(real, v, seed=seed)[0]
        print(f"  {k:12s} auc={auc:.3f} r={pearson(v.mean(0), target):.3f} rmse={np.sqrt(np.mean((v.mean(0)-target)**2)):.3f}"
              f" zero-share={np.mean(v==0):.3f} (real {np.mean(real==0):.3f}) cell-sd={v.std(1).mean():.3f} (real {real.std(1).mean():.3f})", flush=True)
    # what the forest uses for shift
    X = np.vstack([real, out["shift"]]); y = np.r_[np.zeros(n), np.ones(len(out["shift"]))]
    rf = RandomForestClassifier(300, random_state=0).fit(X, y)
    top = np.argsort(-rf.feature_importances_)[:6]
    for g in top:
        print(f"    gene {g}: imp {rf.feature_importances_[g]:.3f} real {real[:,g].mean():.2f}/{(real[:,g]==0).mean():.2f}  shift {out['shift'][:,g].mean():.2f}/{(out['shift'][:,g]==0).mean():.2f}"
              f"  B {xb[:,g].mean():.2f}/{(xb[:,g]==0).mean():.2f}  A {xa[:,g].mean():.2f}/{(xa[:,g]==0).mean():.2f}")

if __name__ == "__main__":
    torch.set_num_threads(1)
    args = [a for a in sys.argv[1:] if not a.startswith("--fraction=")]
    given = [float(a.split("=")[1]) for a in sys.argv[1:] if a.startswith("--fraction=")]
    for name in args:
        run(name, fraction=given[0] if given else None)
