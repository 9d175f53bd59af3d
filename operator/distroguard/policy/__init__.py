"""Pure policy evaluation: containers with their facts x DistroPolicies x context x EOL catalog ->
Decision.

Imports only `distroguard.model` and `distroguard.errors` (an import-linter contract says so): no
I/O, no clock, no EOL data of its own. The EOL catalog enters as an argument
(`distroguard.model.LifecycleLookup`, implemented by `distroguard.eol.EolCatalog`); policies are
loaded elsewhere (`distroguard.policyfiles`).
"""

from distroguard.policy.context import ContainerImage, EvaluationContext
from distroguard.policy.evaluate import evaluate

__all__ = ["ContainerImage", "EvaluationContext", "evaluate"]
