"""The `biovae` command line: a thin skin over the Python API.

Each workflow module here adds its subcommands with `register(subparsers)`; every handler parses
nothing itself beyond argparse and calls one API function. A BiovaeError (user error) becomes one
line on stderr and exit status 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import sys

from biovae import __version__
from biovae.errors import BiovaeError

# Commands whose parser is built from their own module alone: the others' imports (the expression
# workflow pulls in torch and anndata, ~250 MiB) would sit under `biovae bin`'s k-mer table at its
# memory peak (docs/binning.md, memory).
_LIGHT = {"bin": "biovae.cli.bin", "evaluate": "biovae.cli.bin"}
# modules that contribute subcommands, in the order shown by --help
_MODULES = ["biovae.cli.bin", "biovae.cli.expr", "biovae.cli.demo", "biovae.cli.images", "biovae.cli.explore"]


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser; with argv naming a command of _LIGHT, only that command's module is imported."""
    import importlib

    own = _LIGHT.get(argv[0]) if argv else None

    parser = argparse.ArgumentParser(
        prog="biovae",
        description="Variational autoencoders for biological data: bin metagenomic reads and contigs, "
        "generate gene-expression cells, explore latent spaces.",
    )
    parser.add_argument("--version", action="version", version=f"biovae {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _MODULES if own is None else [own]:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 0
    try:
        from biovae.cli.common import apply_runtime

        apply_runtime(args)
        args.handler(args)
    except BiovaeError as exc:
        print(f"biovae {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"biovae {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
