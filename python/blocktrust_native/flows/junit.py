"""JUnit XML, the one writer: a flow run's asserts and SLO verdicts
(:meth:`~blocktrust_native.flows.Report.to_junit_xml`) and the operator tool's checks
(``validate_all_flows.report``) are test cases of one suite.

    junit_xml("login", [JUnitCase("login.slo", "flow p95 latency", "failure", "measured ...")],
              seconds=12.5)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = ["OUTCOMES", "JUnitCase", "junit_xml"]

#: What a test case can come to: "passed", or the JUnit element that says otherwise.
OUTCOMES = ("passed", "failure", "error", "skipped")


@dataclass(frozen=True)
class JUnitCase:
    """One test case: ``outcome`` (one of :data:`OUTCOMES`), the ``message`` attribute of its
    failure, error or skipped element and that element's text (``detail``); ``seconds`` when
    timed; ``output`` for ``system-out``."""

    classname: str
    name: str
    outcome: str = "passed"
    message: str = ""
    detail: str | None = None
    seconds: float | None = None
    output: str | None = None

    def __post_init__(self) -> None:
        if self.outcome not in OUTCOMES:
            raise ValueError(f"JUnitCase outcome {self.outcome!r}: one of {', '.join(OUTCOMES)}")


def junit_xml(
    name: str,
    cases: Sequence[JUnitCase],
    *,
    seconds: float,
    properties: Mapping[str, str] | None = None,
    testsuites: bool = True,
) -> str:
    """One suite ``name`` of ``cases`` (with its counts and ``properties``) as an XML document;
    inside a ``<testsuites>`` root unless ``testsuites`` is False (a bare ``<testsuite>``)."""
    import xml.etree.ElementTree as ET  # not at import: importing the flows stays light

    suite = ET.Element(
        "testsuite",
        name=name,
        tests=str(len(cases)),
        failures=str(sum(c.outcome == "failure" for c in cases)),
        errors=str(sum(c.outcome == "error" for c in cases)),
        skipped=str(sum(c.outcome == "skipped" for c in cases)),
        time=f"{seconds:.3f}",
    )
    if properties:
        props = ET.SubElement(suite, "properties")
        for key, value in properties.items():
            ET.SubElement(props, "property", name=key, value=value)
    for c in cases:
        case = ET.SubElement(suite, "testcase", classname=c.classname, name=c.name)
        if c.seconds is not None:
            case.set("time", f"{c.seconds:.3f}")
        if c.outcome != "passed":
            ET.SubElement(case, c.outcome, message=c.message).text = c.detail
        if c.output is not None:
            ET.SubElement(case, "system-out").text = c.output
    root = suite
    if testsuites:
        root = ET.Element("testsuites")
        root.append(suite)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
