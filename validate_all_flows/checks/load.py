"""Load checks: a load flow run through the native flow runner meets the SLOs.

With ``--load VUS`` the flow (``--load-flows FILE``, or the built-in ``flows/load.yaml``: a probe
user's authenticated reads) runs against the service with ``blocktrust_native.flows.run_flow``;
each SLO objective becomes one check with the measured value against the target as evidence.
The objectives are judged per request, as an API's SLOs are:

- ``load.p95``: the 95th percentile of request latency (all steps merged) <= ``--p95-ms``;
- ``load.error_rate``: failed requests (no answer, 5xx, or an assert of the spec not met)
  / requests <= ``--error-rate``;
- ``load.availability``: requests answered without a 5xx / requests >= ``--availability``.

Without ``--load`` the three are skipped with the reason. A spec that uses ``{{probe_token}}``
gets the access token of one probe user that this module registers and logs in before the run
(one register and one login: far under the reference API's limits, which reads do not spend).
"""

from __future__ import annotations

import argparse
import bisect
import json
import re
import secrets
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from validate_all_flows.check_model import CHECK_IDS, CheckResult, Status, check
from validate_all_flows.httpcall import HttpResult, call
from validate_all_flows.target import DeploymentSlo, LoadPlan, Target

if TYPE_CHECKING:
    from blocktrust_native.flows import FlowSpec, Report

# blocktrust_native is imported where it is used, so that --help works without the native module.

__all__ = [
    "BUILTIN_LOAD_SPEC",
    "CURVE_PERCENTILES",
    "HISTOGRAM_BINS",
    "PROBE_VAR",
    "add_load_arguments",
    "judge_load",
    "latency_data",
    "load_plan",
    "parse_shard",
    "shard_share",
    "slo_under_load",
    "spec_with_vars",
]

#: The built-in load flow (shipped in the wheel).
BUILTIN_LOAD_SPEC = Path(__file__).resolve().parents[1] / "flows" / "load.yaml"
#: The variable through which a spec receives the probe user's access token.
PROBE_VAR = "probe_token"

_IDS = CHECK_IDS["load"]["slo_under_load"]


