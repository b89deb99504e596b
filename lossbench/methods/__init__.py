"""Training methods (what a step does); ``plain`` is the default. Every module here is imported and registers its own."""

from lossbench.methods.base import METHODS, Batch, Method, MethodContext, MethodInfo, Plain, StepState, register_method
from lossbench.registry import import_submodules

import_submodules(__name__, __path__)

__all__ = ["METHODS", "Batch", "Method", "MethodContext", "MethodInfo", "Plain", "StepState", "register_method"]
