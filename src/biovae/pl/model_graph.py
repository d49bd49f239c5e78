"""The architecture of a fitted model as a diagram: layers left to right with their sizes,
condition inputs, the latent mean/log-variance and the output heads with their likelihoods."""

from __future__ import annotations

from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from biovae.engine import likelihoods


def _layers(cfg) -> list[tuple[str, str, str]]:
    """(column title, text, colour) from input to output."""
    cond = "".join(f"\n+ {name} ({len(c)})" for name, c in cfg.conditions.items())
    blocks = "\n".join(f"{b.name}: {b.size}" for b in cfg.blocks)
    cols = [("input", f"{blocks}{cond}", "#cfe2f3")]
    for i, h in enumerate(cfg.hidden):
        cols.append((f"encoder {i + 1}", f"{h}\n{cfg.activation}, {cfg.norm} norm"
                     + (f"\ndropout {cfg.dropout}" if cfg.dropout else ""), "#d9ead3"))
    cols.append(("posterior", f"mean {cfg.latent_dim}\nlog-variance {cfg.latent_dim}", "#fff2cc"))
    cols.append(("latent z", f"{cfg.latent_dim}{cond}", "#fce5cd"))
    every = cond if getattr(cfg, "condition_every_layer", False) else ""  # the label enters each layer
    for i, h in enumerate(cfg.decoder_layers):
        cols.append((f"decoder {i + 1}", f"{h}\n{cfg.activation}, {cfg.norm} norm{every}", "#d9ead3"))
    heads = "\n".join(f"{b.name}: {b.size} x {likelihoods.get(b.likelihood).n_params}\n{b.likelihood}"
                      + (f", weight {b.weight}" if b.weight != 1 else "") for b in cfg.blocks) + every
    cols.append(("output", heads, "#cfe2f3"))
    return cols


def model_graph(model, save=None) -> Figure:
    """Draw the architecture of `model` (a VAE, or anything with a `.vae` VAE) and optionally
    save it (PNG/PDF/SVG by the extension). Returns the matplotlib Figure."""
    vae = getattr(model, "vae", model)
    cfg = vae.config
    cols = _layers(cfg)
    fig = Figure(figsize=(1.9 * len(cols) + 0.6, 3.6))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, len(cols))
    ax.set_ylim(0, 1)
    ax.axis("off")
    for i, (title, text, colour) in enumerate(cols):
        ax.add_patch(FancyBboxPatch((i + 0.08, 0.22), 0.84, 0.56, boxstyle="round,pad=0.02", fc=colour, ec="#555555"))
        ax.text(i + 0.5, 0.84, title, ha="center", va="bottom", fontsize=9, weight="bold")
        ax.text(i + 0.5, 0.5, text, ha="center", va="center", fontsize=8)
        if i:
            ax.add_patch(FancyArrowPatch((i - 0.06, 0.5), (i + 0.1, 0.5), arrowstyle="->", mutation_scale=12))
    ax.text(0.1, 0.06, f"beta {cfg.beta}; KL to N(0, I); z = mean + exp(log-variance / 2) * eps",
            fontsize=8, color="#444444")
    if save is not None:
        from biovae.pl.augmented import save_figure

        save_figure(fig, save)
    return fig
