"""Task types, one module each, registered in :data:`TASK_TYPES`."""

from lossbench.tasks import classification  # noqa: F401  (registers the task type)
from lossbench.tasks.base import TASK_TYPES, Prepared, TaskType, TensorSplit

__all__ = ["TASK_TYPES", "Prepared", "TaskType", "TensorSplit"]