def add_load_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds --load, --load-duration, --load-rate and --load-flows to the command line."""

    def positive(kind: type[int] | type[float]) -> Callable[[str], int | float]:
        def parse(text: str) -> int | float:
            try:
                value = kind(text)
            except ValueError:
                raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
            if not value > 0 or value == float("inf"):
                raise argparse.ArgumentTypeError(f"must be > 0: {text!r}")
            return value

        return parse

    g = parser.add_argument_group(
        "load (off unless --load is given; judged with the objectives above)"
    )
    g.add_argument(
        "--load",
        metavar="VUS",
        type=positive(int),
        help="run the load flow with VUS virtual users, each looping through it for "
        "--load-duration seconds (closed model), and check the SLOs per request",
    )
    g.add_argument(
        "--load-duration",
        metavar="S",
        type=positive(float),
        help="how long the load runs, in seconds (default 30)",
    )
    g.add_argument(
        "--load-rate",
        metavar="R",
        type=positive(float),
        help="open model instead: start R iterations per second, at most VUS in flight "
        "(latency counts from each scheduled start, so queueing shows)",
    )
    g.add_argument(
        "--shard",
        metavar="K/N",
        help="run shard K of N (K from 0, e.g. $JOB_COMPLETION_INDEX/4): this process takes "
        "its share of the VUs (and 1/N of --load-rate); merge the parts with "
        "`python -m validate_all_flows merge part*.json`",
    )
    g.add_argument(
        "--load-output",
        metavar="FILE",
        help="also write the load run's report (histograms included) to FILE as JSON, "
        "for `validate_all_flows merge`",
    )
    g.add_argument(
        "--load-flows",
        metavar="FILE",
        help="a flow spec (YAML/JSON, docs/tour_flows.md) to run instead of the built-in one "
        "(authenticated reads of the reference API as one probe user, {{probe_token}})",
    )


def load_plan(
    args: argparse.Namespace,
    progress: Callable[[str], None] | None = None,
    *,
    option_prefix: str = "--",
) -> LoadPlan | None:
    """The LoadPlan of the parsed arguments (None without --load); ValueError names a bad one.

    ``args`` has load, load_duration, load_rate and load_flows (None when not given); messages
    name the options as ``option_prefix + "load-rate"``. The spec is loaded and validated here,
    so a bad --load-flows stops before anything starts.
    """
    if args.load is None:
        extra = [
            option_prefix + n.replace("_", "-")
            for n in ("load_duration", "load_rate", "load_flows", "shard", "load_output")
            if getattr(args, n, None) is not None
        ]
        if extra:
            raise ValueError(f"{', '.join(extra)} given without {option_prefix}load VUS")
        return None
    from blocktrust_native.errors import FlowSpecError

    if args.load < 1:
        raise ValueError(f"{option_prefix}load: needs at least 1 virtual user")
    plan = LoadPlan(vus=args.load, rate=args.load_rate, progress=progress)
    if getattr(args, "shard", None) is not None:
        k, n = parse_shard(args.shard, option_prefix + "shard")
        plan.shard = (k, n)
        plan.vus = shard_share(args.load, k, n)
        if plan.vus < 1:
            raise ValueError(
                f"{option_prefix}shard {args.shard}: {args.load} VU(s) cannot be shared by {n} "
                "shards (give at least one VU per shard)"
            )
        if plan.rate is not None:
            plan.rate = plan.rate / n
    if getattr(args, "load_output", None):
        plan.output = Path(args.load_output)
        if not plan.output.parent.is_dir():
            raise ValueError(
                f"{option_prefix}load-output {args.load_output}: no directory {plan.output.parent}"
            )
    if args.load_duration is not None:
        plan.duration_s = args.load_duration
    if args.load_flows:
        plan.flows = Path(args.load_flows)
    try:
        _load_spec(plan.flows or BUILTIN_LOAD_SPEC, lambda: "placeholder")
    except FlowSpecError as exc:
        raise ValueError(f"{option_prefix}load-flows: {exc}") from None
    return plan


def parse_shard(text: str, option: str = "--shard") -> tuple[int, int]:
    """(K, N) of "K/N" with 0 <= K < N; ValueError names the option and what is wrong."""
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text or "")
    if m is None:
        raise ValueError(f"{option} {text!r}: expected K/N, e.g. 0/4 (K counts from 0)")
    k, n = int(m.group(1)), int(m.group(2))
    if n < 1 or k >= n:
        raise ValueError(f"{option} {text!r}: K must be in 0..N-1 and N at least 1")
    return k, n


def shard_share(total: int, k: int, n: int) -> int:
    """Shard k's share of ``total`` VUs: as even as it gets, the first ones take the rest."""
    return total // n + (1 if k < total % n else 0)


def _uses(data: object, name: str) -> bool:
    return re.search(r"\{\{\s*" + re.escape(name) + r"\s*\}\}", json.dumps(data)) is not None


def spec_with_vars(
    source: FlowSpec | Mapping[str, Any] | str | Path,
    variables: Mapping[str, str] | None = None,
) -> FlowSpec:
    """A FlowSpec from a FlowSpec, a spec dict or a YAML/JSON file, with ``variables`` added.

    ``variables`` are values known only at run time (a token, an id), set literally (never
    rendered as templates; see ``FlowSpec.from_dict(vars=...)``), so the spec refers to them as
    ``{{name}}`` and they never need to sit in the file. FlowSpecError names a bad spec.
    """
    from blocktrust_native.errors import FlowSpecError
    from blocktrust_native.flows import FlowSpec

    if isinstance(source, FlowSpec):
        if variables:
            raise FlowSpecError("variables need a spec dict or file, not a built FlowSpec")
        return source
    if isinstance(source, (str, Path)):
        return FlowSpec.load(source, vars=variables)
    return FlowSpec.from_dict(source, vars=variables)


