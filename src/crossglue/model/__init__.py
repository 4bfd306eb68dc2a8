"""GLUE-style integration of RNA and ATAC domains across species (see docs/MODEL.md).

    from crossglue.model import DomainSpec, GlueModel
    specs = {"human:rna": DomainSpec("human", "rna", use_rep="X_pca", batch_key="sample"),
             "human:atac": DomainSpec("human", "atac", use_rep="X_lsi", nucleus_key="nucleus"), ...}
    model = GlueModel.from_anndata(domains, edges, specs, seed=0)
    model.fit(checkpoint_dir="ckpt", log_path="training_log.tsv", threads=1)
    u = model.encode_cells("human:rna"); v = model.encode_features()
    model.save("model.pt"); GlueModel.load("model.pt").encode_cells(adata, domain="human:rna")
"""

from crossglue.model.api import GlueModel
from crossglue.model.data import DomainSpec
from crossglue.model.trainer import TrainConfig

__all__ = ["DomainSpec", "GlueModel", "TrainConfig"]
