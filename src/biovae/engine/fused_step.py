"""One training step's forward and backward pass of the standard MLP VAE written out by hand.

`VAEModule.forward` under autograd records a graph of about twenty nodes per step, and the
backward pass walks it; on the CPU at SCVI's layer sizes that bookkeeping (graph building, the
engine, gradient accumulation, module calls) is a large share of a 6 ms step. `FusedStep`
runs the same operations in the same order - the same products (engine.linear's backend
rules), the fused batch norm -> ReLU -> dropout node's own passes (engine.norm_act), the
sampler and KL node (engine.module), the same random draws - and chains their gradients
directly. Only the likelihoods go through autograd, on a graph of their own (any registered
likelihood works, its own parameters included). The gradients are those of
`(recon + beta * KL).mean()`, assigned to each parameter's .grad, so the optimizer step,
gradient clipping and checkpoints are unchanged; tests/test_fused_step.py checks them against
autograd's. `for_module(module)` and `FusedStep.applies(batch)` say where it runs: the MLP
network with batch norm, ReLU and optional dropout after each hidden layer, one-hot or no
conditions, a float32 CPU batch and the C kernels built; the training loop runs autograd
everywhere else (GPUs, several processes, mixed precision, other networks). Set
BIOVAE_FUSED_STEP=off to always run autograd.

Beyond the bookkeeping it saves: the NB/ZINB likelihoods run their C kernel's two passes directly
(Likelihood.log_prob_direct), the two latent heads run as one product, and small layers' BLAS
products are taken in the orientation MKL runs fastest (_linear_backward). Speed, SCVI's layers
on 20,000 x 765 PBMC counts, ZINB, batch 128, one thread of a Zen 4 EPYC:
`benchmarks/expr_throughput.py` fits the same model both ways in one run (row "biovae zinb,
autograd step"), 21,746 against 18,720 cells/s per epoch (1.16x, medians of 9 interleaved rounds;
round by round 0.88-1.41x on a machine whose neighbours move each round by up to a third).
"""

from __future__ import annotations

import os

import torch
from torch import nn

from biovae.engine import direct
from biovae.engine import dropout as _dropout
from biovae.engine import linear as _linear
from biovae.engine import norm_act
from biovae.engine.dropout import Dropout
from biovae.engine.module import VAEModule, _SampleAndKL
from biovae.engine.networks import MLP, Decoder, Encoder


def _layers(body: MLP) -> list[tuple[nn.Linear, nn.BatchNorm1d, float]] | None:
    """(linear, batch norm, dropout p) per hidden layer of an MLP of Linear -> BatchNorm1d ->
    ReLU [-> Dropout] groups, else None."""
    mods, out, i = list(body), [], 0
    while i < len(mods):
        if not (i + 2 < len(mods) and isinstance(mods[i], nn.Linear) and type(mods[i + 1]) is nn.BatchNorm1d
                and type(mods[i + 2]) is nn.ReLU):
            return None
        drop = mods[i + 3] if i + 3 < len(mods) and type(mods[i + 3]) is Dropout else None
        out.append((mods[i], mods[i + 1], drop.p if drop is not None else 0.0))
        i += 4 if drop is not None else 3
    return out


def enabled() -> bool:
    """False when BIOVAE_FUSED_STEP=off (or 0/no/false)."""
    return os.environ.get("BIOVAE_FUSED_STEP", "auto").strip().lower() not in ("off", "0", "no", "false")


def for_module(module: VAEModule) -> "FusedStep | None":
    """A FusedStep for `module` where its structure allows one (the MLP network with batch norm,
    ReLU and optional dropout after each hidden layer, one-hot or no conditions, float32
    parameters, the C kernels built), else None: train it with autograd."""
    enc, dec = module.encoder, module.decoder
    if not enabled() or type(module) is not VAEModule:
        return None
    if type(enc) is not Encoder or type(dec) is not Decoder:
        return None
    if _dropout._lib() is None or module.condition.embed is not None:
        return None
    if any(p.dtype != torch.float32 or p.device.type != "cpu" for p in module.parameters()):
        return None
    if _layers(enc.body) is None or any(_layers(body) is None for body in _decoder_bodies(dec)):
        return None
    return FusedStep(module)


