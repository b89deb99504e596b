"""Task types, one module each, registered in :data:`TASK_TYPES`."""

from lossbench.tasks import (  # noqa: F401  (register the task types)
    classification,
    image,
    retrieval,
    segmentation,
    xmc,
)
from lossbench.tasks.base import TASK_TYPES, Prepared, TaskType, TensorSplit

__all__ = ["TASK_TYPES", "Prepared", "TaskType", "TensorSplit"]
