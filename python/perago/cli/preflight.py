"""The steps every command runs between loading a task and using it.

Errors that every command reports as `error: ...` are `PERAGO_ERRORS`; commands add their
own (e.g. `extract` reports any `ValueError`).
"""

from __future__ import annotations

from pydantic import ValidationError
from pydantic.errors import PydanticInvalidForJsonSchema

from perago.cli.output import warn
from perago.errors import RuntimeConfigError, TaskDefinitionError
from perago.task import TaskDefinition
from perago.taskdef import config_dict_warning, read_only_budget_warning, reject_root_models

PERAGO_ERRORS: tuple[type[Exception], ...] = (
    TaskDefinitionError,
    RuntimeConfigError,
    ValidationError,
    PydanticInvalidForJsonSchema,
)


def check_task_contract(task: TaskDefinition) -> None:
    """Warn about an ignored publish budget, reject RootModel contract models, then warn
    about ConfigDict-configured ones — in that order, each warning at most once."""
    budget_warning = read_only_budget_warning(task)
    if budget_warning is not None:
        warn(budget_warning)
    reject_root_models(task)
    model_warning = config_dict_warning(task)
    if model_warning is not None:
        warn(model_warning)
