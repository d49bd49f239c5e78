"""The engine's dropout: the C hashed mask keeps 1 - p of the elements, scales them like
nn.Dropout, uses the same mask in the backward pass, and repeats under the same seed."""

import numpy as np
import pytest
import torch

from biovae.engine import backends
from biovae.engine import dropout as dr
from biovae.engine.layers import mlp
from biovae.engine.norm_act import BatchNormReluDropout

pytestmark = pytest.mark.skipif(backends.kernel_for("dropout", torch.zeros(1)) is None,
                                reason="no C compiler here: dropout is nn.functional.dropout")


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_keeps_one_minus_p_scaled_and_backward_uses_the_same_mask(p):
    torch.manual_seed(0)
    x = torch.rand(1000, 1000) + 0.5  # no zeros, so a zero means dropped
    xg = x.clone().requires_grad_(True)
    y = dr.dropout(xg, p)
    kept = y != 0
    n = kept.numel()
    # binomial standard error of the kept fraction: 0.0003-0.0005 here; 5 of them allowed
    assert abs(kept.float().mean().item() - (1 - p)) < 5 * np.sqrt(p * (1 - p) / n)
    assert torch.allclose(y[kept], x[kept] / (1 - p))
    g = torch.randn_like(x)
    y.backward(g)
    assert torch.equal(xg.grad != 0, kept & (g != 0))
    assert torch.allclose(xg.grad[kept], g[kept] / (1 - p))
    # neighbouring elements and rows are not correlated (a counter hash with a weak mixer would be)
    k = kept.float().numpy()
    assert abs(np.corrcoef(k[:, :-1].ravel(), k[:, 1:].ravel())[0, 1]) < 0.01
    assert abs(np.corrcoef(k[:-1].ravel(), k[1:].ravel())[0, 1]) < 0.01


def test_same_seed_same_mask_and_eval_is_identity():
    x = torch.ones(64, 128)
    torch.manual_seed(7)
    a = dr.dropout(x, 0.2)
    torch.manual_seed(7)
    b = dr.dropout(x, 0.2)
    c = dr.dropout(x, 0.2)  # the next draw of the generator: another mask
    assert torch.equal(a, b) and not torch.equal(a, c)
    layer = dr.Dropout(0.2).eval()
    assert layer(x) is x
    assert dr.dropout(x, 0.0) is x


def test_other_dtypes_take_the_torch_path():
    x = torch.ones(32, 32, dtype=torch.float64)
    y = dr.dropout(x, 0.5)
    assert y.dtype == torch.float64 and set(torch.unique(y).tolist()) <= {0.0, 2.0}


@pytest.mark.parametrize("p,momentum", [(0.1, 0.1), (0.0, 0.1), (0.3, None)])
def test_fused_batch_norm_relu_dropout_matches_the_modules(p, momentum):
    """BatchNormReluDropout (built by engine.layers.mlp) runs its kernel while training on the
    CPU: same outputs (the same dropout masks from the same seed), input and parameter gradients,
    running statistics and batch count as its PyTorch reference (the three layers), over three
    steps, at PBMC-like activations (a hidden layer of 128 on 100 cells); eval mode runs the
    reference."""
    import copy

    import scanpy as sc
    from torch import nn

    x = sc.datasets.pbmc68k_reduced().raw.X
    x = torch.tensor((x.toarray() if hasattr(x, "toarray") else x)[:100, :200], dtype=torch.float32)
    torch.manual_seed(0)
    fused = mlp([200, 128, 64], "relu", "batch", p)
    for layer in fused:
        if isinstance(layer, BatchNormReluDropout):
            layer.momentum = momentum
            with torch.no_grad():
                layer.weight.uniform_(0.5, 1.5)
                layer.bias.uniform_(-0.3, 0.3)
    plain = copy.deepcopy(fused)
    for layer in plain:
        if isinstance(layer, BatchNormReluDropout):
            layer.forward = layer.reference  # the PyTorch reference, layer by layer
    assert [type(m).__name__ for m in fused] == ["Linear", "BatchNormReluDropout"] * 2
    g = torch.randn(100, 64, generator=torch.Generator().manual_seed(1))
    results = []
    for net in (fused, plain):
        net.train()
        torch.manual_seed(2)
        xg = x.clone().requires_grad_(True)
        for _ in range(3):
            net.zero_grad()
            y = net(xg)
        y.backward(g)
        results.append((y.detach(), xg.grad, {k: v.grad for k, v in net.named_parameters()}, dict(net.named_buffers())))
    (y1, dx1, dp1, b1), (y2, dx2, dp2, b2) = results
    assert torch.equal(y1 == 0, y2 == 0)  # same masks and signs
    assert torch.allclose(y1, y2, rtol=1e-5, atol=1e-5) and torch.allclose(dx1, dx2, rtol=1e-4, atol=1e-6)
    top = max(v.abs().max().item() for v in dp2.values())
    for k in dp2:  # relative to the largest gradient: a bias before a batch norm has gradient 0 up to rounding
        assert (dp1[k] - dp2[k]).abs().max().item() <= 1e-5 * top + 1e-4 * dp2[k].abs().max().item(), k
    for k in b2:
        assert torch.allclose(b1[k].float(), b2[k].float(), rtol=1e-5, atol=1e-6), k
    assert b1["1.num_batches_tracked"].item() == 3
    assert set(dict(fused.named_parameters())) == {f"{i}.{w}" for i in (0, 1, 4 if p > 0 else 3, 5 if p > 0 else 4) for w in ("weight", "bias")}
    fused.eval(), plain.eval()
    assert torch.allclose(fused(x), plain(x), rtol=1e-4, atol=1e-5)


def test_sync_batch_norm_keeps_relu_dropout_and_state_dict_keys():
    """norm_act.sync_batch_norm (multi-GPU runs): BatchNormReluDropout layers keep their ReLU and
    dropout and normalise through nn.SyncBatchNorm, other batch norms become nn.SyncBatchNorm;
    state-dict keys stay; outside a process group the outputs are those of the unsynced model;
    reverting gives back the original layers."""
    import copy

    from torch import nn

    from biovae.engine.norm_act import sync_batch_norm

    torch.manual_seed(0)
    model = nn.Sequential(mlp([20, 16, 8], "relu", "batch", 0.2), nn.BatchNorm1d(8)).train()
    plain = copy.deepcopy(model)
    keys = list(model.state_dict())
    revert = sync_batch_norm(model)
    assert isinstance(model[1], nn.SyncBatchNorm) and list(model.state_dict()) == keys
    x = torch.randn(32, 20)
    torch.manual_seed(1)
    a = model(x)
    torch.manual_seed(1)
    b = plain(x)  # its kernel: the same masks from the same seed
    assert torch.allclose(a, b, atol=1e-5) and torch.equal(a == 0, b == 0)
    revert()
    assert type(model[1]) is nn.BatchNorm1d and model[0][1].sync_norm is None
    assert torch.allclose(model[1].running_mean, plain[1].running_mean)

