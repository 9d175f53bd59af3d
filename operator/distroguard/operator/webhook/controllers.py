"""The pod templates of pods' controllers (a ReplicaSet, StatefulSet, DaemonSet, Job...), for
`distroguard.admission.controlled`: read through the `kubernetes` client in a worker thread, and reused for a
short time by (namespace, kind, name, uid), so that the replacement pods of one workload read their owner
once.

What is kept of an owner is its template's images by container name (containers and init containers), or
None when no object of that kind and name has the owner reference's uid (gone, or deleted and made again
under the same name: a uid is never reused, so that answer stays true). Within the TTL a template changed in
place (a StatefulSet's or DaemonSet's image updated) may still be answered with its previous images.

A read is bounded by what is left of the request's budget: one not done in time confirms nothing for this
request (the pod is judged as a bare pod) and goes on in the background, so that the controller's retry
finds it cached. A failed read (refused, a broken connection) confirms nothing and is not cached.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

import kubernetes

from distroguard.admission.controlled import Controller
from distroguard.errors import InvalidObject
from distroguard.model.workloads import OWNER_KINDS, WorkloadKind, containers_in, pod_spec
from distroguard.operator.threadcache import ThreadedTTLCache

logger = logging.getLogger(__name__)

Key = tuple[str, str, str, str]
"""(namespace, kind, name, uid) of the owner reference."""
Images = Mapping[str, str] | None

REQUEST_TIMEOUT = 10.0
"""Seconds one read may take in its worker thread (the request stops waiting far sooner: its budget)."""


def read_call(api: Any, kind: WorkloadKind) -> Callable[..., Any]:
    """The `kubernetes` client's read call of one object of `kind` in a namespace, found by name
    (`read_namespaced_replica_set` of `AppsV1Api`)."""
    name = re.sub(r"(?<!^)(?=[A-Z])", "_", kind.kind).lower()
    group = (kind.group or "core").capitalize()
    typed = getattr(kubernetes.client, f"{group}{kind.version.capitalize()}Api")(api)
    call: Callable[..., Any] = getattr(typed, f"read_namespaced_{name}")
    return call


def template_images(obj: Mapping[str, Any], kind: WorkloadKind, uid: str) -> Images:
    """The images of `obj`'s pod template by container name, when `obj` has `uid`; None otherwise, and
    when its template cannot be read (it confirms nothing then)."""
    metadata = obj.get("metadata")
    if not isinstance(metadata, Mapping) or metadata.get("uid") != uid:
        return None
    what = f"{kind.kind} {metadata.get('namespace')}/{metadata.get('name')}"
    try:
        containers = containers_in(pod_spec(obj, kind, what), what)
    except InvalidObject:
        return None
    return MappingProxyType({c.name: c.image for c in containers if c.section != "ephemeralContainers"})


class ControllerTemplates:
    def __init__(self, api: Any, *, ttl: float, maxsize: int = 4096) -> None:
        self._reads = {kind.kind: (kind, read_call(api, kind)) for kind in OWNER_KINDS}
        self._cache: ThreadedTTLCache[Key, Images] = ThreadedTTLCache(self._read, ttl=ttl, maxsize=maxsize)

    async def cancel(self) -> None:
        """Cancel the reads under way (the process is stopping)."""
        await self._cache.cancel()

    async def images(self, controller: Controller, *, budget: float) -> Images:
        """`AdmissionCluster.controller_images`: never raises; None unless the owner is confirmed."""
        if controller.kind.kind not in self._reads:
            return None
        key = (controller.namespace, controller.kind.kind, controller.name, controller.uid)
        try:
            # A cached answer returns without waiting, even with no budget left.
            async with asyncio.timeout(budget):
                return await self._cache.get(key)
        except TimeoutError:
            logger.info("%s not read within the budget: its pod is judged as a bare pod", controller)
        except Exception as exc:  # the API refused or could not be reached: confirms nothing
            logger.warning("cannot read %s: %s: its pod is judged as a bare pod", controller, _why(exc))
        return None

    def _read(self, key: Key) -> Images:
        """Runs in a worker thread."""
        namespace, kind_name, name, uid = key
        kind, read = self._reads[kind_name]
        try:
            response = read(name, namespace, _preload_content=False, _request_timeout=REQUEST_TIMEOUT)
        except kubernetes.client.ApiException as exc:
            if exc.status == 404:
                return None
            raise
        found = json.loads(response.data)
        return template_images(found, kind, uid) if isinstance(found, Mapping) else None


def _why(exc: Exception) -> str:
    if isinstance(exc, kubernetes.client.ApiException):
        return f"{exc.status} {exc.reason}"
    return f"{type(exc).__name__}: {exc}"
