"""lossbench: benchmark loss functions with statistics you can trust."""

import logging
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("lossbench")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

# The library logs notes about the data; the CLI shows them once, in the driver. Without a handler of their
# own, worker processes would print every warning again for every trial (Python's last-resort handler).
logging.getLogger("lossbench").addHandler(logging.NullHandler())

__all__ = ["__version__"]
