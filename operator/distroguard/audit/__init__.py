"""Audit: every workload of a cluster against every DistroPolicy, whatever the policy's action.

inventory.py  pods and workload objects -> workloads grouped by their top owner (pure)
cluster.py    the Kubernetes API: list pods, owners, namespaces, pull secrets, DistroPolicies (sync I/O)
resolve.py    distinct (image, credentials) -> facts, concurrently and bounded, each image once
results.py    workloads x facts x policies -> per-workload results, EOL dates, summary (pure)
report.py     the stable JSON form of an audit
table.py      the terminal form (rich), grouped by verdict
html.py       one self-contained HTML page: counts, EOL timeline, violations, sortable table

kopf is never imported here (an import-linter contract says so): the CLI runs this out of cluster.
"""
