"""Task types, one module each, registered in :data:`TASK_TYPES` when imported (every module here is)."""

from lossbench.registry import import_submodules
from lossbench.tasks.base import TASK_TYPES, Prepared, TaskType, TensorSplit

import_submodules(__name__, __path__)

__all__ = ["TASK_TYPES", "Prepared", "TaskType", "TensorSplit"]
