"""The one exception a user's mistake becomes on the Python side."""


class ConfigError(ValueError):
    """A user-facing configuration mistake: the message names the key and what is right."""