def _decoder_bodies(dec: Decoder) -> list[MLP]:
    """The decoder's MLPs: its body, or one per layer when the condition enters every layer."""
    return list(dec.layers) if dec.every else [dec.body]


def _linear_forward(x, weight, bias):
    return _linear.linear(x, weight.detach(), None if bias is None else bias.detach())


def _linear_backward(x, weight, grad, need_dx: bool):
    """(dx, dW, db) of y = x W^T + b: oneDNN's passes where `linear` runs oneDNN; else BLAS
    products in the orientation that writes the longer rows. MKL on small layers (one thread,
    Zen 4, batch 128): dW of 128 -> 10 as dy^T x 9 us against 44 us as (x^T dy)^T, dW of
    10 -> 128 the other way round 10 against 43, dx of 10 -> 128 as (W^T dy^T)^T 18 against 37."""
    if _linear.uses_onednn_for(x, weight):
        return _linear.onednn_backward(x, weight.detach(), grad, need_dx)
    w = weight.detach()
    n, d_in, d_out = x.shape[0], w.shape[1], w.shape[0]
    dw = grad.t().mm(x) if d_out <= d_in else x.t().mm(grad).t().contiguous()
    dx = None
    if need_dx:
        dx = w.t().mm(grad.t()).t().contiguous() if 4 * d_in <= n else grad.mm(w)
    return dx, dw, grad.sum(0)


def _give(param: nn.Parameter | None, grad: torch.Tensor | None) -> None:
    """Add grad to param.grad (set it where there is none yet)."""
    if param is None or grad is None:
        return
    param.grad = grad if param.grad is None else param.grad + grad