def _load_spec(path: Path, probe_token: Callable[[], str]) -> FlowSpec:
    """The spec at ``path``; ``probe_token()`` is called only when the spec uses it."""
    from blocktrust_native.flows import FlowSpec

    data = FlowSpec.read_document(path)
    uses = isinstance(data, Mapping) and _uses(data, PROBE_VAR)
    return FlowSpec.from_dict(
        data, base_dir=path.parent, vars={PROBE_VAR: probe_token()} if uses else None
    )


class _SetupFailed(Exception):
    def __init__(self, found: str, evidence: list[str], fix: str) -> None:
        super().__init__(found)
        self.found, self.evidence, self.fix = found, evidence, fix


def _expect(r: HttpResult, status: int, what: str) -> Any:
    if r.status == status:
        return r.json() or {}
    body = r.body[:200].decode(errors="replace")
    retry = r.headers.get("retry-after")
    fix = (
        f"the API's rate limit refused it: retry in {retry or 'a while'} s, or give "
        "--load-flows with a spec that reads an existing user's token from {{env.NAME}}"
        if r.status == 429
        else f"see the service log for {what}"
    )
    raise _SetupFailed(
        f"the load's probe user could not be set up: {what} answered {r.status or r.error}",
        [body] if body else [],
        fix,
    )


def _probe_token(t: Target) -> str:
    """Registers and logs in one probe user; returns its access token (a secret)."""
    assert t.base_url
    url = t.base_url.rstrip("/")
    email = f"load-probe-{uuid.uuid4().hex[:12]}@validate.example"
    password = "Load-" + secrets.token_urlsafe(18)
    t.add_secrets([password])
    body = {"email": email, "password": password}
    _expect(
        call("POST", url + "/api/auth/register", json_body=body), 201, "POST /api/auth/register"
    )
    got = _expect(
        call("POST", url + "/api/auth/login", json_body=body), 200, "POST /api/auth/login"
    )
    token = str(got.get("access_token") or "")
    if not token:
        raise _SetupFailed(
            "the load's probe user could not be set up: the login answer has no access_token",
            [],
            "the login must answer {access_token: ...} as the reference API does",
        )
    t.add_secrets([token])
    return token


def _progress(plan: LoadPlan) -> Callable[[dict[str, Any]], object] | None:
    say = plan.progress
    if say is None:
        return None

    meter = getattr(say, "meter", None)  # a validate_all_flows.progress.Progress draws a bar

    def tick(p: dict[str, Any]) -> None:
        failed = int(p.get("failures", 0))
        elapsed = float(p.get("elapsed_s", 0))
        note = (
            f"{elapsed:.0f}/{plan.duration_s:.0f} s, "
            f"{int(p.get('requests', 0))} requests, {failed} failed, "
            f"{int(p.get('active', 0))} in flight"
        )
        if meter is not None:
            meter("load", elapsed, plan.duration_s, note)
        else:
            say(f"load: {note}")

    return tick


def _measure(report: Report) -> tuple[float, int, int, int]:
    """(p95 ms over every request, requests, failed requests, requests without an answer or
    with a 5xx)."""
    from blocktrust_native.flows import Histogram

    merged = Histogram()
    unavailable = 0
    for st in report.steps:
        merged.merge(st.histogram())
        answered = sum(st.status_counts.values())
        unavailable += (st.requests - answered) + sum(
            n for code, n in st.status_counts.items() if code >= 500
        )
    p95 = merged.percentile_us(95) / 1000.0 if merged.count else 0.0
    return p95, report.requests, report.failed_requests, unavailable


#: The percentiles of each step's latency curve in ``CheckResult.data`` (what reports draw).
CURVE_PERCENTILES = (0.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.5, 99.9)
#: How many logarithmic bins each step's latency histogram has in ``CheckResult.data``.
HISTOGRAM_BINS = 20
_MAX_SAMPLES = 20000  # quantiles read back per step; every request while a step has fewer


