"""crossglue: cross-species single-nucleus RNA + ATAC integration with a GLUE-style model."""

__version__ = "0.1.0"
