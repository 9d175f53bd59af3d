"""distroguard's Kubernetes API: the group and version of its kinds, and the names the API server knows
them by. The CRDs (`model.crd`), the operator's watches and the chart all take them from here."""

GROUP = "distroguard.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

POLICY_KIND = "DistroPolicy"
POLICY_PLURAL = "distropolicies"

FACTS_KIND = "ImageFacts"
FACTS_PLURAL = "imagefacts"

EXCEPTION_KIND = "DistroPolicyException"
EXCEPTION_PLURAL = "distropolicyexceptions"
CATALOG_KIND = "EOLCatalog"
CATALOG_PLURAL = "eolcatalogs"
CATALOG_SHORT_NAME = "eol"
CATALOG_NAME = "default"
"""The cluster's one EOL catalog object: every reader watches this name, every writer writes it."""
