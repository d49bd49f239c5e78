"""What the workflows' settings dataclasses share (BinSettings, FitSettings, ImageSettings)."""

from __future__ import annotations

import dataclasses

from biovae.errors import BiovaeError


class Settings:
    """Mixin of a settings dataclass: a copy with changed fields, and a JSON-able dict."""

    def changed(self, **changes):
        """A copy with `changes` (field names) applied; an unknown name is a BiovaeError."""
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise BiovaeError(f"unknown {type(self).__name__} fields: {', '.join(unknown)}",
                              f"use fields of {type(self).__name__}: {', '.join(sorted(known))}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        """The fields as JSON-able values (tuples as lists)."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(self).items()}
