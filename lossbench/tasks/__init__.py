"""Task types, one module each, registered in :data:`TASK_TYPES`."""

from lossbench.tasks import classification, retrieval, xmc  # noqa: F401  (registers the task types)
from lossbench.tasks.base import TASK_TYPES, Prepared, TaskType, TensorSplit

__all__ = ["TASK_TYPES", "Prepared", "TaskType", "TensorSplit"]
