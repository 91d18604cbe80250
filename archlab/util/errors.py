"""The one exception type for mistakes a user can make (bad genome, bad space file, missing
dataset, corrupt video...). The CLI prints its message as one line and exits with code 2;
anything else is a bug and keeps its traceback.

``shorten`` is the one way to echo a user's value in such a message: a value may be 50 MB
(or a "billion laughs" list), and a message that repeats it whole is itself the failure."""

from __future__ import annotations

import reprlib
from typing import Any

ECHO_LIMIT = 60  # characters of a value echoed in a message

_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxlist, _REPR.maxtuple, _REPR.maxdict, _REPR.maxset = 2, 6, 6, 6, 6
_REPR.maxstring = _REPR.maxother = _REPR.maxlong = ECHO_LIMIT


class UserError(Exception):
    """A problem in what the user asked for, explained in one line."""


def shorten(value: Any, limit: int = ECHO_LIMIT, *, plain: bool = False) -> str:
    """``repr(value)`` for a message, at most about ``limit`` characters: a long string keeps
    its start and says its length; containers show their first items (reprlib), so the cost
    is bounded however large or deeply shared the value is. ``plain``: a string as it is,
    without quotes (a message from a library, a path)."""
    if isinstance(value, str):
        if len(value) <= limit:
            return value if plain else repr(value)
        head = value[:limit] if plain else repr(value[:limit])
        return f"{head}... ({len(value):,} characters)"
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 4 * limit:
        return f"a {value.bit_length():,}-bit integer"
    try:
        text = _REPR.repr(value)
    except (ValueError, RecursionError):  # an int past Python's digit limit inside a container
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit + 20 else text[:limit] + "..."
