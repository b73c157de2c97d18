"""The one exception root of the project, so callers can catch what is ours."""


class OneWindowError(Exception):
    """Base of every error onewindow raises on purpose."""


class DeliveryError(OneWindowError):
    """The broker did not take what was sent (unreachable, timed out, refused by an ACL).

    The command line ends with exit status 1 for it, not 2: the input was good, the
    delivery failed (every other `OneWindowError` is input the user can fix: status 2)."""


class ConfigError(OneWindowError):
    """Configuration (environment, registry file, calendar override) is unusable."""


class DecodeError(OneWindowError):
    """Bytes or JSON could not be turned into an event; `reason` is a dead-letter code."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
