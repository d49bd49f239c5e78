"""Warnings about a fit that produced little, read off its per-epoch history.

A workflow puts them on its summary line and in its report, so that a short or stalled fit is
never mistaken for a good one. Each note says what to try.
"""

from __future__ import annotations

MIN_EPOCHS = 10  # fewer epochs than this rarely give a usable model of any size


def training_notes(history: list[dict], beta: float) -> list[str]:
    """Notes (empty when the fit looks normal) for a fit with these per-epoch records
    (the engine's `history`: epoch, beta, train_loss, val_loss, ...) and KL weight `beta`."""
    if not history:
        return ["no epoch was trained; check the data and --epochs"]
    notes = []
    last = history[-1]
    if beta > 0 and last.get("beta", beta) < beta * (1 - 1e-6):
        notes.append(f"training stopped after {len(history)} epochs, before the KL warm-up ended (KL weight "
                     f"{last['beta']:.3g} of {beta:.3g}): the model is not a proper VAE yet; "
                     "raise --epochs or resume the fit with --resume")
    elif len(history) < MIN_EPOCHS:
        notes.append(f"only {len(history)} epochs were trained; the model is likely under-fitted: raise --epochs")
    settled = [r for r in history if r.get("val_loss") is not None and r.get("beta", beta) >= beta * (1 - 1e-6)]
    if len(settled) > 1 and min(r["val_loss"] for r in settled) >= settled[0]["val_loss"]:
        notes.append("the validation loss never improved after the KL warm-up, so early stopping kept the first "
                     "epoch after it; try a lower --lr, a larger --batch-size or more cells")
    return notes
