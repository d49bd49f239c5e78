"""The C kernels behind the engine's fast operations (engine.backends): every instruction-set
build this CPU runs is built, loaded and checked against the PyTorch references; every entry point
has its prototype; the build cache and the fall-back without a compiler work."""

import ctypes
import os
import re
import shutil
import subprocess
import warnings

import numpy as np
import pytest
import torch

from biovae.engine import backends, kernel_build
from biovae.engine.dropout import HashDropout
from biovae.engine.likelihoods import get as get_likelihood
from biovae.engine.likelihoods.count_kernel import CountLogProbKernel, count_log_density, count_mean
from biovae.engine.likelihoods.hurdle import HURDLE_CELL_MIN_SCALE
from biovae.engine.likelihoods.hurdle_kernel import HurdleLogProbKernel
from biovae.engine.norm_act import BatchNormReluDropout, BatchNormReluDropoutKernel
from biovae.errors import BiovaeError

HAVE_CC = shutil.which(os.environ.get("CC", "cc")) is not None
needs_cc = pytest.mark.skipif(not HAVE_CC, reason="no C compiler here: the PyTorch references run")
RAN: set[tuple[str, str]] = set()  # (kernel, instruction set) checked in this session


def _lib(name, isa):
    if isa not in backends.supported_isas():
        pytest.skip(f"this CPU cannot run the {isa} build")
    lib = backends.library(name, isa)
    assert lib is not None, f"a C compiler is here, but {name} did not build for {isa}"
    RAN.add((name, isa))
    return lib


@needs_cc
@pytest.mark.parametrize("isa", list(backends.ISA_FLAGS))
def test_count_kernel_build_matches_the_float64_reference(isa):
    lib = _lib("count_density", isa)
    gen = torch.Generator().manual_seed(1)
    for f, zinb, with_library in ((7, False, True), (301, True, True), (48, True, False), (765, False, False)):
        x = torch.poisson(torch.rand(30, f, generator=gen) * 3, generator=gen) * (torch.rand(30, f, generator=gen) < 0.4)
        x[0] = 0.0
        x[1, : min(f, 30)] = torch.arange(min(f, 30), dtype=torch.float32) * 10
        raw = torch.randn(30, (2 if zinb else 1) * f, generator=gen)
        lt = torch.randn(f, generator=gen) * 2.0
        library = x.sum(1) if with_library else None
        grad = torch.rand(30, generator=gen) + 0.5
        r, t = raw.clone().requires_grad_(True), lt.clone().requires_grad_(True)
        got = CountLogProbKernel.apply(lib, x, r, t, library, zinb)
        got_grads = torch.autograd.grad(got, (r, t), grad)
        rd, td = raw.double().requires_grad_(True), lt.double().requires_grad_(True)
        mu = count_mean(rd[:, :f], None if library is None else library.double()[:, None])
        ref = count_log_density(x.double(), mu, td, rd[:, f:] if zinb else None).sum(-1)
        ref_grads = torch.autograd.grad(ref, (rd, td), grad.double())
        for a, b in zip([got, *got_grads], [ref, *ref_grads]):
            assert (a.double() - b).abs().max() <= 2e-5 * b.abs().max() + 1e-5, (isa, f, zinb, with_library)


