"""The ``bullpy`` command line (click): inspect, feed, clean up and migrate Bull queues.

Commands live in ``inspect.py`` (read-only), ``actions.py`` (changes) and ``transfer.py`` (moving
queues); heavy optional layers (pandas, ipywidgets) are imported inside the commands that need them.
Every failure ends the command with exit status 1 and one line saying why (``-v`` shows the traceback).
"""

from __future__ import annotations

from typing import Any

import click
import redis as _redis

from ..errors import BullError
from ._common import FORMATS, Settings

# Failures a user can act on: shown as one line instead of a traceback.
_USER_ERRORS = (BullError, _redis.RedisError, ConnectionError, ValueError, TypeError, OSError, LookupError)


class _Group(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except _USER_ERRORS as exc:
            obj = ctx.find_object(Settings)
            if obj is not None and obj.verbose:
                raise
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise click.ClickException(message) from None


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="bullpy")
@click.option("--redis", "redis_url", envvar="REDIS_URL", default=None, metavar="URL",
              help="Redis URL [env REDIS_URL; else REDIS_HOST/REDIS_PORT/REDIS_PASSWORD...; else the embedded server].")
@click.option("--cluster/--no-cluster", default=None, envvar="REDIS_CLUSTER",
              help="The URL names a Redis Cluster node [env REDIS_CLUSTER; default: ask the server (INFO cluster)]. "
                   "Queues then need a hash-tagged prefix or name, e.g. --prefix '{bull}'.")
@click.option("--prefix", default="bull", show_default=True, help="Bull key prefix.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default=None,
              help="Output format [default: table on a terminal, json when piped].")
@click.option("--yes", "-y", is_flag=True, help="Answer yes to every confirmation (needed without a terminal).")
@click.option("-v", "--verbose", count=True, help="Show tracebacks on errors.")
@click.pass_context
def main(ctx: click.Context, redis_url: str | None, cluster: bool | None, prefix: str, fmt: str | None, yes: bool,
         verbose: int) -> None:
    """Inspect, feed, clean up and migrate Bull queues, with Bull's exact Redis layout."""
    ctx.obj = Settings(redis=redis_url, prefix=prefix, format=fmt, yes=yes, verbose=verbose, cluster=cluster)


# Registering the commands; these modules import only click, redis and bullpy's core.
from . import actions, inspect, transfer  # noqa: F401

if __name__ == "__main__":  # pragma: no cover
    main()
