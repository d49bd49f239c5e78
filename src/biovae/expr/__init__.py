"""Gene-expression workflow: fit a (conditional) VAE on AnnData, generate realistic cells per label.

    model = biovae.expr.fit(adata, labels="bulk_labels", layer="raw")
    new = model.generate(100, labels={"CD14+ Monocyte": 100}, method="mixture")
    summary = biovae.expr.run("cells.h5ad", "model", FitSettings(labels="cell_type"))  # as `biovae fit`
"""

from biovae.expr.fit import fit
from biovae.expr.model import ExpressionModel
from biovae.expr.settings import FitSettings
from biovae.expr.workflow import run

load = ExpressionModel.load

__all__ = ["fit", "run", "load", "ExpressionModel", "FitSettings"]