@needs_cc
@pytest.mark.parametrize("isa", list(backends.ISA_FLAGS))
def test_hurdle_kernel_build_matches_the_float64_reference(isa):
    """hurdle_density for hurdle_cell and hurdle: values and gradients (decoder output and
    hurdle's log_scale) against the distribution's log_prob through autograd in float64, with
    zeros and non-zeros mixed, logits and raw scales out to +-30, feature counts that are and are
    not multiples of the vector width; and the pass without gradients gives the same values."""
    lib = _lib("hurdle_density", isa)
    gen = torch.Generator().manual_seed(3)
    for name, f in (("hurdle_cell", 7), ("hurdle_cell", 765), ("hurdle", 33), ("hurdle", 765)):
        cell = name == "hurdle_cell"
        lik = get_likelihood(name)(f).double()
        x = torch.randn(30, f, generator=gen) * 2 + 1
        x[torch.rand(30, f, generator=gen) < 0.6] = 0.0
        x[0] = 0.0
        raw = torch.randn(30, lik.n_params * f, generator=gen) * 2
        raw[1, : 3 * min(f, 10)] = torch.linspace(-30, 30, 3 * min(f, 10))
        ls = torch.randn(f, generator=gen) * 0.5
        grad = torch.rand(30, generator=gen) + 0.5
        r, t = raw.clone().requires_grad_(True), ls.clone().requires_grad_(True)
        got = HurdleLogProbKernel.apply(lib, x, r, torch.empty(0) if cell else t, HURDLE_CELL_MIN_SCALE, cell)
        got_grads = torch.autograd.grad(got, (r,) if cell else (r, t), grad)
        with torch.no_grad():
            lik.log_scale.copy_(ls.double()) if not cell else None
        rd = raw.double().requires_grad_(True)
        params = (rd,) if cell else (rd, lik.log_scale)
        ref = lik.distribution(rd).log_prob(x.double()).sum(-1)
        ref_grads = torch.autograd.grad(ref, params, grad.double())
        for a, b in zip([got, *got_grads], [ref, *ref_grads]):
            assert (a.double() - b).abs().max() <= 2e-5 * b.abs().max() + 1e-5, (isa, name, f)
        with torch.no_grad():
            plain = HurdleLogProbKernel.apply(lib, x, raw, torch.empty(0) if cell else ls, HURDLE_CELL_MIN_SCALE, cell)
        assert (plain.double() - ref.detach()).abs().max() <= 2e-5 * ref.abs().max() + 1e-5, (isa, name, f)


@needs_cc
@pytest.mark.parametrize("isa", list(backends.ISA_FLAGS))
def test_dropout_build_keeps_the_same_elements_on_every_instruction_set(isa):
    lib = _lib("dropout", isa)
    x = torch.rand(333, 77) + 0.5
    y = HashDropout.apply(lib, x, 12345, 0.3)
    kept = y != 0
    assert abs(kept.float().mean().item() - 0.7) < 0.01
    assert torch.allclose(y[kept], x[kept] / 0.7)
    # the mask is a pure function of (seed, index): the same as the baseline build's
    base = HashDropout.apply(_lib("dropout", "baseline"), x, 12345, 0.3)
    assert torch.equal(y, base)


@needs_cc
@pytest.mark.parametrize("isa", list(backends.ISA_FLAGS))
def test_batch_norm_build_matches_its_reference(isa):
    lib = _lib("batch_norm", isa)
    torch.manual_seed(0)
    h = torch.randn(50, 37) * 2 + 1
    layer = BatchNormReluDropout(37, 0.0).train()
    ref_layer = BatchNormReluDropout(37, 0.0).train()
    hk, hr = h.clone().requires_grad_(True), h.clone().requires_grad_(True)
    y = BatchNormReluDropoutKernel.apply(lib, hk, layer.weight, layer.bias, layer.running_mean, layer.running_var,
                                         0.1, 1e-5, 0, 0.0)
    ref = ref_layer.reference(hr)
    g = torch.randn_like(y)
    y.backward(g)
    ref.backward(g)
    assert torch.allclose(y, ref, atol=1e-5) and torch.allclose(hk.grad, hr.grad, atol=1e-5)
    assert torch.allclose(layer.weight.grad, ref_layer.weight.grad, atol=1e-4)
    assert torch.allclose(layer.running_var, ref_layer.running_var, atol=1e-6)


@needs_cc
def test_the_builds_that_ran_cover_what_this_cpu_runs():
    """Lists the builds checked on this machine; on an AVX2 CPU the baseline and AVX2 builds both
    ran (and AVX-512 where the CPU has it)."""
    for isa in backends.supported_isas():  # in case this test runs alone
        for name in backends.PROTOTYPES:
            _lib(name, isa)
    ran = sorted(RAN)
    print(f"\nkernel builds checked on this CPU ({', '.join(backends.supported_isas())}): {ran}")
    flags = backends.cpu_flags()
    assert all((name, "baseline") in RAN for name in backends.PROTOTYPES)
    if {"avx2", "fma"} <= flags:
        assert all((name, "avx2") in RAN for name in backends.PROTOTYPES)
    if {"avx512f", "avx2", "fma"} <= flags:
        assert all((name, "avx512") in RAN for name in backends.PROTOTYPES)


