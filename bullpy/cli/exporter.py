"""``bullpy exporter``: Prometheus metrics of every queue under the prefix, bull_exporter-compatible (needs the
``prometheus`` extra, imported only when the command runs)."""

from __future__ import annotations

import click

from . import main
from ._common import note, settings


@main.command("exporter")
@click.argument("queues", nargs=-1)
@click.option("--port", type=int, default=9538, show_default=True, envvar="BULLPY_EXPORTER_PORT",
              help="Port to serve on (bull_exporter's) [env BULLPY_EXPORTER_PORT].")
@click.option("--bind", default="0.0.0.0", show_default=True, envvar="BULLPY_EXPORTER_BIND",
              help="Address to listen on [env BULLPY_EXPORTER_BIND].")
@click.option("--metric-prefix", default="bull_queue_", show_default=True, envvar="BULLPY_EXPORTER_METRIC_PREFIX",
              help="Prefix of the queue metrics (bull_exporter's METRIC_PREFIX).")
@click.option("--rediscover", type=float, default=300.0, show_default=True, metavar="SECONDS",
              help="Look for new queues (SCAN) this often; 0: only at start and on POST /discover_queues.")
@click.option("--sample-limit", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Newly finished jobs per queue and state that feed the histograms at each scrape.")
@click.option("--once", is_flag=True, help="Print one scrape on stdout and exit.")
@click.pass_context
def exporter(ctx: click.Context, queues: tuple[str, ...], port: int, bind: str, metric_prefix: str,
             rediscover: float, sample_limit: int, once: bool) -> None:
    """Serve Prometheus metrics of every queue under the prefix (or of the QUEUES named) on /metrics.

    bull_exporter's names and labels (bull_queue_waiting{queue,prefix}...), so its Grafana dashboard works
    unchanged, plus counters, histograms, oldest waiting age, paused state and workers; /health answers 200
    while Redis answers, else 503. Needs `pip install 'bullpy[prometheus]'`.
    """
    from ..exporter import QueueExporter, render, serve

    opts = settings(ctx)
    collector = QueueExporter(opts.redis, prefix=opts.key_prefix, queues=list(queues) or None,
                              metric_prefix=metric_prefix, rediscover=rediscover, sample_limit=sample_limit,
                              cluster=opts.is_cluster(opts.redis))
    try:
        if once:
            click.echo(render(collector).decode(), nl=False)
            return
        server = serve(collector, port=port, host=bind)
        note(f"serving metrics of {len(collector.queues)} queue(s) under {opts.key_prefix!r} on "
             f"{server.url}/metrics (health: /health; Ctrl-C stops)")
        try:
            server.wait()
        except KeyboardInterrupt:
            pass
        finally:
            server.close()
    finally:
        collector.close()
