"""JUnit XML: what GitLab, Jenkins and most CI systems show as test results.

One `testsuite` per group (an image for `check`, a workload for `audit`), one `testcase` per judged image x
policy rule (classname: the judged image, name: `POLICY/RULE`):

- a rule that denies it is a `failure` (its messages, each with its suggestion);
- a rule that only warns or notes passes, its messages in `system-out`;
- a rule of a policy that does not cover the image is `skipped`;
- an image that could not be judged is one `error` test case (`resolve`).

A policy-wide decision (onUnresolved, onNoPlatform, falseBaseClaim) is a test case only where it made a
finding. Every count attribute is the count of the elements below it.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence

from distroguard.cli.reports import Checked, RuleInfo, rule_id
from distroguard.model import Finding

#: What XML 1.0 cannot hold (control characters an image's own files may put into a message).
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")

_COUNTED = (("failure", "failures"), ("error", "errors"), ("skipped", "skipped"))


def _case(item: Checked, rule: RuleInfo, findings: Sequence[Finding]) -> ET.Element | None:
    case = ET.Element("testcase", classname=item.subject, name=rule.id)
    if not findings:
        if rule.action is None:
            return None
        if rule.policy not in item.covered:
            ET.SubElement(case, "skipped", message=f"policy {rule.policy} does not cover this image")
        return case
    denied = [f for f in findings if f.action == "deny"]
    if denied:
        failure = ET.SubElement(case, "failure", message=denied[0].message, type=denied[0].reason)
        failure.text = "\n".join(f.message for f in denied)
    noted = [f for f in findings if f.action != "deny"]
    if noted:
        out = ET.SubElement(case, "system-out")
        out.text = "\n".join(f"{f.action}: {f.message}" for f in noted)
    return case


def _cases(item: Checked, rules: Sequence[RuleInfo]) -> list[ET.Element]:
    if item.error is not None:
        case = ET.Element("testcase", classname=item.subject, name="resolve")
        ET.SubElement(case, "error", message=item.error, type="unresolved").text = item.error
        return [case]
    by_rule: dict[str, list[Finding]] = {}
    for finding in item.findings:
        by_rule.setdefault(rule_id(finding.policy, finding.rule), []).append(finding)
    cases = [_case(item, rule, by_rule.get(rule.id, ())) for rule in rules]
    return [case for case in cases if case is not None]


def _count(element: ET.Element, cases: Sequence[ET.Element]) -> None:
    element.set("tests", str(len(cases)))
    for tag, attribute in _COUNTED:
        element.set(attribute, str(sum(1 for case in cases if case.find(tag) is not None)))


def junit_xml(items: Sequence[Checked], rules: Sequence[RuleInfo]) -> str:
    """The JUnit XML document of `items` (UTF-8 text with its declaration)."""
    root = ET.Element("testsuites", name="distroguard")
    groups: dict[str, list[Checked]] = {}
    for item in items:
        groups.setdefault(item.group, []).append(item)
    every: list[ET.Element] = []
    for group, members in groups.items():
        suite = ET.SubElement(root, "testsuite", name=group)
        cases = [case for item in members for case in _cases(item, rules)]
        suite.extend(cases)
        _count(suite, cases)
        every.extend(cases)
    _count(root, every)
    ET.indent(root)
    for element in root.iter():
        if element.text:
            element.text = _NOT_XML.sub("\ufffd", element.text)
        for key, value in element.attrib.items():
            element.set(key, _NOT_XML.sub("\ufffd", value))
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
