"""The engine's dropout: the C hashed mask keeps 1 - p of the elements, scales them like
nn.Dropout, uses the same mask in the backward pass, and repeats under the same seed."""

import numpy as np
import pytest
import torch

from biovae.engine import dropout as dr

pytestmark = pytest.mark.skipif(dr._lib() is None, reason="no C compiler here: dropout is nn.functional.dropout")


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
