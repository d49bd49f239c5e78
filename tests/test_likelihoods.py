"""Likelihoods against scipy, KL against Monte Carlo, samples against their moments."""


import numpy as np
import pytest
import torch
from scipy import stats

from biovae.engine import likelihoods
from biovae.engine.module import SampleAndKL, kl_normal, reparameterize, sample_and_kl
from biovae.errors import BiovaeError

rng = np.random.default_rng(7)


def test_kl_closed_form_matches_monte_carlo():
    mean = torch.tensor(rng.normal(size=(4, 3)), dtype=torch.float64)
    logvar = torch.tensor(rng.normal(scale=1.5, size=(4, 3)), dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    z = torch.stack([reparameterize(mean, logvar, g) for _ in range(100_000)])
    q = torch.distributions.Normal(mean, torch.exp(0.5 * logvar))
    p = torch.distributions.Normal(0.0, 1.0)
    mc = (q.log_prob(z) - p.log_prob(z)).sum(-1).mean(0)
    exact = kl_normal(mean, logvar)
    assert torch.allclose(mc, exact, rtol=0.03, atol=0.03), (mc, exact)
    # and a posterior narrower than the prior (sigma < 1) is representable: no softplus floor
    assert kl_normal(torch.zeros(1, 1), torch.full((1, 1), -4.0)).item() > 1.0


def test_fused_sample_and_kl_matches_the_separate_terms_values_and_gradients():
    mean = torch.tensor(rng.normal(size=(5, 4)), dtype=torch.float64, requires_grad=True)
    logvar = torch.tensor(rng.normal(scale=1.5, size=(5, 4)), dtype=torch.float64, requires_grad=True)
    eps = torch.tensor(rng.normal(size=(5, 4)), dtype=torch.float64)
    z, kl = SampleAndKL.apply(mean, logvar, eps)
    assert torch.allclose(z, mean + torch.exp(0.5 * logvar) * eps)
    assert torch.allclose(kl, kl_normal(mean, logvar))
    assert torch.autograd.gradcheck(lambda m, lv: SampleAndKL.apply(m, lv, eps), (mean, logvar))
    # the same draw of eps as reparameterize under the same seed
    torch.manual_seed(3)
    z1, _ = sample_and_kl(mean, logvar)
    torch.manual_seed(3)
    assert torch.allclose(z1, reparameterize(mean, logvar))


def _params(n=6, d=5):
    raw = torch.tensor(rng.normal(size=(n, d)), dtype=torch.float64)
    lib = torch.tensor(rng.uniform(50, 500, size=(n, 1)), dtype=torch.float64)
    return raw, lib


def test_gaussian_and_normal_match_scipy():
    raw, _ = _params()
    x = raw + torch.tensor(rng.normal(size=raw.shape))
    g = likelihoods.get("gaussian")(5)
    want = stats.norm(raw.numpy(), 1.0).logpdf(x.numpy()).sum(1)
    assert np.allclose(g.log_prob(x, raw).numpy(), want)
    nrm = likelihoods.get("normal")(5).double()
    with torch.no_grad():
        nrm.log_scale.copy_(torch.tensor(rng.normal(size=5)))
    want = stats.norm(raw.numpy(), np.exp(nrm.log_scale.detach().numpy())).logpdf(x.numpy()).sum(1)
    assert np.allclose(nrm.log_prob(x, raw).detach().numpy(), want)


def test_bernoulli_matches_scipy_and_bce():
    raw, _ = _params()
    x = torch.tensor(rng.integers(0, 2, raw.shape), dtype=torch.float64)
    b = likelihoods.get("bernoulli")(5)
    p = torch.sigmoid(raw).numpy()
    assert np.allclose(b.log_prob(x, raw).numpy(), stats.bernoulli(p).logpmf(x.numpy()).sum(1))
    bce = torch.nn.functional.binary_cross_entropy_with_logits(raw, x, reduction="none").sum(1)
    assert np.allclose(-b.log_prob(x, raw).numpy(), bce.numpy())


def test_poisson_nb_zinb_match_scipy_with_library():
    raw, lib = _params()
    mu = (lib * torch.softmax(raw, -1)).numpy()
    x = torch.tensor(rng.poisson(mu), dtype=torch.float64)
    x[0, :2] = 0
    pois = likelihoods.get("poisson")(5)
    assert np.allclose(pois.log_prob(x, raw, lib).numpy(), stats.poisson(mu).logpmf(x.numpy()).sum(1))

    nb = likelihoods.get("nb")(5).double()
    with torch.no_grad():
        nb.log_theta.copy_(torch.tensor(rng.normal(size=5)))
    theta = np.exp(nb.log_theta.detach().numpy())
    want = stats.nbinom(theta, theta / (theta + mu)).logpmf(x.numpy()).sum(1)
    assert np.allclose(nb.log_prob(x, raw, lib).detach().numpy(), want, atol=1e-6)

    zinb = likelihoods.get("zinb")(5).double()
    with torch.no_grad():
        zinb.log_theta.copy_(nb.log_theta)
    zl = torch.tensor(rng.normal(size=raw.shape))
    pi = torch.sigmoid(zl).numpy()
    base = stats.nbinom(theta, theta / (theta + mu)).pmf(x.numpy())
    want = np.log(np.where(x.numpy() == 0, pi + (1 - pi) * base, (1 - pi) * base)).sum(1)
    got = zinb.log_prob(x, torch.cat([raw, zl], dim=1), lib).detach().numpy()
    assert np.allclose(got, want, atol=1e-6)


def test_nb_gradients_match_torch_negative_binomial():
    """The per-feature form (biovae.engine.likelihoods.counts.NegBinomial) gives torch's values and
    gradients, for the decoder output and for the dispersion, at large and zero counts."""
    raw, lib = _params()
    raw = raw.clone().requires_grad_(True)
    x = torch.tensor(rng.poisson(50, size=raw.shape), dtype=torch.float64)
    x[1] = 0
    nb = likelihoods.get("nb")(5).double()
    with torch.no_grad():
        nb.log_theta.copy_(torch.tensor(rng.normal(size=5)))
    ours = nb.log_prob(x, raw, lib).sum()
    mu = lib * torch.softmax(raw, -1)
    theta = torch.exp(nb.log_theta).expand_as(mu)
    ref = torch.distributions.NegativeBinomial(theta, logits=torch.log(mu) - torch.log(theta)).log_prob(x).sum()
    assert torch.allclose(ours, ref, rtol=1e-7)
    for a, b in zip(torch.autograd.grad(ours, [raw, nb.log_theta]), torch.autograd.grad(ref, [raw, nb.log_theta])):
        assert torch.allclose(a, b, rtol=1e-6, atol=1e-8)


def test_zinb_gradients_match_the_direct_mixture_formula():
    """The softplus form of the zero-inflated density has the gradients of log(pi + (1 - pi) p0)
    at zeros and log(1 - pi) + log p(x) elsewhere, written out with torch's NegativeBinomial."""
    raw, lib = _params()
    x = torch.tensor(rng.poisson(2, size=raw.shape), dtype=torch.float64)
    x[0] = 0
    zinb = likelihoods.get("zinb")(5).double()
    with torch.no_grad():
        zinb.log_theta.copy_(torch.tensor(rng.normal(size=5)))
    out = torch.cat([raw, torch.tensor(rng.normal(scale=2.0, size=raw.shape))], dim=1).requires_grad_(True)
    ours = zinb.log_prob(x, out, lib).sum()
    mean_raw, zl = out[:, :5], out[:, 5:]
    mu = lib * torch.softmax(mean_raw, -1)
    theta = torch.exp(zinb.log_theta).expand_as(mu)
    base = torch.distributions.NegativeBinomial(theta, logits=torch.log(mu) - torch.log(theta)).log_prob(x)
    log_pi, log_keep = torch.nn.functional.logsigmoid(zl), torch.nn.functional.logsigmoid(-zl)
    ref = torch.where(x == 0, torch.logaddexp(log_pi, log_keep + base), log_keep + base).sum()
    assert torch.allclose(ours, ref, rtol=1e-7)
    for a, b in zip(torch.autograd.grad(ours, [out, zinb.log_theta]), torch.autograd.grad(ref, [out, zinb.log_theta])):
        assert torch.allclose(a, b, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name", ["nb", "zinb"])
def test_count_samples_have_the_right_mean_and_variance(name):
    torch.manual_seed(0)
    lik = likelihoods.get(name)(3)
    with torch.no_grad():
        lik.log_theta.copy_(torch.log(torch.tensor([0.5, 2.0, 10.0])))
    raw = torch.log(torch.tensor([[5.0, 20.0, 50.0]]))
    if name == "zinb":
        raw = torch.cat([raw, torch.tensor([[-1.0, 0.0, 1.0]])], dim=1)
    dist = lik.distribution(raw.expand(200_000, -1))
    draws = dist.sample()
    assert torch.allclose(draws.mean(0), dist.mean[0], rtol=0.03)
    assert torch.allclose(draws.var(0), dist.variance[0], rtol=0.06)
    mu, theta = torch.tensor([5.0, 20.0, 50.0]), torch.tensor([0.5, 2.0, 10.0])
    if name == "nb":  # Var = mu + mu^2 / theta
        assert torch.allclose(dist.variance[0], mu + mu**2 / theta, rtol=1e-4)


def test_unknown_likelihood_names_the_choices():
    with pytest.raises(BiovaeError, match="unknown likelihood 'gamma'.*bernoulli"):
        likelihoods.get("gamma")


def test_count_likelihood_refuses_negative_and_fractional_data():
    nb = likelihoods.get("nb")(2)
    with pytest.raises(BiovaeError, match="negative"):
        nb.check(np.array([[1.0, -2.0]]), "x")
    with pytest.raises(BiovaeError, match="non-integer"):
        nb.check(np.array([[1.5, 2.0]]), "x")
    with pytest.raises(BiovaeError, match=r"outside \[0, 1\]"):
        likelihoods.get("bernoulli")(2).check(np.array([[0.5, 1.2]]), "x")


def test_hurdle_density_and_samples():
    lik = likelihoods.get("hurdle")(3).double()
    with torch.no_grad():
        lik.log_scale.copy_(torch.log(torch.tensor([0.5, 1.0, 2.0])))
    loc = torch.tensor([[1.0, 2.0, 3.0]], dtype=torch.float64)
    zl = torch.tensor([[-1.0, 0.0, 2.0]], dtype=torch.float64)
    raw = torch.cat([loc, zl], dim=1)
    x = torch.tensor([[0.0, 2.5, 0.0]], dtype=torch.float64)
    pi = torch.sigmoid(zl).numpy()[0]
    want = np.log(pi[0]) + np.log(1 - pi[1]) + stats.norm(2.0, 1.0).logpdf(2.5) + np.log(pi[2])
    assert np.isclose(lik.log_prob(x, raw).item(), want)
    dist = lik.distribution(raw.expand(200_000, -1))
    draws = dist.sample()
    assert np.allclose((draws == 0).double().mean(0).numpy(), pi, atol=0.01)
    assert torch.allclose(draws.mean(0), dist.mean[0], rtol=0.03)


def test_count_training_objective_agrees_with_its_distribution_objects_and_gradcheck():
    """nb / zinb training objective (count_kernel.count_log_prob_raw) against the same
    likelihood's distribution object: values, and the density's gradients by finite differences."""
    from biovae.engine.likelihoods.count_kernel import count_log_density

    raw, lib = _params(n=7, d=6)
    x = torch.tensor(rng.poisson(3, size=raw.shape), dtype=torch.float64)
    x[2] = 0
    x[3, 1] = 40
    for name in ("nb", "zinb"):
        lik = likelihoods.get(name)(6).double()
        with torch.no_grad():
            lik.log_theta.copy_(torch.tensor(rng.normal(size=6)))
        out = torch.cat([raw] + ([torch.tensor(rng.normal(scale=2.0, size=raw.shape))] if name == "zinb" else []), 1)
        assert torch.allclose(lik.log_prob(x, out, lib), lik.distribution(out, lib).log_prob(x).sum(-1), rtol=1e-10)
        mu = (lib * torch.softmax(raw, -1)).requires_grad_(True)
        zl = out[:, 6:].clone().requires_grad_(True) if name == "zinb" else None
        theta = lik.log_theta.detach().clone().requires_grad_(True)
        args = (mu, theta) + ((zl,) if zl is not None else ())
        assert torch.autograd.gradcheck(lambda *a: count_log_density(x, *a).sum(-1), args)


def _kernel_case(gen, f, zinb, with_library, b=40):
    x = torch.poisson(torch.rand(b, f, generator=gen) * 3, generator=gen) * (torch.rand(b, f, generator=gen) < 0.4)
    x[1] = 0.0
    x[2, : min(f, 30)] = torch.arange(min(f, 30), dtype=torch.float32) * 10
    raw = torch.randn(b, (2 if zinb else 1) * f, generator=gen) * 1.5
    if not with_library:
        raw[0, :3] = 25.0
    lt = torch.randn(f, generator=gen) * 3.0
    lib = x.sum(1, keepdim=True) if with_library else None
    return x, raw, lt, lib, torch.rand(b, generator=gen) + 0.5


def _objective(x, raw, lt, lib, grad, zinb, dtype):
    from biovae.engine.likelihoods.count_kernel import count_log_prob_raw

    r, t = raw.to(dtype).requires_grad_(True), lt.to(dtype).requires_grad_(True)
    out = count_log_prob_raw(x.to(dtype), r, t, None if lib is None else lib.to(dtype), zinb)
    return out.grad_fn, [out.detach(), *torch.autograd.grad(out, (r, t), grad.to(dtype))]


def test_c_kernel_from_decoder_output_matches_float64(monkeypatch):
    """count_log_prob_raw, the training objective from the decoder's raw output with the mean
    (library x softmax, or exp without a library) inside the C kernel: values and gradients
    (raw and log-dispersion) match the float64 PyTorch reference, and are no further from it than
    the float32 reference, for NB and ZINB, with an empty cell, exp clamped above 20, counts up to
    300, inverse dispersions over 10^-4 to 10^4, and feature counts that are and are not multiples
    of the AVX-512 gather's 16. With BIOVAE_CPU_KERNELS=off (a monkeypatch) the reference runs."""
    from biovae.engine import backends

    if backends.kernel_for("count_density", torch.zeros(1)) is None:
        pytest.skip("no C compiler here: the PyTorch reference is what runs")
    gen = torch.Generator().manual_seed(5)
    for f in (7, 301, 765):
        for zinb in (False, True):
            for with_library in (True, False):
                case = _kernel_case(gen, f, zinb, with_library)
                fn, got = _objective(*case, zinb, torch.float32)
                assert type(fn).__name__ == "CountLogProbKernelBackward"
                _, ref = _objective(*case, zinb, torch.float64)
                with monkeypatch.context() as m:
                    m.setenv("BIOVAE_CPU_KERNELS", "off")
                    fn32, eager = _objective(*case, zinb, torch.float32)
                assert type(fn32).__name__ != "CountLogProbKernelBackward"
                for a, e, r in zip(got, eager, ref):
                    err, bar = (a.double() - r).abs().max(), (e.double() - r).abs().max()
                    assert err <= max(1.5 * bar, 2e-5 * r.abs().max() + 1e-6), (f, zinb, with_library, err, bar)


@pytest.mark.parametrize("name", ["hurdle_cell", "hurdle"])
def test_hurdle_training_objective_runs_the_kernel_and_matches_its_reference(monkeypatch, name):
    """The hurdles' log_prob in float32 runs the C kernel (engine.likelihoods.hurdle_kernel) where
    the kernels are on, and gives the values and gradients of the float64 autograd reference (the
    distribution's log_prob); with BIOVAE_CPU_KERNELS=off the reference runs. Each instruction-set
    build is checked on its own in tests/test_kernels.py."""
    from biovae.engine import backends

    if backends.kernel_for("hurdle_density", torch.zeros(1)) is None:
        pytest.skip("no C compiler here: the PyTorch reference is what runs")
    lik = likelihoods.get(name)(5)
    x = torch.tensor(np.where(rng.random((9, 5)) < 0.4, 0.0, rng.gamma(2.0, 1.0, (9, 5))), dtype=torch.float32)
    base = torch.tensor(rng.normal(scale=2.0, size=(9, 5 * lik.n_params)), dtype=torch.float32)
    up = torch.tensor(rng.random(9) + 0.5)
    found = {}
    for mode, dtype in (("auto", torch.float32), ("off", torch.float32), ("auto", torch.float64)):
        monkeypatch.setenv("BIOVAE_CPU_KERNELS", mode)
        lik = lik.to(dtype)
        raw = base.to(dtype).requires_grad_(True)
        out = lik.log_prob(x.to(dtype), raw)
        assert (out.grad_fn.name() == "HurdleLogProbKernelBackward") == (mode == "auto" and dtype == torch.float32)
        params = [raw, *lik.parameters()]
        found[mode, dtype] = [out.detach(), *torch.autograd.grad(out, params, up.to(dtype))]
    for a, b in zip(found["auto", torch.float32], found["auto", torch.float64]):
        assert torch.allclose(a.double(), b, rtol=1e-5, atol=1e-5)
