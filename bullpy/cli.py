"""The ``bullpy`` command line (click). Heavy optional layers are imported inside commands only."""

from __future__ import annotations

import click


@click.group()
@click.version_option(package_name="bullpy")
def main() -> None:
    """Inspect, feed and manage Bull queues from the terminal."""


@main.command()
@click.option("--queue", "queue_name", default="message-queue", show_default=True, help="Queue name.")
@click.option("--prefix", default="bull", show_default=True, help="Bull key prefix.")
@click.option("--redis", "redis_url", envvar="REDIS_URL", default=None,
              help="Redis URL (default: REDIS_URL/REDIS_HOST..., else the embedded server).")
@click.option("--bridge", default=None, help="Path to bridge/ (the Node worker).")
@click.option("--timeout", default=60.0, show_default=True, help="Seconds to wait for the worker.")
def demo(queue_name: str, prefix: str, redis_url: str | None, bridge: str | None, timeout: float) -> None:
    """Queue a small WhatsApp campaign and let the real Node Bull worker send it (dry run)."""
    from .demo import run_demo

    raise SystemExit(run_demo(queue_name=queue_name, prefix=prefix, redis=redis_url, bridge=bridge,
                              timeout=timeout, echo=click.echo))


if __name__ == "__main__":  # python -m bullpy.cli
    main()