def latency_data(report: Report, p95_objective_ms: float) -> dict[str, Any]:
    """Per step: requests, the latency curve at CURVE_PERCENTILES and a histogram of
    HISTOGRAM_BINS log-spaced bins from the fastest to the slowest request (ms)."""
    steps = []
    for st in report.steps:
        h = st.histogram()
        n = h.count
        curve = [[p, h.percentile_us(p) / 1000.0] for p in CURVE_PERCENTILES] if n else []
        lo, hi = max(h.min_us, 1) / 1000.0, max(h.max_us, 1) / 1000.0
        hi = max(hi, lo * 1.01)
        edges = [lo * (hi / lo) ** (i / HISTOGRAM_BINS) for i in range(HISTOGRAM_BINS + 1)]
        counts = [0] * HISTOGRAM_BINS
        # The histogram keeps 3 significant digits per request; reading back the value at each
        # request's rank (at most _MAX_SAMPLES ranks, each then weighing n / samples) bins them.
        samples = min(n, _MAX_SAMPLES)
        for k in range(samples):
            v = h.percentile_us(100.0 * (k + 0.5) / samples) / 1000.0
            counts[min(max(bisect.bisect_right(edges, v) - 1, 0), HISTOGRAM_BINS - 1)] += 1
        if samples and samples < n:
            counts = [round(c * n / samples) for c in counts]
        steps.append(
            {
                "name": st.name,
                "requests": n,
                "percentiles": curve,
                "histogram": {"edges_ms": edges, "counts": counts},
            }
        )
    return {"p95_objective_ms": p95_objective_ms, "steps": steps}


def _evidence(t: Target, report: Report, plan: LoadPlan) -> list[str]:
    model = (
        f"open model, {plan.rate:g} iterations/s, at most {plan.vus} in flight"
        if plan.rate
        else f"{plan.vus} virtual user(s)"
    )
    lines = [
        f"{report.flow_name}: {model}, {report.elapsed_s:.1f} s, {report.iterations} iterations "
        f"({report.failed_iterations} failed), {report.requests} requests, "
        f"{report.requests_per_s:.1f} requests/s",
        f"flow p95 (whole iteration): {report.flow_latency['p95_ms']:.1f} ms",
    ]
    for st in report.steps:
        codes = ", ".join(f"{c}: {n}" for c, n in sorted(st.status_counts.items()))
        lines.append(
            f"step {st.name}: {st.requests} requests, {st.failures} failed, "
            f"p95 {st.percentile_ms(95):.1f} ms, statuses {{{codes}}}"
            + (f", errors {st.errors}" if st.errors else "")
        )
    if report.retries:
        lines.append(
            f"retries: {report.retries} request(s) resent after a kept-alive connection closed "
            "before any answer (idempotent methods only; a POST or PATCH is never resent)"
        )
    for f in report.failures[:5]:
        lines.append(
            f"failure: step {f.step}, vu {f.vu}, iteration {f.iteration}, status {f.status}: "
            f"{f.reason}"
        )
    return [t.redact(line) for line in lines]


def _titles(slo: DeploymentSlo) -> dict[str, str]:
    return {
        "load.p95": f"p95 request latency under load <= {slo.p95_ms:g} ms",
        "load.error_rate": f"request error rate under load <= {slo.error_rate:.2%}",
        "load.availability": f"availability under load >= {slo.availability:.2%}",
    }


