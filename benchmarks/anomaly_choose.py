"""Choosing the default anomaly score offline, on the development sets only (round 3, issue 21).

Reads the per-cell features that benchmarks/anomaly_features.py saved (pbmc, lung, guo, hsmm;
split seed 0; 3 VAEs per hold-out) and prints, as mean AUROC over each data set's hold-outs:
  1. single scores and their robust-z / rank means (calibration-cell scales), as candidates;
  2. the best weighted pairs and equal triples by their worst margin over the best baseline
     (PCA error, IsolationForest, kNN on 50 PCs) across the four data sets;
  3. the adopted form, knn_resid: latent_knn and std_resid in units of their spread over the
     *training* cells (what the library can store with a model), next to calibration-cell scales;
  4. why: per data set, novel / normal ratio of the median latent_knn and std_resid.
  5. round 4 (all_b, scored in round 3, joins the development sets): ensembles with the
     baselines' own spaces and local residuals, as robust-z means on calibration-cell scales.
Features: std_resid = mean over genes of (residual / the gene's residual sd on the fit cells)^2,
residual = model-scale input minus the decoded posterior mean; latent_knn3 / 30 = k 3 / 30;
y_knn = kNN on the model-scale inputs; joint_knn = kNN on [latent, residual]; sr_top10 = mean of
the top 10 % squared standardised residuals; sr_l1 = mean absolute standardised residual.
Round 4: rec_knn = kNN among the decoded means (decoder-normalised expression); local_resid =
mean squared standardised difference between a cell and the mean input of its 10 nearest fit
cells in the latent (a neighbour average as decoder); resid_vs_neighbours = mean distance of a
cell's standardised residual to those of its 10 latent neighbours.

    python benchmarks/anomaly_choose.py            # after anomaly_features.py
"""

from __future__ import annotations

import glob
import itertools
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score
from sklearn.neighbors import NearestNeighbors

FEAT = Path(__file__).resolve().parents[1] / "benchmarks" / "out" / "feat"
BASELINES = ("pca_error", "isolation_forest", "pca_knn")


def rz(v, c):
    q1, med, q3 = np.percentile(c, [25, 50, 75])
    return (v - med) / max((q3 - q1) / 1.349, 1e-12)


def knn(ref, q, k=10, leave_self_out=False):
    k = min(k, len(ref) - int(leave_self_out))
    dist = NearestNeighbors(n_neighbors=k + int(leave_self_out)).fit(ref).kneighbors(q)[0]
    return dist[:, int(leave_self_out):].mean(1)


