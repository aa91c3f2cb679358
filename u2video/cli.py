"""The root Typer app. Registers the commands, and is the only place that turns an error into a
one-line message and an exit code: a U2VideoError (its own code), a mistake on the command line
(2), or a stop signal (128 + its number, after the partial output was kept). ``--debug`` shows
the traceback of a U2VideoError instead."""

from __future__ import annotations

import functools
import os
import signal
import sys
from collections.abc import Callable
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from .commands import bench, matte, models, presets, replace, tune, webcam
from .errors import Interrupted, U2VideoError
from .interrupts import stop_on_signals

_debug = os.getenv("U2VIDEO_DEBUG", "") not in ("", "0")
# Click's error classes: typer re-exports only BadParameter, and newer typers bundle their own Click
_CLICK_ERROR = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")
_ABORT = (typer.Abort, getattr(sys.modules[_CLICK_ERROR.__module__], "Abort", typer.Abort))


def _say(line: str) -> None:
    try:
        typer.echo(line, err=True)
    except OSError:  # the terminal is gone (SIGHUP): the exit code still tells
        pass


def _user_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except U2VideoError as e:
            if _debug:
                raise
            _say(f"u2video: error: {e}")
            raise typer.Exit(e.exit_code) from None
        except KeyboardInterrupt as e:  # what was kept (if anything) has been reported already
            from .media.files import discard_empty_temp_files

            discard_empty_temp_files()
            signum = e.signum if isinstance(e, Interrupted) else signal.SIGINT
            _say("u2video: interrupted" if signum == signal.SIGINT else f"u2video: stopped by {signal.Signals(signum).name}")
            raise typer.Exit(128 + signum) from None

    return run


class _OneLineErrors(TyperGroup):
    """Mistakes on the command line (a missing option, a value out of range) as one line, in the
    same form as every other error, instead of Click's usage box."""

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except _CLICK_ERROR as e:
            if type(e).__name__ == "NoArgsIsHelpError":  # `u2video` alone: the help
                typer.echo(e.format_message())
                sys.exit(0)
            ctx = getattr(e, "ctx", None)
            where = f" (see {ctx.command_path} --help)" if ctx is not None else ""
            _say(f"u2video: error: {e.format_message()}{where}")
            sys.exit(e.exit_code)
        except _ABORT:
            _say("u2video: aborted")
            sys.exit(1)
        except KeyboardInterrupt as e:  # a signal while the command line was read
            sys.exit(128 + (e.signum if isinstance(e, Interrupted) else signal.SIGINT))
        sys.exit(code if isinstance(code, int) else 0)


app = typer.Typer(
    name="u2video", cls=_OneLineErrors, no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    help="Remove or replace the background of video and images with U²-Net.",
)


@app.callback()
def _root(debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")] = False) -> None:
    global _debug
    _debug = _debug or debug


app.command("matte")(_user_errors(matte.matte))
app.command("replace")(_user_errors(replace.replace))
app.command("presets")(_user_errors(presets.presets))
app.command("webcam")(_user_errors(webcam.webcam))
app.command("bench")(_user_errors(bench.bench))
app.command("tune")(_user_errors(tune.tune))

models_app = typer.Typer(help="List, pull, verify and quantize model weights ($U2NET_HOME or ~/.u2net, shared with "
                              "rembg).",
                         invoke_without_command=True, no_args_is_help=False)


@models_app.callback(invoke_without_command=True)
def _models_root(ctx: typer.Context) -> None:
    if ctx.invoked_subcommand is None:
        _user_errors(models.list_models)()


models_app.command("list")(_user_errors(models.list_models))
models_app.command("pull")(_user_errors(models.pull))
models_app.command("verify")(_user_errors(models.verify))
models_app.command("quantize")(_user_errors(models.quantize))
app.add_typer(models_app, name="models")


def main() -> None:
    stop_on_signals()
    app()
