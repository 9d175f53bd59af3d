"""Which (policy, container) pairs a policy covers: `spec.match` minus `spec.exclude`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from fnmatch import fnmatchcase

from distroguard.model.policy import DistroPolicySpec, LabelSelector, ResourceFilter
from distroguard.policy.context import ContainerImage, EvaluationContext
from distroguard.policy.images import image_matches

Covers = Callable[[EvaluationContext, ContainerImage], bool]
"""Whether one policy covers one container of a workload in a context."""


def applies(spec: DistroPolicySpec, context: EvaluationContext, container: ContainerImage) -> bool:
    covers = coverage(spec)
    return covers is None or covers(context, container)


def coverage(spec: DistroPolicySpec) -> Covers | None:
    """`applies` for one spec, with what depends on the spec alone worked out once: only the criteria it
    sets are checked. None: the spec covers every container (no `match`, no `exclude`)."""
    match = () if spec.match.is_empty else _criteria(spec.match, absent=True)
    exclude = () if spec.exclude.is_empty else _criteria(spec.exclude, absent=False)
    if not exclude:
        if not match:
            return None
        if len(match) == 1:
            return match[0]  # the common case: one criterion, nothing excluded

    def covers(context: EvaluationContext, container: ContainerImage) -> bool:
        for holds in match:
            if not holds(context, container):
                return False
        # What cannot be judged (no namespace outside a cluster, no facts) never excludes.
        for holds in exclude:
            if not holds(context, container):
                return True
        return not exclude

    return covers


def _criteria(selector: ResourceFilter, *, absent: bool) -> tuple[Covers, ...]:
    """One test per criterion set in `selector`: the selector holds when every test does. `absent`
    answers for a criterion the context cannot judge."""
    tests: list[Covers] = []
    if selector.namespaces:
        patterns = selector.namespaces

        def namespaces(context: EvaluationContext, container: ContainerImage) -> bool:
            namespace = context.namespace
            if namespace is None:
                return absent
            return any(fnmatchcase(namespace, pattern) for pattern in patterns)

        tests.append(namespaces)
    if selector.namespace_selector is not None:
        labels = selector.namespace_selector

        def namespace_labels(context: EvaluationContext, container: ContainerImage) -> bool:
            if context.namespace is None:
                return absent
            return labels_match(labels, context.namespace_labels)

        tests.append(namespace_labels)
    if selector.kinds:
        kinds = frozenset(kind.lower() for kind in selector.kinds)

        def workload_kinds(context: EvaluationContext, container: ContainerImage) -> bool:
            kind = context.kind
            if kind is None:
                return absent
            return kind.lower() in kinds

        tests.append(workload_kinds)
    if selector.runtimes:
        names = frozenset(selector.runtimes)

        def runtimes(context: EvaluationContext, container: ContainerImage) -> bool:
            facts = container.facts
            if facts is None:
                return absent
            for runtime in facts.runtimes:  # noqa: SIM110 (a loop costs a third of any() on a generator)
                if runtime.name in names:
                    return True
            return False

        tests.append(runtimes)
    if selector.images:
        images = selector.images

        def image_globs(context: EvaluationContext, container: ContainerImage) -> bool:
            return image_matches(images, container.image)

        tests.append(image_globs)
    return tuple(tests)


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