def features(d) -> dict:
    """name -> (scores of the scored cells, scores of the calibration cells)."""
    out = {b: (d[f"s_{b}"], d[f"c_{b}"]) for b in ("latent_knn", "recon_mse", "neg_elbo", "mahalanobis", *BASELINES)}
    acc: dict[str, list] = {}
    models = len([k for k in d.files if k.endswith("_fit_z")])
    for m in range(models):
        zf, zs, zc = d[f"m{m}_fit_z"], d[f"m{m}_s_z"], d[f"m{m}_c_z"]
        rf, rs, rc = (d[f"m{m}_{t}_y"] - d[f"m{m}_{t}_rec"] for t in ("fit", "s", "c"))
        g = rf.std(0) + 1e-6
        sq_s, sq_c = (rs / g) ** 2, (rc / g) ** 2
        top = max(1, rs.shape[1] // 10)
        wz, wr = np.sqrt(zf.var(0).sum()), np.sqrt(rf.var(0).sum())
        jf, js, jc = (np.hstack([a / wz, b / wr]) for a, b in ((zf, rf), (zs, rs), (zc, rc)))
        sr_fit = ((rf / g) ** 2).mean(1)
        lk_fit = knn(zf, zf, leave_self_out=True)
        lk_s, lk_c = knn(zf, zs), knn(zf, zc)
        parts = {"std_resid": (sq_s.mean(1), sq_c.mean(1)),
                 "sr_top10": (np.sort(sq_s, 1)[:, -top:].mean(1), np.sort(sq_c, 1)[:, -top:].mean(1)),
                 "sr_l1": (np.abs(rs / g).mean(1), np.abs(rc / g).mean(1)),
                 "resid_knn": (knn(rf, rs), knn(rf, rc)), "joint_knn": (knn(jf, js), knn(jf, jc)),
                 "latent_knn3": (knn(zf, zs, 3), knn(zf, zc, 3)),
                 "knn_resid (training scales)": (0.5 * (rz(lk_s, lk_fit) + rz(sq_s.mean(1), sr_fit)),
                                                 0.5 * (rz(lk_c, lk_fit) + rz(sq_c.mean(1), sr_fit)))}
        idx = NearestNeighbors(n_neighbors=min(10, len(zf))).fit(zf)
        _, i_s = idx.kneighbors(zs)
        _, i_c = idx.kneighbors(zc)
        yf = d[f"m{m}_fit_y"]
        lsd = (yf - yf[NearestNeighbors(n_neighbors=min(11, len(zf))).fit(zf).kneighbors(zf)[1][:, 1:]].mean(1)).std(0) + 1e-6
        rec_f = d[f"m{m}_fit_rec"]
        parts.update({
            "rec_knn": (knn(rec_f, d[f"m{m}_s_rec"]), knn(rec_f, d[f"m{m}_c_rec"])),
            "local_resid": tuple((((d[f"m{m}_{t}_y"] - yf[i].mean(1)) / lsd) ** 2).mean(1) for t, i in (("s", i_s), ("c", i_c))),
            "resid_vs_neighbours": tuple(np.sqrt(((r[:, None, :] - rf[i]) ** 2 / g ** 2).mean(2)).mean(1)
                                         for r, i in ((rs, i_s), (rc, i_c)))})
        if m == 0:
            parts["y_knn"] = (knn(d["m0_fit_y"], d["m0_s_y"]), knn(d["m0_fit_y"], d["m0_c_y"]))
        for k, v in parts.items():
            acc.setdefault(k, []).append(v)
    for k, v in acc.items():
        out[k] = (np.mean([a for a, _ in v], 0), np.mean([b for _, b in v], 0))
    return out


def main() -> None:
    data: dict[str, list] = {}
    why: dict[str, list] = {}
    for path in sorted(glob.glob(str(FEAT / "*_s0_g*.npz"))):
        name = Path(path).name.split("_s")[0]
        d = np.load(path)
        t = d["truth"].astype(bool)
        f = features(d)
        data.setdefault(name, []).append((t, f))
        why.setdefault(name, []).append([np.median(f[k][0][t]) / np.median(f[k][0][~t]) for k in ("latent_knn", "std_resid")])
    names = sorted(data)

    def auc(weights, mode="z"):
        res = []
        for n in names:
            vals = []
            for t, f in data[n]:
                if mode == "z":
                    s = sum(w * rz(*f[k]) for k, w in weights.items())
                else:
                    s = sum(w * np.argsort(np.argsort(f[k][0])) for k, w in weights.items())
                vals.append(roc_auc_score(t, s))
            res.append(np.mean(vals))
        return np.array(res)

    single = {k: np.array([np.mean([roc_auc_score(t, f[k][0]) for t, f in data[n]]) for n in names])
              for k in data[names[0]][0][1]}
    base = np.max([single[b] for b in BASELINES], axis=0)
    print("1. single scores (mean AUROC)   " + "  ".join(f"{n:>7s}" for n in names) + "   worst margin over the best baseline")
    for k, v in single.items():
        print(f"   {k:30s}" + "  ".join(f"{x:7.3f}" for x in v) + f"   {np.min(v - base):+.3f}  mean {v.mean():.3f}")
    cands = ["latent_knn", "latent_knn3", "std_resid", "sr_top10", "sr_l1", "pca_knn", "y_knn", "recon_mse",
             "neg_elbo", "mahalanobis", "joint_knn", "resid_knn"]
    rows = []
    for a, b in itertools.combinations(cands, 2):
        for w in (0.25, 0.4, 0.5, 0.6, 0.75):
            for mode in ("z", "rank"):
                v = auc({a: w, b: 1 - w}, mode)
                rows.append((np.min(v - base), f"{mode} {w:.2f} {a} + {1 - w:.2f} {b}", v))
    for a, b, c in itertools.combinations(cands[:8], 3):
        v = auc({a: 1, b: 1, c: 1})
        rows.append((np.min(v - base), f"z {a} + {b} + {c}", v))
    rows.sort(key=lambda r: -r[0])
    print("\n2. best combinations by worst margin (calibration-cell scales)")
    for margin, label, v in rows[:10]:
        print(f"   {margin:+.3f} {label:52s}" + "  ".join(f"{x:7.3f}" for x in v) + f"  mean {v.mean():.3f}")
    print("\n3. adopted: knn_resid, equal weights")
    for label, v in (("training-cell scales (library)", single["knn_resid (training scales)"]),
                     ("calibration-cell scales", auc({"latent_knn": 0.5, "std_resid": 0.5}))):
        print(f"   {label:32s}" + "  ".join(f"{x:7.3f}" for x in v) + f"   worst margin {np.min(v - base):+.3f}  mean {v.mean():.3f}")
    print("   best baseline                   " + "  ".join(f"{x:7.3f}" for x in base))
    print("\n5. round 4: robust-z means (calibration-cell scales) with the baselines' spaces and local residuals")
    for parts in (("latent_knn", "std_resid", "pca_error"), ("latent_knn", "pca_error"), ("std_resid", "pca_error"),
                  ("latent_knn", "std_resid", "pca_knn"), ("latent_knn", "std_resid", "pca_error", "pca_knn"),
                  ("pca_error", "pca_knn"), ("latent_knn", "local_resid"), ("std_resid", "local_resid"),
                  ("rec_knn", "std_resid"), ("latent_knn", "std_resid", "resid_vs_neighbours")):
        v = auc({k: 1 / len(parts) for k in parts})
        print(f"   {' + '.join(parts):52s}" + "  ".join(f"{x:7.3f}" for x in v)
              + f"   worst margin {np.min(v - base):+.3f}  mean {v.mean():.3f}")
    print("\n4. novel / normal median, mean over hold-outs (per hold-out in brackets)")
    for n in names:
        w = np.array(why[n])
        print(f"   {n}: latent_knn {w[:, 0].mean():.2f} {np.round(w[:, 0], 2).tolist()}  std_resid {w[:, 1].mean():.2f} "
              f"{np.round(w[:, 1], 2).tolist()}")


if __name__ == "__main__":
    main()
