"""The one exception type for mistakes a user can make (bad genome, bad space file, missing
dataset, corrupt video...). The CLI prints its message as one line and exits with code 2;
anything else is a bug and keeps its traceback."""


class UserError(Exception):
    """A problem in what the user asked for, explained in one line."""
