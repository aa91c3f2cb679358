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


class OutputTaken(MediaError):
    """The output path was taken by another file while this run wrote it; this run's result was
    kept under another name (``kept``) and nothing was replaced."""

    def __init__(self, target: object, kept: object):
        super().__init__(f"{target} appeared while this run was writing it (another program or run?): nothing was "
                         f"replaced, this run's output was kept as {kept}; compare them, or pass --overwrite")
        self.target, self.kept = target, kept


class FramesLost(MediaError):
    """``--strict``: the output was written, but frames of the input could not be decoded."""


class Interrupted(KeyboardInterrupt):
    """A stop signal (SIGTERM, SIGHUP, or SIGINT) as an exception, so that a run stops the way it
    does on Ctrl-C: the partial output is kept and reported. ``signum`` is the signal's number."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum
