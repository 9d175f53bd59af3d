"""Admission: from an AdmissionReview to an answer, without kopf or Kubernetes (the operator wires them).

review.py     the AdmissionReview v1 wire format: decode a request, build a response
workloads.py  which containers of a Pod or a workload's pod template to check
decide.py     admit(): the whole decision, asking the cluster (`AdmissionCluster`) for labels and a resolver
controlled.py pods of workload controllers: judged through their owner's template (`controlledPods`)
"""

from distroguard.admission.decide import (
    AdmissionCluster,
    FactsResolver,
    admit,
    answer,
    opted_out,
    protected,
)
from distroguard.admission.review import AdmissionAnswer, AdmissionRequest, decode_review, respond
from distroguard.admission.workloads import NotHandled, Skip, Workload, containers_to_check

__all__ = [
    "AdmissionAnswer",
    "AdmissionCluster",
    "AdmissionRequest",
    "FactsResolver",
    "NotHandled",
    "Skip",
    "Workload",
    "admit",
    "answer",
    "containers_to_check",
    "decode_review",
    "opted_out",
    "protected",
    "respond",
]
