"""The ``bullpy`` command line (click): inspect, feed, clean up and migrate Bull queues.

Commands live in ``inspect.py`` (read-only views of queues and workers), ``jobs.py`` (listing, showing,
logging, failing and completing jobs), ``events.py`` (the live tail), ``repeatable.py``, ``actions.py``
(changes) and ``transfer.py`` (moving queues); ``_output.py`` is how everything prints. Heavy optional
layers (pandas, ipywidgets) are imported inside the commands that need them. Every failure ends the
command with exit status 1 and one line saying why (``-v`` shows the traceback).
"""

from __future__ import annotations

from typing import Any

import click
import redis as _redis

from ..errors import BullError, ImportConflict
from ._common import FORMATS, Group, Settings

# Failures a user can act on: shown as one line instead of a traceback.
_USER_ERRORS = (BullError, _redis.RedisError, ConnectionError, ValueError, TypeError, OSError, LookupError)


def _message(exc: BaseException) -> str:
    if isinstance(exc, ImportConflict):  # the library names its keyword; here the option is what to type
        shown = ", ".join(repr(i) for i in exc.ids[:20]) + (", ..." if exc.count > 20 else "")
        outcome = (f"{exc.written} jobs had been written by then; run again with --on-conflict skip to complete "
                   "the import" if exc.written else "nothing was written")
        return (f"{exc.count} job id{'s' if exc.count != 1 else ''} already exist in {exc.target}: {shown}; "
                f"{outcome} (--on-conflict skip keeps the target's jobs, --on-conflict replace overwrites them)")
    text = str(exc)
    return text.splitlines()[0] if text else type(exc).__name__


class _Main(Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except _USER_ERRORS as exc:
            obj = ctx.find_object(Settings)
            if obj is not None and obj.verbose:
                raise
            raise click.ClickException(_message(exc)) from None


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="bullpy")
@click.option("--redis", "redis_url", default=None, metavar="URL",
              help="Redis URL [default: the profile's; else env REDIS_URL, REDIS_HOST/REDIS_PORT/REDIS_PASSWORD...; "
                   "else the embedded server].")
@click.option("--profile", default=None, envvar="BULLPY_PROFILE", metavar="NAME",
              help="A saved connection from ~/.config/bullpy/config.toml or $BULLPY_CONFIG (see `bullpy profiles`) "
                   "[env BULLPY_PROFILE].")
@click.option("--cluster/--no-cluster", default=None, envvar="REDIS_CLUSTER",
              help="The URL names a Redis Cluster node [env REDIS_CLUSTER; default: ask the server (INFO cluster)]. "
                   "Queues then need a hash-tagged prefix or name, e.g. --prefix '{bull}'.")
@click.option("--prefix", default=None, help="Bull key prefix [default: the profile's, else bull].")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default=None,
              help="Output format [default: table, on a terminal and on a pipe alike].")
@click.option("--utc", is_flag=True, help="Show times in UTC [default: local time with its offset].")
@click.option("--yes", "-y", is_flag=True, help="Answer yes to every confirmation (needed without a terminal).")
@click.option("-v", "--verbose", count=True, help="Show tracebacks on errors.")
@click.pass_context
def main(ctx: click.Context, redis_url: str | None, profile: str | None, cluster: bool | None, prefix: str | None,
         fmt: str | None, utc: bool, yes: bool, verbose: int) -> None:
    """Inspect, feed, clean up and migrate Bull queues, with Bull's exact Redis layout.

    Global options (--redis, --profile, --prefix, --format, --utc, --yes) also work after the command:
    `bullpy jobs Q --format json`.
    """
    ctx.obj = Settings(redis=redis_url, prefix=prefix, format=fmt, yes=yes, verbose=verbose, cluster=cluster,
                       profile=profile, utc=utc)


# Registering the commands; these modules import only click, redis and bullpy's public API.
from . import actions, events, inspect, jobs, repeatable, stuck, transfer  # noqa: F401
from . import exporter  # noqa: F401
from . import worker  # noqa: F401

if __name__ == "__main__":  # pragma: no cover
    main()
