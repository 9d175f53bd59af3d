"""`distroguard run --dev`: certificates, CRDs and a webhook configuration for a local cluster."""
