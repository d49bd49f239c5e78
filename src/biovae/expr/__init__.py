"""Gene-expression workflow: fit a (conditional) VAE on AnnData, generate realistic cells per label.

    model = biovae.expr.fit(adata, labels="bulk_labels", layer="raw")
    new = model.generate(100, labels={"CD14+ Monocyte": 100}, method="mixture")
"""

from biovae.expr.fit import fit
from biovae.expr.model import ExpressionModel

load = ExpressionModel.load

__all__ = ["fit", "load", "ExpressionModel"]
