"""Which (policy, container) pairs a policy covers: `spec.match` minus `spec.exclude`."""

from __future__ import annotations

from collections.abc import Mapping
from fnmatch import fnmatchcase

from distroguard.model.policy import DistroPolicySpec, LabelSelector, ResourceFilter
from distroguard.policy.context import ContainerImage, EvaluationContext
from distroguard.policy.images import image_matches


def applies(spec: DistroPolicySpec, context: EvaluationContext, container: ContainerImage) -> bool:
    if not spec.match.is_empty and not _holds(spec.match, context, container, absent=True):
        return False
    # What cannot be judged (no namespace outside a cluster, no facts) never excludes.
    return spec.exclude.is_empty or not _holds(spec.exclude, context, container, absent=False)


def _holds(
    selector: ResourceFilter, context: EvaluationContext, container: ContainerImage, *, absent: bool
) -> bool:
    """Every criterion set in `selector` holds; `absent` answers for a criterion the context cannot
    judge."""
    namespace = context.namespace
    if selector.namespaces:
        if namespace is None:
            if not absent:
                return False
        elif not any(fnmatchcase(namespace, pattern) for pattern in selector.namespaces):
            return False
    if selector.namespace_selector is not None:
        if namespace is None:
            if not absent:
                return False
        elif not labels_match(selector.namespace_selector, context.namespace_labels):
            return False
    if selector.kinds:
        if context.kind is None:
            if not absent:
                return False
        elif context.kind.lower() not in {kind.lower() for kind in selector.kinds}:
            return False
    if selector.runtimes:
        facts = container.facts
        if facts is None:
            if not absent:
                return False
        else:
            for runtime in facts.runtimes:
                if runtime.name in selector.runtimes:
                    break
            else:
                return False
    return not selector.images or image_matches(selector.images, container.image)


def labels_match(selector: LabelSelector, labels: Mapping[str, str]) -> bool:
    """Kubernetes label-selector semantics: every matchLabels pair and every expression holds."""
    for key, wanted in selector.match_labels.items():
        if labels.get(key) != wanted:
            return False
    for expression in selector.match_expressions:
        present = expression.key in labels
        value = labels.get(expression.key)
        if expression.operator == "In" and value not in expression.values:
            return False
        if expression.operator == "NotIn" and present and value in expression.values:
            return False
        if expression.operator == "Exists" and not present:
            return False
        if expression.operator == "DoesNotExist" and present:
            return False
    return True
