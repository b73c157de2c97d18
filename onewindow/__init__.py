"""onewindow: the event-driven backbone of a one-window government-service counter."""

__version__ = "0.1.0"
