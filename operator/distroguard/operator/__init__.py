"""The operator: kopf, the Kubernetes client and the process, by role (kopf appears only here).

process.py        what `distroguard run` starts: shared set-up, each role's parts, then kopf
settings.py       RunSettings, checked once when built
handlers.py       the kopf handlers: login, DistroPolicy events, workload changes (audit)
factswatch.py     ImageFacts into the shared resolver's cache (a watch of its own, `metawatch.py`)

webhook/          the webhook role
  server.py       kopf's webhook server with our request edge: body limit, decode, route, recover
  routes.py       the webhook paths, derived from the model's table of workload kinds
  admitter.py     the operator's side of `admission.admit`: namespace labels, credentials, metrics
  namespaces.py   namespace labels (worker thread, short TTL)

audit/            the in-cluster audit writer (the one writer of what the audit reports)
  auditor.py      when to audit, and the audit itself: list, resolve, evaluate, write
  inventorystore.py  ImageFacts objects: parse and seed one, write what the audit learnt
  reportstore.py  PolicyReports and the summary ClusterPolicyReport
  events.py       Warning events for violations, rate-limited
  podwatch.py     a metadata-only pod watch (`metawatch.py`) that tells the audit something changed

dev/              --dev: a local cluster with nothing installed beforehand
  certs.py        a CA and a serving certificate
  cluster.py      the CRDs and the ValidatingWebhookConfiguration

shared by the roles: policystore.py (the policies in force), pullsecrets.py (a namespace's registry
credentials), metrics.py (Prometheus) and observer.py (its seam), kubeclient.py (the connection shared by
kopf and the client), threadcache.py (a TTL cache in front of a blocking read in a worker thread),
nodeplatforms.py (the platforms of the cluster's Nodes) and metawatch.py (a metadata-only watch).

The import-linter contract "operator-roles" keeps this shape: the roles never import each other.
"""
