"""Build-on-first-use C kernels for the CPU, loaded with ctypes (no torch headers, no ninja).

    lib = kernel("count_density")      # ctypes.CDLL, or None where no C compiler works here

The source lies beside this file in kernels/NAME.c. It is compiled once per machine with the C
compiler ($CC, else cc) into a cache folder ($BIOVAE_CACHE, else $XDG_CACHE_HOME/biovae, else
~/.cache/biovae; a temporary folder if none is writable), under a name that hashes the source,
the flags and the compiler, so an edited kernel or another compiler builds afresh. The library
is written to a temporary name and renamed, so parallel processes (a DDP run) never load half a
file. Environment BIOVAE_CPU_KERNELS=off keeps every caller on its PyTorch code path (the
kernels' callers test both). Where the build fails, callers fall back with one warning.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import subprocess
import tempfile
import warnings
from functools import cache
from pathlib import Path

# -ffast-math for compiling only: it lets the loops call glibc's vector logf/expf. Given when
# linking, gcc adds crtfastmath.o, whose start-up code flushes subnormal floats to zero for the
# whole process (numpy, torch and all) once the library is loaded; so the link is a second step.
COMPILE = ("-O3", "-ffast-math", "-fopenmp-simd", "-fPIC", "-std=c11", "-c")
LINK = ("-shared",)
FLAGS = COMPILE + LINK
SOURCES = Path(__file__).with_name("kernels")


class _CompileError(OSError):
    """The compiler ran and refused the source: another cache folder would not help."""


def enabled() -> bool:
    """False when BIOVAE_CPU_KERNELS=off (or 0/no/false)."""
    return os.environ.get("BIOVAE_CPU_KERNELS", "auto").strip().lower() not in ("off", "0", "no", "false")


def _cache_dirs() -> list[Path]:
    base = os.environ.get("BIOVAE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "biovae")
    return [Path(base) / "kernels", Path(tempfile.gettempdir()) / f"biovae-kernels-{os.getuid()}"]


def _compiler_id(cc: str) -> str:
    try:
        return subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return ""


def _build(name: str) -> Path:
    source = SOURCES / f"{name}.c"
    cc = os.environ.get("CC", "cc")
    version = _compiler_id(cc)
    if not version:
        raise OSError(f"no working C compiler ({cc} --version failed)")
    digest = hashlib.sha256(source.read_bytes() + " ".join(FLAGS).encode() + version.encode()).hexdigest()[:16]
    problems = []
    for folder in _cache_dirs():
        target = folder / f"{name}-{digest}.so"
        if target.is_file():
            return target
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(suffix=".so", dir=folder)
            os.close(fd)
            obj = tmp[:-3] + ".o"
            for step in ([cc, *COMPILE, str(source), "-o", obj], [cc, *LINK, obj, "-o", tmp, "-lm"]):
                done = subprocess.run(step, capture_output=True, text=True, timeout=300)
                if done.returncode != 0:
                    for leftover in (tmp, obj):
                        Path(leftover).unlink(missing_ok=True)
                    raise _CompileError(f"{cc} failed on {source.name}: {done.stderr.strip()[-500:]}")
            Path(obj).unlink()
            os.replace(tmp, target)
            return target
        except _CompileError as exc:
            problems.append(str(exc))
            break
        except OSError as exc:  # this folder is not writable: try the next
            problems.append(str(exc))
    raise OSError("; ".join(problems))


@cache
def kernel(name: str) -> ctypes.CDLL | None:
    """The compiled kernel library NAME, or None (kernels switched off, or the build failed: then
    one warning says why and the caller's PyTorch path is used)."""
    if not enabled():
        return None
    try:
        return ctypes.CDLL(str(_build(name)))
    except (OSError, subprocess.SubprocessError) as exc:
        warnings.warn(f"biovae: the C kernel {name!r} is not available ({exc}); using the slower PyTorch code. "
                      "Install a C compiler (gcc or clang) for it, or set BIOVAE_CPU_KERNELS=off to silence this.",
                      RuntimeWarning, stacklevel=2)
        return None