@needs_cc
def test_biovae_kernel_isa_forces_a_build(monkeypatch):
    for isa in backends.supported_isas():
        monkeypatch.setenv("BIOVAE_KERNEL_ISA", isa)
        assert backends.isa() == isa
        assert backends.kernel_for("count_density", torch.zeros(1)) is backends.library("count_density", isa)
    monkeypatch.setenv("BIOVAE_KERNEL_ISA", "sse9")
    with pytest.raises(BiovaeError, match="BIOVAE_KERNEL_ISA"):
        backends.isa()
    monkeypatch.setenv("BIOVAE_CPU_KERNELS", "off")
    assert backends.kernel_for("count_density", torch.zeros(1)) is None


def test_every_entry_point_has_a_prototype():
    """Every function kernels/NAME.c exports is in backends.PROTOTYPES (restype and argtypes), and
    nothing else is; the loaded library carries them."""
    for name, table in backends.PROTOTYPES.items():
        source = (kernel_build.SOURCES / f"{name}.c").read_text()
        exported = set(re.findall(r"^(?!static\b|INLINE\b)[A-Za-z_][\w \*]*?\b(\w+)\(", source, flags=re.M))
        assert exported == set(table), (name, exported ^ set(table))
        for entry, (restype, argtypes) in table.items():
            assert isinstance(argtypes, list) and argtypes, entry
        if HAVE_CC:
            lib = backends.library(name, "baseline")
            if shutil.which("nm"):  # what the built library exports, as the linker sees it
                path = kernel_build.build(name, (), "baseline")
                listed = subprocess.run(["nm", "-D", "--defined-only", str(path)], capture_output=True, text=True).stdout
                symbols = {line.split()[-1] for line in listed.splitlines() if " T " in line}
                assert symbols == set(table), (name, symbols ^ set(table))
            for entry, (restype, argtypes) in table.items():
                fn = getattr(lib, entry)
                assert fn.argtypes == argtypes and fn.restype == restype, entry
    assert {p.stem for p in kernel_build.SOURCES.glob("*.c")} == set(backends.PROTOTYPES)


@needs_cc
def test_kernel_build_caches_and_falls_back(tmp_path, monkeypatch):
    """A build goes once into the cache folder and is found there afterwards; without a working
    compiler there is no kernel (one warning) and the fast operations run their references;
    loading a kernel leaves the process's floating point alone."""
    monkeypatch.setenv("BIOVAE_CACHE", str(tmp_path / "cache"))
    built = kernel_build.build("count_density", (), "baseline")
    assert built.parent == tmp_path / "cache" / "kernels" and built.stat().st_size > 1000
    stamp = built.stat().st_mtime_ns
    assert kernel_build.build("count_density", (), "baseline") == built and built.stat().st_mtime_ns == stamp
    assert [p.name for p in built.parent.iterdir()] == [built.name]  # no temporary file left
    monkeypatch.setenv("CC", str(tmp_path / "no-such-compiler"))
    monkeypatch.setenv("BIOVAE_CACHE", str(tmp_path / "other"))
    backends.library.cache_clear()
    try:
        with pytest.warns(RuntimeWarning, match="C kernel 'count_density' is not available"):
            assert backends.library("count_density", "baseline") is None
    finally:
        backends.library.cache_clear()
        monkeypatch.undo()
    # a library linked with -ffast-math would flush subnormals to zero in the whole process
    ctypes.CDLL(str(built))
    tiny = np.array([1e-38], np.float32) / np.float32(100)
    assert tiny[0] > 0 and (torch.tensor([1e-38]) / 100).item() > 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert backends.library("count_density", backends.isa()) is not None
