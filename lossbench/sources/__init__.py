"""Data sources, one module per URI scheme. ``load_dataset(uri)`` is the entry point."""

from lossbench.sources import segmentation, sklearn_bundled, synthetic, table  # noqa: F401  (register the schemes)
from lossbench.sources.base import SOURCES, Dataset, encode_labels, load_dataset

__all__ = ["SOURCES", "Dataset", "encode_labels", "load_dataset"]
