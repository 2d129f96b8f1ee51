"""Every worker task's request type by task name (the worker reads a request
back as its type from here)."""

from __future__ import annotations

from core.tasks.batch import ConvertBatchRequest, MeasureBatchRequest
from core.tasks.requests import REQUESTS as _BASE
from core.tasks.requests import TaskRequest

__all__ = ["REQUESTS"]

REQUESTS: dict[str, type[TaskRequest]] = {
    **_BASE,
    ConvertBatchRequest.TASK: ConvertBatchRequest,
    MeasureBatchRequest.TASK: MeasureBatchRequest,
}
