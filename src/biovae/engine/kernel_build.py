"""Build-on-first-use C kernels for the CPU (no torch headers, no ninja): `build(name, flags)`
compiles kernels/NAME.c with the C compiler ($CC, else cc) and returns the shared library's path.
biovae.engine.backends decides which kernels load, for which instruction set, and declares their
prototypes.

The library goes to a cache folder ($BIOVAE_CACHE, else $XDG_CACHE_HOME/biovae, else
~/.cache/biovae; a temporary folder if none is writable), under a name that hashes the sources
(the .c file and the headers beside it), the flags and the compiler, so an edited kernel or
another compiler builds afresh. It is written to a temporary name and renamed, so parallel
processes (a DDP run) never load half a file.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
from pathlib import Path

# -ffast-math for compiling only: it lets the loops call glibc's vector logf/expf. Given when
# linking, gcc adds crtfastmath.o, whose start-up code flushes subnormal floats to zero for the
# whole process (numpy, torch and all) once the library is loaded; so the link is a second step.
COMPILE = ("-O3", "-ffast-math", "-fopenmp-simd", "-fPIC", "-std=c11", "-c")
LINK = ("-shared",)
SOURCES = Path(__file__).with_name("kernels")


class CompileError(OSError):
    """The compiler ran and refused the source: another cache folder would not help."""


def cache_dirs() -> list[Path]:
    base = os.environ.get("BIOVAE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "biovae")
    return [Path(base) / "kernels", Path(tempfile.gettempdir()) / f"biovae-kernels-{os.getuid()}"]


def compiler_id(cc: str) -> str:
    try:
        return subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return ""


def source_digest(name: str, flags: tuple[str, ...], version: str) -> str:
    h = hashlib.sha256((SOURCES / f"{name}.c").read_bytes())
    for header in sorted(SOURCES.glob("*.h")):
        h.update(header.read_bytes())
    h.update(" ".join(COMPILE + flags + LINK).encode() + version.encode())
    return h.hexdigest()[:16]


def build(name: str, flags: tuple[str, ...] = (), tag: str = "") -> Path:
    """The path of kernels/NAME.c compiled with the extra `flags` (e.g. ("-mavx2", "-mfma")),
    building it where the cache has none. `tag` goes into the file name (the instruction set).
    Raises OSError where no compiler works or the source does not compile."""
    source = SOURCES / f"{name}.c"
    cc = os.environ.get("CC", "cc")
    version = compiler_id(cc)
    if not version:
        raise OSError(f"no working C compiler ({cc} --version failed)")
    stem = f"{name}-{tag}-" if tag else f"{name}-"
    stem += source_digest(name, flags, version)
    problems = []
    for folder in cache_dirs():
        target = folder / f"{stem}.so"
        if target.is_file():
            return target
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(suffix=".so", dir=folder)
            os.close(fd)
            obj = tmp[:-3] + ".o"
            steps = ([cc, *COMPILE, *flags, f"-I{SOURCES}", str(source), "-o", obj], [cc, *LINK, obj, "-o", tmp, "-lm"])
            for step in steps:
                done = subprocess.run(step, capture_output=True, text=True, timeout=300)
                if done.returncode != 0:
                    for leftover in (tmp, obj):
                        Path(leftover).unlink(missing_ok=True)
                    raise CompileError(f"{cc} failed on {source.name}: {done.stderr.strip()[-500:]}")
            Path(obj).unlink()
            os.replace(tmp, target)
            return target
        except CompileError as exc:
            problems.append(str(exc))
            break
        except OSError as exc:  # this folder is not writable: try the next
            problems.append(str(exc))
    raise OSError("; ".join(problems))
