"""GLUE-style integration of RNA and ATAC domains across species (see docs/MODEL.md).

    from crossglue.model import GlueModel
    model = GlueModel.setup({"human:rna": rna, "human:atac": atac}, edges)
    model.fit()
    u = model.encode_cells("human:rna"); v = model.encode_features()
    model.save("model.pt"); GlueModel.load("model.pt").encode_cells(adata, domain="human:rna")

The names below load on first use, so that the torch-free parts (``crossglue.model.inputs``)
import without torch (the analysis rules' environment has none).
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "DomainSpec": "crossglue.model.data",
    "GlueModel": "crossglue.model.api",
    "TrainConfig": "crossglue.model.trainer",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'crossglue.model' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
