"""The operator: kopf handlers and server wiring for the admission webhook (kopf appears only here).

run.py          `distroguard run`: settings, the process, production vs --dev
settings.py     RunSettings
handlers.py     the kopf handlers: login, validate (one per webhook path), DistroPolicy events
webhooks.py     the table of webhook paths, shared by handlers, server and the dev configuration
server.py       kopf's webhook server with our request edge: body limit, decoding, known paths, recovery
admitter.py     a decoded request -> the answer, with the namespace's labels and pull secrets
namespaces.py   namespace labels (worker thread, short TTL)
pullsecrets.py  a pod's registry credentials (worker thread, short TTL, never logged)
pool.py         resolvers by credentials: shared anonymous, one per (namespace, secrets)
policystore.py  the policies in force: cluster objects and files
threadcache.py  a TTL cache in front of a blocking read run in a worker thread
kubeclient.py   the Kubernetes connection, shared by the `kubernetes` client and kopf
observer.py     the seam for metrics
devcerts.py     --dev: a CA and a serving certificate
devcluster.py   --dev: CRDs and the ValidatingWebhookConfiguration
"""
