"""Training methods (what a step does). ``plain`` is the default."""

# Importing the family modules registers their methods.
from lossbench.methods import aggregate, calibration, distillation, meta, mixup, segmentation  # noqa: F401
from lossbench.methods.base import METHODS, Batch, Method, MethodContext, MethodInfo, Plain, StepState, register_method

__all__ = ["METHODS", "Batch", "Method", "MethodContext", "MethodInfo", "Plain", "StepState", "register_method"]
