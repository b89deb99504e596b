"""Training methods (what a step does). ``plain`` is the default."""

from lossbench.methods.base import METHODS, Batch, Method, MethodInfo, Plain, StepState, register_method

__all__ = ["METHODS", "Batch", "Method", "MethodInfo", "Plain", "StepState", "register_method"]
