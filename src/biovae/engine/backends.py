"""Every switch of the engine's fast CPU code, and every C prototype, in one place.

The engine's fast operations (engine.norm_act.BatchNormReluDropout, engine.dropout.Dropout, the
count likelihoods' density, engine.likelihoods.count_kernel, and the hurdle likelihoods',
engine.likelihoods.hurdle_kernel) each have a PyTorch reference and a C kernel. A fast operation
runs its kernel when `kernel_for(name, tensor)` gives a library: the kernels are on, the tensor is
a float32 CPU tensor, no autocast is active, and the kernel built.

Switches:
  BIOVAE_CPU_KERNELS=off   every fast operation runs its PyTorch reference (read at each call,
                           so tests and benchmarks switch it with the environment).
  BIOVAE_KERNEL_ISA=NAME   load the kernels built for one instruction set: "avx512", "avx2" or
                           "baseline" (x86-64 without vector extensions; the only one on other
                           CPUs). Unset or "auto": the widest one this CPU runs. Naming one this
                           CPU cannot run is an error. `library(name, isa)` loads any one
                           directly (tests run every one the CPU supports).
  BIOVAE_CACHE=DIR         where the builds are cached (engine.kernel_build; default
                           ~/.cache/biovae).

Each kernel is compiled once per instruction set (kernel_build), with the flags in ISA_FLAGS, so
each build is an ordinary library that a test can load and check on its own.
"""

from __future__ import annotations

import ctypes
import os
import platform
import warnings
from functools import cache

import torch

from biovae.engine import kernel_build
from biovae.errors import BiovaeError

ENV_KERNELS = "BIOVAE_CPU_KERNELS"
ENV_ISA = "BIOVAE_KERNEL_ISA"
ISA_FLAGS: dict[str, tuple[str, ...]] = {
    "avx512": ("-mavx512f", "-mavx2", "-mfma", "-mpopcnt"),
    "avx2": ("-mavx2", "-mfma"),
    "baseline": (),
}

_P, _I, _F = ctypes.c_void_p, ctypes.c_int64, ctypes.c_float
_U64, _U32 = ctypes.c_uint64, ctypes.c_uint32
# kernel -> entry point -> (restype, argtypes); every non-static function of kernels/NAME.c is
# here (tests/test_kernels.py checks the sources against this table)
PROTOTYPES: dict[str, dict[str, tuple[object, list]]] = {
    "count_density": {
        "count_work_size": (_I, [_I]),
        "count_forward_raw": (None, [_P, _P, _P, _P, _I, _P, _P, _P, _I, _I]),
        "count_backward_raw": (None, [_P, _P, _P, _P, _P, _P, _I, _P, _P, _P, _I, _I]),
    },
    "hurdle_density": {
        "hurdle_work_size": (_I, [_I]),
        "hurdle_forward": (None, [_P, _P, _P, _F, _I, _P, _P, _P, _I, _I]),
    },
    "dropout": {
        "dropout_apply": (None, [_P, _P, _I, _U64, _U32, _F]),
    },
    "batch_norm": {
        "bnrd_forward": (None, [_P, _P, _P, _P, _P, _P, _P, _P, _P, _F, _I, _I, _F, _U64, _U32, _F, _I]),
        "bnrd_backward": (None, [_P, _P, _P, _P, _P, _P, _P, _P, _P, _I, _I, _F]),
    },
}

def kernels_enabled() -> bool:
    """False when BIOVAE_CPU_KERNELS=off (or 0/no/false)."""
    return os.environ.get(ENV_KERNELS, "auto").strip().lower() not in ("off", "0", "no", "false")


def cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    # elsewhere: what PyTorch detected for its own kernels
    cap = torch.backends.cpu.get_cpu_capability()
    return {"avx512f", "avx2", "fma"} if cap.startswith("AVX512") else {"avx2", "fma"} if cap == "AVX2" else set()


@cache
def supported_isas() -> tuple[str, ...]:
    """The instruction sets whose kernel builds this CPU runs, widest first."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return ("baseline",)
    flags = cpu_flags()
    out = []
    if {"avx512f", "avx2", "fma"} <= flags:
        out.append("avx512")
    if {"avx2", "fma"} <= flags:
        out.append("avx2")
    return (*out, "baseline")


def isa() -> str:
    """The instruction set whose kernels load in this process (BIOVAE_KERNEL_ISA, else the widest)."""
    asked = os.environ.get(ENV_ISA, "auto").strip().lower() or "auto"
    if asked == "auto":
        return supported_isas()[0]
    if asked not in ISA_FLAGS:
        raise BiovaeError(f"{ENV_ISA}={asked!r} is not an instruction set", f"use one of auto, {', '.join(ISA_FLAGS)}")
    if asked not in supported_isas():
        raise BiovaeError(f"{ENV_ISA}={asked!r}, but this CPU runs {', '.join(supported_isas())} only",
                          "unset it or name one of those")
    return asked


@cache
def library(name: str, which: str) -> ctypes.CDLL | None:
    """Kernel NAME built for instruction set `which`, with every prototype declared; None (and one
    warning) where it cannot be built here."""
    flags = ISA_FLAGS[which] if platform.machine().lower() in ("x86_64", "amd64") else ()
    try:
        lib = ctypes.CDLL(str(kernel_build.build(name, flags, which)))
    except OSError as exc:
        warnings.warn(f"biovae: the C kernel {name!r} is not available ({exc}); using the slower PyTorch code. "
                      f"Install a C compiler (gcc or clang) for it, or set {ENV_KERNELS}=off to silence this.",
                      RuntimeWarning, stacklevel=2)
        return None
    for entry, (restype, argtypes) in PROTOTYPES[name].items():
        fn = getattr(lib, entry)
        fn.restype, fn.argtypes = restype, argtypes
    return lib


def kernel_for(name: str, *tensors: torch.Tensor) -> ctypes.CDLL | None:
    """Kernel NAME where the kernels are on and every tensor is float32 on the CPU outside
    autocast; else None (run the PyTorch reference)."""
    if not kernels_enabled() or torch.is_autocast_enabled("cpu"):
        return None
    if not all(t.device.type == "cpu" and t.dtype == torch.float32 for t in tensors):
        return None
    return library(name, isa())


def status() -> dict:
    """What this process runs: kernels on or off, the instruction set, and which kernels built."""
    on = kernels_enabled()
    return {"kernels": on, "isa": isa() if on else None, "supported_isas": list(supported_isas()),
            "built": {name: on and library(name, isa()) is not None for name in PROTOTYPES}}
