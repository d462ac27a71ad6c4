"""Errors that stage scripts report as one line naming the file, the task and the field."""

from __future__ import annotations


class PipelineError(Exception):
    """A user-facing failure: bad input, bad parameters, or a missing artifact.

    The message is one line of the form ``<file>: task <task>: field <field>: <what is wrong>``
    (parts that do not apply are left out), so a failing stage says exactly what and where.
    """

    def __init__(self, message: str, *, file: str | None = None, task: str | None = None,
                 field: str | None = None):
        self.file, self.task, self.field, self.reason = file, task, field, message
        parts = []
        if file:
            parts.append(str(file))
        if task:
            parts.append(f"task {task}")
        if field:
            parts.append(f"field {field}")
        parts.append(" ".join(str(message).split()))
        super().__init__(": ".join(parts))


class InputError(PipelineError):
    """Malformed input data (a source file, a dataset row)."""


class ParamsError(PipelineError):
    """An invalid value in params.yaml."""
