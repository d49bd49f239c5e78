"""Reading and validating inputs, writing outputs atomically.

    biovae.io.read_fastx(path)                  FASTA/FASTQ, plain or gzip (from content)
    biovae.io.read_abundance(path, contig_ids)  VAMB-format abundance TSV
    biovae.io.read_expression(path)             h5ad / csv / mtx -> AnnData
    biovae.io.image_patches(image, mask, size=64)  one centred patch per labelled object

Imported lazily, so that each reader pulls in only what it needs.
"""

from biovae.lazy import exports

_NAMES = {
    "read_fastx": ("biovae.io.fastx", "read_fastx"),
    "read_abundance": ("biovae.io.abundance", "read_abundance"),
    "read_expression": ("biovae.io.expression", "read_expression"),
    "write_expression": ("biovae.io.expression", "write_expression"),
    "image_patches": ("biovae.io.images", "image_patches"),
    "read_truth": ("biovae.io.bins", "read_truth"),
}

__all__ = sorted(_NAMES)
__getattr__ = exports("biovae.io", _NAMES)
