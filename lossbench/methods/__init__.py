"""Training methods (what a step does). ``plain`` is the default."""

# Importing the family modules registers their methods.
from lossbench.methods import (  # noqa: F401  (register the methods)
    aggregate,
    calibration,
    distillation,
    hyperbolic,
    meta,
    metric,
    mixup,
    noprop,
    segmentation,
    symface,
)
from lossbench.methods.base import METHODS, Batch, Method, MethodContext, MethodInfo, Plain, StepState, register_method

__all__ = ["METHODS", "Batch", "Method", "MethodContext", "MethodInfo", "Plain", "StepState", "register_method"]
