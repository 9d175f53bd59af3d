"""Getting image bytes: an async OCI registry client, and local image sources (OCI layouts,
docker-archive).

    client      RegistryClient: tag → digest, manifests, blobs (streamed, ranged, verified)
    transport   the HTTP edge: redirects, retries, deadlines, per-registry concurrency authflow
    anonymous → basic / bearer token flow, with `auth` (challenges, token cache) credentials Docker
    config.json and Kubernetes pull secrets manifest    media types, descriptors, manifests,
    configs, platform selection (pure) source      the ImageSource contract, RegistrySource,
    `open_source`; `layout`, `archive` for local ones

Imports only `distroguard.model` and `distroguard.errors` of ours (checked by import-linter).
"""
