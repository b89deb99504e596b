"""Data sources, one module per URI scheme. ``load_dataset(uri)`` is the entry point."""

from lossbench.sources import (  # noqa: F401  (register the schemes)
    bundled,
    images,
    mnist1d,
    openml_source,
    river,
    segmentation,
    sklearn_bundled,
    synthetic,
    table,
)
from lossbench.sources.base import SOURCES, Dataset, encode_labels, load_dataset

__all__ = ["SOURCES", "Dataset", "encode_labels", "load_dataset"]
