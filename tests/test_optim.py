"""engine.optim.Adam: the same numbers as torch's fused Adam, step after step and across a
state-dict round trip, also when a parameter has no gradient in a step."""

import torch

from biovae.engine.optim import Adam


def _net():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(12, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))


def _steps(net, opt, seeds, freeze_last_on=()):
    for s in seeds:
        g = torch.Generator().manual_seed(s)
        x, y = torch.randn(16, 12, generator=g), torch.randn(16, 3, generator=g)
        opt.zero_grad(set_to_none=True)
        loss = ((net(x) - y) ** 2).mean()
        loss.backward()
        if s in freeze_last_on:
            net[2].bias.grad = None  # this step, one parameter has no gradient
        opt.step()


def _same(a, b):
    return all(torch.equal(u, v) for u, v in zip(a.state_dict().values(), b.state_dict().values()))


def test_adam_matches_torch_fused_adam_step_by_step_and_after_reload():
    ref_net, net = _net(), _net()
    ref = torch.optim.Adam(ref_net.parameters(), lr=1e-2, weight_decay=1e-3, fused=True)
    opt = Adam(net.parameters(), lr=1e-2, weight_decay=1e-3, fused=True)
    _steps(ref_net, ref, range(6), freeze_last_on={3})
    _steps(net, opt, range(6), freeze_last_on={3})
    assert opt._lists is not None  # the direct path ran
    assert _same(ref_net, net)
    for p, q in zip(ref_net.parameters(), net.parameters()):
        for key in ("step", "exp_avg", "exp_avg_sq"):
            assert torch.equal(ref.state[p][key], opt.state[q][key])
    # a second optimizer loads the state (as a resumed run does) and carries on identically
    net2 = _net()
    net2.load_state_dict(net.state_dict())
    opt2 = Adam(net2.parameters(), lr=1e-2, weight_decay=1e-3, fused=True)
    opt2.load_state_dict(opt.state_dict())
    _steps(ref_net, ref, range(6, 10))
    _steps(net2, opt2, range(6, 10))
    assert _same(ref_net, net2)
    assert not _same(_net(), net2)  # training moved the weights
