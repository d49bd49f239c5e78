"""VAE: the engine's user-facing object. Arrays in, arrays out; workflows build on it.

    vae = VAE(n_features=765, likelihood="gaussian", latent_dim=10, conditions={"cell": labels})
    vae.fit(x, conditions={"cell": labels}, epochs=200, seed=1)
    mean, logvar = vae.encode(x, conditions={"cell": labels})
    new = vae.sample(100, conditions={"cell": "B cell"}, seed=2)
    vae.save("model/"); vae = VAE.load("model/")

Shapes: x (n, n_features); conditions maps each covariate name to n labels (or one label,
broadcast); latent arrays are (n, latent_dim) float32.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping, Sequence

import numpy as np
import scipy.sparse as sp
import torch

from biovae.engine import data, files, state, train
from biovae.engine.config import Block, ModelConfig, TrainConfig
from biovae.engine.likelihoods import log_library
from biovae.engine.marginals import marginals
from biovae.engine.module import VAEModule, kl_normal, reparameterize
from biovae.errors import BiovaeError



def _categories(values) -> list[str]:
    values = [str(v) for v in values]
    return values if len(set(values)) == len(values) else sorted(set(values))


class VAE:
    """A (conditional, multi-block) variational autoencoder.

    Give either n_features (one block with `likelihood`) or blocks (list of Block). conditions:
    covariate name -> its categories, or the labels themselves (categories are their sorted unique
    values). `seed` fixes the initial weights. network="conv" with image_shape (H, W[, C]) reads
    each flat row as an image (see ModelConfig); conv_channels are the encoder's channel counts.
    """

    def __init__(self, n_features: int | None = None, *, blocks: Sequence[Block] | None = None,
                 likelihood: str = "gaussian", latent_dim: int = 10, hidden: Sequence[int] = (256, 128),
                 decoder_hidden: Sequence[int] | None = None, activation: str = "relu", dropout: float = 0.0,
                 norm: str = "batch", conditions: Mapping[str, Sequence] | None = None,
                 condition_embedding: int = 0, condition_encoder: bool = True, condition_every_layer: bool = False,
                 beta: float = 1.0, seed: int = 0,
                 network: str = "mlp", image_shape: Sequence[int] | None = None,
                 conv_channels: Sequence[int] = (32, 64, 128)):
        if blocks is None:
            if n_features is None:
                raise BiovaeError("give n_features or blocks to build a VAE")
            blocks = [Block("x", int(n_features), likelihood)]
        cfg = ModelConfig(blocks=list(blocks), latent_dim=latent_dim, hidden=list(hidden),
                          decoder_hidden=None if decoder_hidden is None else list(decoder_hidden),
                          activation=activation, dropout=dropout, norm=norm,
                          conditions={k: _categories(v) for k, v in (conditions or {}).items()},
                          condition_embedding=condition_embedding, condition_encoder=condition_encoder,
                          condition_every_layer=condition_every_layer, beta=beta,
                          network=network, image_shape=None if image_shape is None else [int(s) for s in image_shape],
                          conv_channels=[int(c) for c in conv_channels])
        self._build(cfg.validate(), seed)

    def _build(self, cfg: ModelConfig, seed: int) -> None:
        self.config = cfg
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.module = VAEModule(cfg)
        self.module.eval()
        self.train_config: TrainConfig | None = None
        self.history: list[dict] = []
        self.metadata: dict = {}  # JSON-able workflow state saved with the model
        # numeric state saved with the model: typed records by namespace (engine.state), e.g.
        # the engine's LibrarySizes under "library"
        self.state: dict[str, np.ndarray] = {}

    @property
    def n_features(self) -> int:
        return self.config.n_features

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    # -- conditions ---------------------------------------------------------------------------
    def codes(self, conditions: Mapping[str, object] | None, n: int) -> np.ndarray | None:
        """Integer codes (n, n_covariates) for the labels in `conditions`; clear errors for a
        missing covariate or a label the model never saw."""
        spec = self.config.conditions
        if not spec:
            return None
        conditions = conditions or {}
        out = np.empty((n, len(spec)), dtype=np.int64)
        for j, (name, cats) in enumerate(spec.items()):
            if name not in conditions:
                raise BiovaeError(f"the model is conditioned on {name!r} but no {name!r} labels were given",
                                  f"pass labels for {name!r}")
            labels = conditions[name]
            labels = [labels] * n if isinstance(labels, (str, int, np.integer)) else list(labels)
            if len(labels) != n:
                raise BiovaeError(f"{len(labels)} {name!r} labels for {n} samples")
            index = {c: i for i, c in enumerate(cats)}
            for i, lab in enumerate(labels):
                code = index.get(str(lab))
                if code is None:
                    raise BiovaeError(f"label {lab!r} of {name!r} was not seen when the model was fitted",
                                      f"use one of: {', '.join(cats[:20])}")
                out[i, j] = code
        return out

    # -- training ------------------------------------------------------------------------------
    def fit(self, x, conditions: Mapping[str, object] | None = None, *, train_config: TrainConfig | None = None,
            resume: bool = False, **options) -> "VAE":
        """Fit on x (n, n_features), dense or sparse. options are TrainConfig fields (epochs,
        batch_size, lr, seed, device, checkpoint_dir, ...). Returns self; see .history."""
        cfg = dataclasses.replace(train_config or TrainConfig(), **options).validate()
        x = data.check_matrix(x, self.config)
        codes = self.codes(conditions, x.shape[0])
        self._remember_libraries(x, codes)
        self.history = train.fit(self.module, x, codes, cfg, resume=resume)
        self.module.cpu()  # trained on any device; encode, decode and save run on the CPU
        self.module.eval()
        self.train_config = cfg
        return self

    def start_at_marginals(self, x) -> list[str]:
        """Before fit: set the decoder's output biases (and the likelihoods' own per-feature
        parameters) so that the untrained decoder gives each feature its marginal in x (n,
        n_features), for every block whose likelihood has a start (Likelihood.start; the hurdle
        likelihoods do, see engine.likelihoods.hurdle). The weights keep their random start. Returns the
        names of the blocks started (none for decoders without per-block output heads)."""
        heads = getattr(self.module.decoder, "heads", None)
        if heads is None:
            return []
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise BiovaeError(f"data for the marginal start have shape {tuple(x.shape)}, the model "
                              f"{self.n_features} features", "pass the matrix the model will be fitted on")
        stats = marginals(x)  # fit() validates the values
        started = []
        for name, a, b, _ in self.module.bounds:
            bias = self.module.likelihoods[name].start(stats.columns(a, b))
            head = heads[name]
            if bias is None or head.bias is None:
                continue
            with torch.no_grad():
                head.bias.copy_(torch.as_tensor(bias, dtype=head.bias.dtype))
            started.append(name)
        return started

    def _remember_libraries(self, x, codes) -> None:
        """Fit the library-size model (state.LibrarySizes) of every count block, so that sampling
        draws realistic sequencing depths."""
        first = None if codes is None else codes[:, 0]
        n_cat = len(next(iter(self.config.conditions.values()))) if codes is not None else 0
        record = state.LibrarySizes()
        for name, a, b, _ in self.module.bounds:
            if not self.module.likelihoods[name].uses_library:
                continue
            step = data.eval_rows(self.n_features)
            logs = np.concatenate([log_library(rows[:, a:b]) for _, rows in data.row_blocks(x, step)])
            record.blocks[name] = state.LibrarySizes.fit(logs, first, n_cat)
        if record.blocks:
            state.put(self.state, record)

    def _libraries(self, codes, n, rng: np.random.Generator | None) -> dict[str, torch.Tensor]:
        """Library sizes for decoding without observed data: drawn (rng given) or the median."""
        record = state.get(self.state, state.LibrarySizes)
        out = {}
        for name, *_ in self.module.bounds:
            sizes = None if record is None else record.draw(name, None if codes is None else codes[:, 0], n, rng)
            if sizes is not None:
                out[name] = torch.as_tensor(sizes, dtype=torch.float32)[:, None]
        return out

    # -- inference -----------------------------------------------------------------------------
    def _rows(self, x):
        for a, rows in data.row_blocks(x, data.eval_rows(self.n_features)):
            yield a, torch.as_tensor(rows.toarray() if sp.issparse(rows) else np.asarray(rows), dtype=torch.float32)

    @torch.no_grad()
    def encode(self, x, conditions=None) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and log-variance of each sample: two (n, latent_dim) float32 arrays."""
        x = data.check_matrix(x, self.config)
        codes = self.codes(conditions, x.shape[0])
        self.module.eval()
        means, logvars = [], []
        for a, xb in self._rows(x):
            cb = None if codes is None else torch.as_tensor(codes[a:a + xb.shape[0]])
            m, lv = self.module.inference(xb, cb)
            means.append(m.numpy())
            logvars.append(lv.numpy())
        return np.concatenate(means), np.concatenate(logvars)

    @torch.no_grad()
    def _decode(self, z, codes, libraries, draw: bool) -> np.ndarray:
        self.module.eval()
        out = []
        step = data.eval_rows(self.n_features)
        for a in range(0, z.shape[0], step):
            zb = torch.as_tensor(z[a:a + step], dtype=torch.float32)
            cb = None if codes is None else torch.as_tensor(codes[a:a + zb.shape[0]])
            libs = {k: v[a:a + zb.shape[0]] for k, v in libraries.items()}
            dists = self.module.distributions(self.module.generative(zb, cb), libs)
            parts = [dists[name].sample() if draw else dists[name].mean for name, *_ in self.module.bounds]
            out.append(torch.cat(parts, dim=1).float().numpy())
        return np.concatenate(out)

    def decode(self, z, conditions=None, library=None) -> np.ndarray:
        """Expected data (n, n_features) at latent points z (n, latent_dim). Count blocks use
        `library` ((n,) totals, one array for every count block) or the median training depth."""
        z = np.asarray(z, dtype=np.float32)
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise BiovaeError(f"latent points must be (n, {self.latent_dim}), got shape {z.shape}")
        codes = self.codes(conditions, z.shape[0])
        libs = self._libraries(codes, z.shape[0], None)
        if library is not None:
            lib = torch.as_tensor(np.asarray(library, dtype=np.float32).reshape(-1, 1))
            libs = {k: lib for k in libs}
        return self._decode(z, codes, libs, draw=False)

    def reconstruct(self, x, conditions=None) -> np.ndarray:
        """Expected data decoded from each sample's posterior mean, at its own library size."""
        mean, _ = self.encode(x, conditions)
        codes = self.codes(conditions, x.shape[0])
        libs = {name: torch.as_tensor(np.asarray(part.sum(1), dtype=np.float32).reshape(-1, 1))
                for name, part in self._blocks_np(x).items() if self.module.likelihoods[name].uses_library}
        return self._decode(mean, codes, libs, draw=False)

    def _blocks_np(self, x):
        return {name: x[:, a:b] for name, a, b, _ in self.module.bounds}

    def sample(self, n: int, conditions=None, *, seed: int = 0, draw: bool = True) -> np.ndarray:
        """n new samples from the prior: z ~ N(0, I), then x ~ p(x | z, condition) (or its mean
        with draw=False). Count blocks draw library sizes from the training distribution."""
        if n < 1:
            raise BiovaeError(f"number of samples must be >= 1, got {n}")
        z = np.random.default_rng(seed).standard_normal((n, self.latent_dim)).astype(np.float32)
        return self.decode_sample(z, conditions, seed=seed, draw=draw)

    def decode_sample(self, z, conditions=None, *, seed: int = 0, draw: bool = True) -> np.ndarray:
        """Draws x ~ p(x | z, condition) at given latent points z (n, latent_dim) (or the mean
        with draw=False); count blocks draw library sizes from the training distribution."""
        z = np.asarray(z, dtype=np.float32)
        codes = self.codes(conditions, z.shape[0])
        rng = np.random.default_rng([seed, 1])
        libs = self._libraries(codes, z.shape[0], rng)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return self._decode(z, codes, libs, draw=draw)

    @torch.no_grad()
    def elbo(self, x, conditions=None, *, n_samples: int = 1, seed: int = 0,
             scale: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Per-sample terms, each (n,): elbo (= -(recon + kl), beta 1), recon (weighted negative
        log-likelihood, averaged over n_samples posterior draws), kl, and mse (squared error of the
        mean reconstruction, averaged over features); and the posterior they came from, mean and
        logvar (n, latent_dim), as encode() gives them (so callers need no second encoder pass).
        With `scale` (n_features,), also scaled_mse: the mean of ((reconstruction - x) / scale)^2."""
        x = data.check_matrix(x, self.config)
        codes = self.codes(conditions, x.shape[0])
        self.module.eval()
        rec, kls, mses, scaled, means, logvars = [], [], [], [], [], []
        div = None if scale is None else torch.as_tensor(np.asarray(scale, dtype=np.float32).reshape(1, -1))
        gen = torch.Generator().manual_seed(seed)
        for a, xb in self._rows(x):  # row blocks: memory stays bounded, also for a ChunkedRows
            cb = None if codes is None else torch.as_tensor(codes[a:a + xb.shape[0]])
            m, lv = self.module.inference(xb, cb)
            libs = self.module.libraries(xb)
            r = sum(self.module.reconstruction_nll(xb, self.module.generative(reparameterize(m, lv, gen), cb), libs)[0]
                    for _ in range(n_samples)) / n_samples
            rec.append(r.numpy())
            kls.append(kl_normal(m, lv).numpy())
            means.append(m.numpy())
            logvars.append(lv.numpy())
            dists = self.module.distributions(self.module.generative(m, cb), libs)  # as reconstruct()
            mean = torch.cat([dists[name].mean for name, *_ in self.module.bounds], dim=1)
            mses.append((mean - xb).pow(2).mean(1).numpy())
            if div is not None:
                scaled.append(((mean - xb) / div).pow(2).mean(1).numpy())
        recon, kl = np.concatenate(rec), np.concatenate(kls)
        out = {"elbo": -(recon + kl), "recon": recon, "kl": kl, "mse": np.concatenate(mses),
               "mean": np.concatenate(means), "logvar": np.concatenate(logvars)}
        if div is not None:
            out["scaled_mse"] = np.concatenate(scaled)
        return out

    # -- files ---------------------------------------------------------------------------------
    def save(self, folder, summary: dict | None = None, extras: dict[str, str] | None = None,
             force: bool = False) -> None:
        """Write the model folder (safetensors + JSON, and summary.json and `extras` {file name: text}
        when given), atomically. A folder biovae did not write is replaced only with `force`."""
        config = {"model": self.config.to_dict(),
                  "train": None if self.train_config is None else self.train_config.to_dict(),
                  "metadata": self.metadata}
        files.write(folder, weights=self.module.state_dict(), state=self.state, config=config, history=self.history,
                    summary=summary, extras=extras, force=force)

    @classmethod
    def load(cls, folder) -> "VAE":
        """Read a model folder written by save(); clear errors for missing, newer or altered files."""
        doc, weights, arrays, history = files.read(folder)
        try:
            cfg = ModelConfig.from_dict(doc["model"])
        except (KeyError, TypeError) as exc:
            raise BiovaeError(f"model config in {folder} is incomplete ({exc})", "fit or save the model again") from None
        vae = cls.__new__(cls)
        vae._build(cfg, seed=0)
        files.load_weights(vae.module, weights, folder)
        vae.module.eval()
        vae.state, vae.history, vae.metadata = arrays, history, doc.get("metadata") or {}
        vae.train_config = TrainConfig(**doc["train"]) if doc.get("train") else None
        return vae

    @classmethod
    def load_kind(cls, folder, kind: str, command: str) -> "VAE":
        """load(), refusing a model whose metadata kind is not `kind` (written by `command`)."""
        vae = cls.load(folder)
        found = vae.metadata.get("kind")
        if found != kind:
            raise BiovaeError(f"{folder} holds a {found or 'plain engine'!r} model, not a {kind!r} model",
                              f"give a folder written by `{command}`")
        return vae
