"""The one exception a user's mistake becomes on the Python side."""

from __future__ import annotations


class ConfigError(ValueError):
    """A user-facing configuration mistake: the message names the key and what is right.
    keys: the settings the mistake is about, when it is about settings, so that the CLI can
    say where they were given (--set, an --axis, a sweep file)."""

    def __init__(self, message: str, keys: tuple[str, ...] = ()):
        super().__init__(message)
        self.keys = keys
