"""Task types, one module each, registered in :data:`TASK_TYPES`."""

from lossbench.tasks import classification, segmentation  # noqa: F401  (register the task types)
from lossbench.tasks.base import TASK_TYPES, Prepared, TaskType, TensorSplit

__all__ = ["TASK_TYPES", "Prepared", "TaskType", "TensorSplit"]
