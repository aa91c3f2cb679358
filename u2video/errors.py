"""Typed errors. Library code raises these; only ``cli.py`` turns them into a message and exit code.

Each message is one line that says what is wrong and what to do about it.
"""


class U2VideoError(Exception):
    """Base of every error meant for the user. ``exit_code`` is what the CLI exits with."""

    exit_code = 1


class ConfigError(U2VideoError):
    """Impossible or contradictory options (bad flag value, unknown preset, wrong extension)."""

    exit_code = 2


class MediaError(U2VideoError):
    """An input that can't be read or an output that can't be written."""

    exit_code = 3


class ModelError(U2VideoError):
    """Weights missing, unknown, corrupt, or not a U²-Net."""

    exit_code = 4


class DeviceError(U2VideoError):
    """The requested device (e.g. CUDA) is not available."""

    exit_code = 5