@check("load")
def slo_under_load(t: Target) -> list[CheckResult]:
    """Under --load, the flow meets the SLOs (p95 latency, error rate, availability)."""
    from blocktrust_native.errors import FlowSpecError
    from blocktrust_native.flows import run_flow

    slo = t.slo
    titles = _titles(slo)

    def every(status: Status, found: str, evidence: list[str], fix: str = "") -> list[CheckResult]:
        return [CheckResult(i, titles[i], status, found, list(evidence), fix) for i in _IDS]

    plan = t.load
    if plan is None:
        return every(Status.SKIP, "load not requested (--load VUS)", [])
    if not t.base_url:
        return every(Status.SKIP, "no service given (--base-url)", [])
    path = plan.flows or BUILTIN_LOAD_SPEC
    try:
        spec = _load_spec(path, lambda: _probe_token(t))
    except FlowSpecError as exc:
        return every(Status.ERROR, t.redact(f"the load flow is not valid: {exc}"), [], "fix it")
    except _SetupFailed as exc:
        return every(
            Status.ERROR, t.redact(exc.found), [t.redact(e) for e in exc.evidence], exc.fix
        )
    if plan.progress:
        plan.progress(
            f"load: flow {spec.name!r} on {t.base_url}, {plan.vus} VU(s) for {plan.duration_s:g} s"
            + (f" at {plan.rate:g} iterations/s" if plan.rate else "")
        )
    report = run_flow(
        spec,
        t.base_url,
        vus=plan.vus,
        duration=plan.duration_s,
        rate=plan.rate,
        progress=_progress(plan),
        request_timeout=10.0,
    )
    evidence = _evidence(t, report, plan)
    if plan.output is not None:
        part = report.to_dict()
        part["shard"] = {"index": plan.shard[0], "count": plan.shard[1]} if plan.shard else None
        part["base_url"] = t.base_url
        try:
            plan.output.write_text(t.redact(json.dumps(part, indent=1)) + "\n")
        except OSError as exc:
            evidence.append(f"could not write --load-output {plan.output}: {exc.strerror}")
            return every(Status.ERROR, f"--load-output {plan.output}: {exc.strerror}", evidence)
    if report.interrupted:
        return every(Status.ERROR, "the load run was interrupted (Ctrl-C)", evidence)
    return judge_load(report, slo, evidence)


def judge_load(report: Report, slo: DeploymentSlo, evidence: list[str]) -> list[CheckResult]:
    """The three load checks for a finished (possibly merged) report against ``slo``."""
    from blocktrust_native.flows import Verdict

    titles = _titles(slo)
    p95, requests, failed, unavailable = _measure(report)
    if requests == 0:
        return [
            CheckResult(
                i,
                titles[i],
                Status.FAIL,
                "no request completed during the load run",
                list(evidence),
                "make the service answer within 10 s, or lengthen --load-duration",
            )
            for i in _IDS
        ]
    error_rate, availability = failed / requests, 1 - unavailable / requests
    # One judge for every SLO verdict: zero samples never pass (blocktrust_native.flows.Verdict).
    judged = {
        "load.p95": Verdict.judge("p95", p95, slo.p95_ms, samples=requests),
        "load.error_rate": Verdict.judge(
            "error rate", error_rate, slo.error_rate, samples=requests
        ),
        "load.availability": Verdict.judge(
            "availability", availability, slo.availability, samples=requests, at_least=True
        ),
    }
    out = []
    curves = latency_data(report, slo.p95_ms)
    for cid, found, fix in (
        (
            "load.p95",
            f"p95 {p95:.1f} ms (target <= {slo.p95_ms:g} ms) over {requests} requests",
            "the service is slower than the objective under this load: profile the slowest "
            "step, add workers or capacity",
        ),
        (
            "load.error_rate",
            f"error rate {error_rate:.2%} ({failed} of {requests} requests failed; "
            f"target <= {slo.error_rate:.2%})",
            "see the failures in the evidence: 5xx, refused connections or failed asserts",
        ),
        (
            "load.availability",
            f"availability {availability:.2%} ({unavailable} of {requests} requests without "
            f"an answer or with a 5xx; target >= {slo.availability:.2%})",
            "the service errs or drops connections under load: see its logs and capacity",
        ),
    ):
        passed = judged[cid].passed
        status = Status.PASS if passed else Status.FAIL
        res = CheckResult(cid, titles[cid], status, found, evidence, "" if passed else fix)
        if cid == "load.p95":
            res.data = {"latency": curves}
        out.append(res)
    return out
