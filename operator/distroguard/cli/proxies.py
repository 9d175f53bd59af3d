"""The proxy environment of a command: read once, checked, its notes said."""

from __future__ import annotations

import os

import click

from distroguard.proxies import ProxyEnvironment

PROXY_EPILOG = (
    "Proxies: HTTPS_PROXY, HTTP_PROXY and NO_PROXY (or their lower-case names) are honoured for {what}; "
    "NO_PROXY takes host names (covering their subdomains), .domain suffixes, addresses, CIDRs and host:port "
    "entries. See docs/operations.md, Proxies."
)


def environment_proxies(*, warn: bool = True) -> ProxyEnvironment:
    """This process's proxies (`distroguard.proxies`); an unusable proxy URL is a usage error (exit 2) naming
    its variable, never its password. With `warn`, what the environment reading noted goes to stderr."""
    try:
        proxies = ProxyEnvironment.from_environ(os.environ)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    if warn:
        for note in proxies.notes:
            click.echo(f"warning: {note}", err=True)
    return proxies
