"""`distroguard drain`: the webhook pod's preStop hook.

The API server keeps its connections to the webhook's Service open and sends reviews down whichever it
holds, so a replica that is leaving the endpoints keeps receiving reviews until it closes its connections.
This asks the replica's own server (over loopback, the only place it accepts a drain from) to close each
connection after its next answer, then waits while the API server dials the replicas that stay.
"""

from __future__ import annotations

import http.client
import ssl
import sys
import time

import click

DRAIN_TIMEOUT_SECONDS = 2.0
"""How long the request to the local server may take: the wait that follows must not be eaten by it."""


@click.command(short_help="Drain this pod's webhook connections, then wait.")
@click.option("--port", type=click.IntRange(1, 65535), default=9443, show_default=True, help="Webhook port.")
@click.option(
    "--seconds",
    type=click.FloatRange(0, 3600),
    default=5.0,
    show_default=True,
    help="How long to keep answering after the drain began (the chart's webhook.drainSeconds).",
)
def drain(port: int, seconds: float) -> None:
    """Retire this pod's webhook connections and wait.

    Tells the webhook server on 127.0.0.1:PORT to close every connection after its next answer, so that the
    API server moves its reviews to the replicas that stay, then waits SECONDS while reviews already on
    their way are answered. A failed request is reported and the wait still happens: the pod then stops as
    it would without the hook.
    """
    started = time.monotonic()
    try:
        _ask_to_drain(port)
        click.echo(f"draining: connections to 127.0.0.1:{port} close after their next answer")
    except (OSError, http.client.HTTPException, RuntimeError) as exc:
        click.echo(f"drain: could not ask the webhook server on 127.0.0.1:{port} to drain: {exc}", err=True)
    time.sleep(max(0.0, seconds - (time.monotonic() - started)))
    sys.exit(0)


def _ask_to_drain(port: int) -> None:
    # The server's certificate names the Service, not 127.0.0.1; the request carries nothing secret and
    # goes to this pod's own loopback, so there is nothing for verification to protect.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    connection = http.client.HTTPSConnection(
        "127.0.0.1", port, timeout=DRAIN_TIMEOUT_SECONDS, context=context
    )
    try:
        connection.request("GET", "/drain")
        response = connection.getresponse()
        body = response.read(4096).decode(errors="replace").strip()
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}: {body}")
    finally:
        connection.close()