class FusedStep:
    """Call with (x, codes, beta): sets .grad of every parameter to the gradient of the batch's
    mean negative ELBO and returns its per-sample terms (loss, recon, kl), detached."""

    def __init__(self, module: VAEModule):
        self.module = module
        self.enc_layers = _layers(module.encoder.body)
        # decoder: one group of layers per MLP; with the condition at every layer, each group's
        # input is [h | condition]
        self.every = module.decoder.every
        self.dec_groups = [_layers(body) for body in _decoder_bodies(module.decoder)]
        self.norms = [bn for group in [self.enc_layers] + self.dec_groups for _, bn, _ in group]

    def applies(self, x: torch.Tensor) -> bool:
        """Whether this batch can take the fused step (a float32 CPU batch of two rows or more, no
        autocast, the module in training mode)."""
        return self.module.training and all(norm_act.fusable(x, bn) for bn in self.norms)

    def _body_forward(self, h, layers, keep):
        for lin, bn, p in layers:
            a = _linear_forward(h, lin.weight, lin.bias)
            seed = _dropout.draw_seed() if p > 0.0 else 0  # drawn where batch_norm_relu_dropout draws it
            bn.num_batches_tracked.add_(1)
            momentum = bn.momentum if bn.momentum is not None else 1.0 / float(bn.num_batches_tracked)
            ctx, y = direct.forward(norm_act._BatchNormReluDropout, a.contiguous(), bn.weight.detach(),
                                    bn.bias.detach(), bn.running_mean, bn.running_var, momentum, bn.eps, seed, p)
            keep.append((h, lin, bn, ctx))
            h = y
        return h

    @staticmethod
    def _body_backward(grad, keep, need_dx_first: bool):
        for i in range(len(keep) - 1, -1, -1):
            h, lin, bn, ctx = keep[i]
            da, dgamma, dbeta = direct.backward(norm_act._BatchNormReluDropout, ctx, grad)[:3]
            _give(bn.weight, dgamma)
            _give(bn.bias, dbeta)
            dh, dw, db = _linear_backward(h, lin.weight, da, need_dx=i > 0 or need_dx_first)
            _give(lin.weight, dw)
            _give(lin.bias, db)
            grad = dh
        return grad

    def _likelihoods(self, x, raw):
        """(recon (n,), d raw per block) for the loss (recon + beta KL).mean(); the likelihoods'
        own parameters get their gradients. Each likelihood's direct form where all have one
        (the C count kernel), else autograd on a graph of the likelihoods alone."""
        m, n = self.module, x.shape[0]
        libraries = m.libraries(x)
        parts = m.split(x)
        forms = []
        for name, *_ in m.bounds:  # stops at the first likelihood without a direct form
            forms.append(m.likelihoods[name].log_prob_direct(parts[name], raw[name], libraries[name]))
            if forms[-1] is None:
                break
        else:
            return self._direct(forms, n)
        leaves = {name: r.requires_grad_() for name, r in raw.items()}
        lik_params = [p for p in m.likelihoods.parameters() if p.requires_grad]
        with torch.enable_grad():
            recon, _ = m.reconstruction_nll(x, leaves, libraries)
            grads = torch.autograd.grad(recon.sum() / n, list(leaves.values()) + lik_params, allow_unused=True)
        for p, g in zip(lik_params, grads[len(leaves):]):
            _give(p, g)
        return recon.detach(), list(grads[:len(leaves)])

    @torch.no_grad()
    def _direct(self, forms, n):
        recon, d_raws = None, []
        for (_, _, _, w), (value, backward) in zip(self.module.bounds, forms):
            term = -value if w == 1 else -w * value
            recon = term if recon is None else recon + term
            d_raw, params = backward(torch.full((n,), -w / n, dtype=value.dtype))
            d_raws.append(d_raw)
            for p, g in params.items():
                if p.requires_grad:
                    _give(p, g)
        return recon, d_raws

    def __call__(self, x: torch.Tensor, codes: torch.Tensor | None, beta: float) -> dict[str, torch.Tensor]:
        m = self.module
        enc, dec = m.encoder, m.decoder
        n = x.shape[0]
        with torch.no_grad():
            cond = m.condition(codes, n, x.device)
            enc_keep, dec_keep = [], []
            h = self._body_forward(torch.cat([x, cond], dim=1) if enc.use_condition else x, self.enc_layers, enc_keep)
            # the two latent heads as one product (their weights stay two layers)
            d = enc.mean.out_features
            w_heads = torch.cat([enc.mean.weight.detach(), enc.logvar.weight.detach()])
            both = _linear_forward(h, w_heads, torch.cat([enc.mean.bias.detach(), enc.logvar.bias.detach()]))
            mean, logvar = both[:, :d], both[:, d:]
            eps = torch.randn(mean.shape, dtype=mean.dtype)
            sk, (z, kl) = direct.forward(_SampleAndKL, mean, logvar, eps)
            hd, widths = z, []  # widths: the h part of each decoder input [h | condition]
            for group in self.dec_groups:
                widths.append(hd.shape[1])
                hd = self._body_forward(torch.cat([hd, cond], dim=1) if cond.shape[1] else hd, group, dec_keep)
            if self.every:
                widths.append(hd.shape[1])
                hd = torch.cat([hd, cond], dim=1)
            raw = {name: _linear_forward(hd, head.weight, head.bias) for name, head in dec.heads.items()}
        recon, d_raws = self._likelihoods(x, raw)
        with torch.no_grad():
            d_hd = None
            for (name, head), d_raw in zip(dec.heads.items(), d_raws):
                if d_raw is None:
                    continue
                dh, dw, db = _linear_backward(hd, head.weight, d_raw.contiguous(), need_dx=True)
                _give(head.weight, dw)
                _give(head.bias, db)
                d_hd = dh if d_hd is None else d_hd + dh
            if self.every:
                d_hd = d_hd[:, :widths.pop()]
            start = len(dec_keep)
            for group in reversed(self.dec_groups):
                start -= len(group)
                d_in = self._body_backward(d_hd, dec_keep[start:start + len(group)], need_dx_first=True)
                d_hd = d_in[:, :widths.pop()]
            dz = d_hd
            d_mean, d_logvar, _ = direct.backward(_SampleAndKL, sk, dz.contiguous(),
                                                  torch.full((n,), beta / n, dtype=kl.dtype))
            dh, dw, db = _linear_backward(h, w_heads, torch.cat([d_mean, d_logvar], dim=1), need_dx=True)
            _give(enc.mean.weight, dw[:d])
            _give(enc.logvar.weight, dw[d:])
            _give(enc.mean.bias, db[:d])
            _give(enc.logvar.bias, db[d:])
            self._body_backward(dh, enc_keep, need_dx_first=False)
        return {"loss": recon + beta * kl, "recon": recon, "kl": kl}
