"""Getting image bytes: an async OCI registry client, and local image sources (OCI layouts,
docker-archive).

    source       the ImageSource contract's `open_source`: a registry, `oci:` or `docker-archive:`
    client       RegistryClient: tag -> digest, manifests, blobs (streamed, ranged, verified)
    authflow     anonymous -> basic / bearer token flow, with `auth` (challenges, token cache)
    transport    the HTTP edge: redirects, retries, deadlines, per-registry concurrency
    credentials  Docker config.json and Kubernetes pull secrets
    manifest     media types, descriptors, manifests, configs, platform selection (pure)
    layout, archive, localfiles   local sources

Imports only `distroguard.model` and `distroguard.errors` of ours; inside, the import-linter contract
"registry-layers" keeps sources above the client and the client above its HTTP edge.
"""
