"""The one exception root of the project, so callers can catch what is ours."""


class OneWindowError(Exception):
    """Base of every error onewindow raises on purpose."""


class ConfigError(OneWindowError):
    """Configuration (environment, registry file, calendar override) is unusable."""


class DecodeError(OneWindowError):
    """Bytes or JSON could not be turned into an event; `reason` is a dead-letter code."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
