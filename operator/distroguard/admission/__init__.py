"""Admission: from an AdmissionReview to an answer, without kopf or Kubernetes (the operator wires them).

review.py     the AdmissionReview v1 wire format: decode a request, build a response
workloads.py  which containers of a Pod or a workload's pod template to check
decide.py     admit(): resolve the images within a budget, evaluate the policies, answer
"""

from distroguard.admission.decide import admit, answer, excluded
from distroguard.admission.review import AdmissionAnswer, AdmissionRequest, decode_review, respond
from distroguard.admission.workloads import NotHandled, Skip, Workload, containers_to_check

__all__ = [
    "AdmissionAnswer",
    "AdmissionRequest",
    "NotHandled",
    "Skip",
    "Workload",
    "admit",
    "answer",
    "containers_to_check",
    "decode_review",
    "excluded",
    "respond",
]
