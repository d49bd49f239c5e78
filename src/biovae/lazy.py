"""Lazy re-exports for package namespaces (biovae.io, biovae.pl): a name is imported on first use,
so `import biovae.io` does not pull in torch, anndata or matplotlib."""

from __future__ import annotations

import importlib


def exports(package: str, names: dict[str, tuple[str, str]]):
    """A module-level __getattr__ resolving names[attr] = (module, attribute) on first use."""

    def __getattr__(attr: str):
        if attr not in names:
            raise AttributeError(f"module {package!r} has no attribute {attr!r}")
        module, target = names[attr]
        return getattr(importlib.import_module(module), target)

    return __getattr__
