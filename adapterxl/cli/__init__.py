"""The `adapterxl` command: parse, call one library function, print. No logic here.

This file holds the group (`main`, the console script's entry point) and its error handling;
each command family is a `cmd_*.py` beside it that adds its commands in `register(main)`."""
from __future__ import annotations

import os
import sys

import click

from .._version import __version__
from ..errors import AdapterxlError
from ..logs import log_error


class Group(click.Group):
    """Turns AdapterxlError into one line on stderr and exit code 2 (a traceback with --debug)."""

    def invoke(self, ctx):
        import warnings

        # Library warnings are held back while the command runs: shown after it succeeds,
        # dropped when it fails, so that an error is one line and nothing precedes it.
        with warnings.catch_warnings(record=True) as held:
            result = self._invoke(ctx)
        for w in held:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)
        return result

    def _invoke(self, ctx):
        from ..preemption import Stopped

        try:
            return super().invoke(ctx)
        except Stopped as e:  # not an error: a checkpoint was written, the run can resume
            click.echo(str(e), err=True)
            sys.exit(128 + e.signum)
        except BrokenPipeError:
            # `adapterxl tasks | head`: the reader left; stay quiet like other Unix tools
            # (stdout goes to devnull so that the interpreter's final flush cannot fail).
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(141)
        except AdapterxlError as e:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            click.echo(f"error: {e}", err=True)
            log_error(f"error: {e}", e)
            sys.exit(2)
        except click.UsageError as e:
            # A bad flag is bad input like any other: one line, not click's usage text.
            if ctx.obj and ctx.obj.get("debug"):
                raise
            click.echo(f"error: {e.format_message()}", err=True)
            sys.exit(2)
        except KeyboardInterrupt as e:
            click.echo(str(e) or "interrupted", err=True)
            sys.exit(130)
        except (click.exceptions.Exit, click.ClickException, SystemExit):
            raise
        except Exception as e:  # a bug or an environment problem: still one line by default
            if ctx.obj and ctx.obj.get("debug"):
                raise
            from .._io import write_failure

            failure = write_failure(e, getattr(e, "filename", None))
            if failure is not None:  # a full disk or a read-only place: the user's to fix
                where = getattr(e, "filename", None)
                click.echo(f"error: cannot write{f' {where}' if where else ''}: "
                           f"{os.strerror(failure[0])}; {failure[1]}", err=True)
                sys.exit(2)
            first = str(e).strip().splitlines()[0] if str(e).strip() else ""
            click.echo(f"error: unexpected {type(e).__name__}: {first} "
                       f"(rerun with `adapterxl --debug ...` for the traceback)", err=True)
            log_error(f"error: unexpected {type(e).__name__}: {first}", e)
            sys.exit(1)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks.")
@click.option("--verbose", "-v", count=True,
              help="More detail: debug messages and the Hugging Face libraries' own info.")
@click.option("--quiet", "-q", is_flag=True,
              help="Only warnings, errors and results: no progress bars or status lines.")
@click.option("--log-file", default=None, metavar="FILE", type=click.Path(dir_okay=False),
              help="Also write every message, timestamped, to FILE (appended), with the "
                   "traceback of an error.")
@click.option("--catalog", "catalogs", multiple=True, metavar="FILE",
              help="A catalogue file of your own tasks (the schema of docs/FORMATS.md): adds "
                   "or replaces tasks; also $ADAPTERXL_CATALOG.")
@click.version_option(__version__, "--version", prog_name="adapterxl")
@click.pass_context
def main(ctx, debug, verbose, quiet, log_file, catalogs):
    """adapterxl: English intermediate-task modules for zero-shot cross-lingual transfer.

    Shell completion (commands, options, task and method names): add
    `eval "$(_ADAPTERXL_COMPLETE=bash_source adapterxl)"` to ~/.bashrc (zsh: zsh_source in
    ~/.zshrc; fish: `_ADAPTERXL_COMPLETE=fish_source adapterxl | source`)."""
    from ..logs import setup

    if verbose and quiet:
        raise AdapterxlError("give -v or -q, not both")
    ctx.obj = {"debug": debug}
    if catalogs:
        from ..tasks import CATALOG_ENV

        # The environment, so that every part of this run (and processes it starts) sees them.
        os.environ[CATALOG_ENV] = os.pathsep.join(
            [*catalogs, *filter(None, os.environ.get(CATALOG_ENV, "").split(os.pathsep))])
    # Also keeps bitsandbytes' note about optional CPU kernels off the screen (unless -v).
    setup(-1 if quiet else verbose, log_file)


def _register_commands() -> None:
    # Each command family lives in its own file and adds itself to `main` here (a function
    # call, not an import side effect; the families import nothing from this file).
    from . import (cmd_evaluate, cmd_experiments, cmd_hub, cmd_modules, cmd_plan, cmd_report,
                   cmd_tasks, cmd_train)

    for family in (cmd_train, cmd_evaluate, cmd_tasks, cmd_modules, cmd_hub, cmd_experiments,
                   cmd_report, cmd_plan):
        family.register(main)


_register_commands()
