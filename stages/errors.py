"""Errors a user sees: one line saying what went wrong, where, and how to fix it."""


class UserError(Exception):
    """Bad input or configuration; printed as `error: ...` with exit code 2."""

    exit_code = 2


class StageError(UserError):
    """A pipeline stage failed on valid input (ffmpeg, the engine, a compliance check)."""


class ComplianceError(StageError):
    """The album was made but fails a retailer's checks; the report says where."""

    exit_code = 1
