"""The one Kubernetes connection of the process: a `kubernetes` client configuration, from a kubeconfig
(like kubectl: --kubeconfig, else $KUBECONFIG or ~/.kube/config) or the in-cluster service account, and
the same credentials handed to kopf, so that both talk to the same API server as the same user.

The `kubernetes` client is synchronous: call its APIs only from worker threads (`asyncio.to_thread`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kopf
import kubernetes

CONNECTIONS = 96
"""Connections to the API server kept open at most. Each watch of our own (pods, Nodes, networks, ImageFacts)
holds one for as long as it follows, and the audit writes 64 objects at a time: the library's default
(5 per CPU) made the writers open and discard a TLS connection per request on a small node."""


def load_configuration(kubeconfig: Path | None) -> Any:
    """A `kubernetes.client.Configuration` (not the library's global default: nothing else is touched)."""
    configuration = kubernetes.client.Configuration()
    configuration.connection_pool_maxsize = CONNECTIONS  # kept by the loaders, which set the rest
    if kubeconfig is not None:
        kubernetes.config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=str(kubeconfig), client_configuration=configuration
        )
        return configuration
    try:
        kubernetes.config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    except kubernetes.config.ConfigException:
        kubernetes.config.load_kube_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    return configuration


def api_client(configuration: Any) -> Any:
    """A `kubernetes.client.ApiClient`; thread-safe for the calls distroguard makes."""
    return kubernetes.client.ApiClient(configuration)


def connection_info(configuration: Any) -> kopf.ConnectionInfo:
    """kopf's credentials from the client configuration (what kopf's own client login does, with our
    configuration object instead of the library's global one)."""
    header = configuration.get_api_key_with_prefix("BearerToken") or configuration.get_api_key_with_prefix(
        "authorization"
    )
    parts = header.split(" ", 1) if header else []
    scheme, token = (None, None) if not parts else (None, parts[0]) if len(parts) == 1 else tuple(parts)
    return kopf.ConnectionInfo(
        server=configuration.host,
        ca_path=configuration.ssl_ca_cert,
        insecure=not configuration.verify_ssl,
        username=configuration.username or None,
        password=configuration.password or None,
        scheme=scheme,
        token=token,
        certificate_path=configuration.cert_file,
        private_key_path=configuration.key_file,
    )
