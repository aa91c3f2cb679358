"""The root Typer app. Registers the commands, and is the only place that turns a U2VideoError
into a one-line message and an exit code (``--debug`` shows the traceback instead)."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Annotated, Any

import typer

from .commands import bench, matte, models, presets, replace, webcam
from .errors import U2VideoError

_debug = os.getenv("U2VIDEO_DEBUG", "") not in ("", "0")


def _user_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except U2VideoError as e:
            if _debug:
                raise
            typer.echo(f"u2video: error: {e}", err=True)
            raise typer.Exit(e.exit_code) from None
        except KeyboardInterrupt:  # what was kept (if anything) has been reported already
            typer.echo("u2video: interrupted", err=True)
            raise typer.Exit(130) from None

    return run


app = typer.Typer(
    name="u2video", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
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

models_app = typer.Typer(help="List, pull and verify model weights ($U2NET_HOME or ~/.u2net, shared with rembg).",
                         invoke_without_command=True, no_args_is_help=False)


@models_app.callback(invoke_without_command=True)
def _models_root(ctx: typer.Context) -> None:
    if ctx.invoked_subcommand is None:
        _user_errors(models.list_models)()


models_app.command("list")(_user_errors(models.list_models))
models_app.command("pull")(_user_errors(models.pull))
models_app.command("verify")(_user_errors(models.verify))
app.add_typer(models_app, name="models")


def main() -> None:
    app()
