"""One self-contained HTML page of an audit: no external assets, inline CSS and a little inline JS.

What it shows, top to bottom: the counts by verdict; workloads and images by distribution and by C
library; a timeline of when workloads reach end of life; the violations with their remedies; and every
container in a table that sorts on a click of its header (or on load, with `?sort=COLUMN&dir=asc|desc`).
Everything from the cluster or the images is escaped: it is data, never markup.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from datetime import date, timedelta
from html import escape

from distroguard.audit.results import VERDICTS, AuditResult, WorkloadResult

TIMELINE_MIN_DAYS = 365
"""The timeline reaches at least this far past today, so near dates are not crowded at its right end."""

_CSS = """
:root{--deny:#c62828;--warn:#ef8f00;--allow:#2e7d32;--muted:#666;--line:#ddd;font-family:system-ui,sans-serif}
body{margin:0 auto;max-width:1200px;padding:1.5rem;color:#222}
h1{margin:.2rem 0}h2{margin-top:2rem;border-bottom:1px solid var(--line);padding-bottom:.3rem}
.meta{color:var(--muted);font-size:.9rem}
.cards{display:flex;gap:1rem;flex-wrap:wrap;margin-top:1rem}
.card{border:1px solid var(--line);border-radius:8px;padding:.7rem 1.2rem;min-width:7rem}
.card .n{font-size:2rem;font-weight:600}.card.deny .n{color:var(--deny)}.card.warn .n{color:var(--warn)}
.card.allow .n{color:var(--allow)}
.cols{display:grid;grid-template-columns:1fr 1fr;gap:2rem}
.bars div.row{display:grid;grid-template-columns:12rem 1fr 5rem;gap:.5rem;align-items:center;margin:.25rem 0}
.bar{background:#5c6bc0;height:.9rem;border-radius:3px}
.tl{position:relative;border-left:1px solid var(--line);border-right:1px solid var(--line);margin:.5rem 0}
.tl .row{position:relative;height:1.6rem;border-bottom:1px dotted #eee}
.tl .label{position:absolute;left:.3rem;top:.2rem;font-size:.8rem;white-space:nowrap;z-index:1}
.tl .dot{position:absolute;top:.35rem;width:.9rem;height:.9rem;border-radius:50%;margin-left:-.45rem}
.tl .span{position:absolute;top:.7rem;height:.2rem;opacity:.4}
.tl .past{background:var(--deny)}.tl .soon{background:var(--warn)}.tl .later{background:var(--allow)}
.tl .today{position:absolute;top:0;bottom:0;width:2px;background:#333;z-index:2}
.axis{display:flex;justify-content:space-between;font-size:.8rem;color:var(--muted)}
.violation{border-left:4px solid var(--warn);padding:.4rem .8rem;margin:.6rem 0;background:#fafafa}
.violation.deny{border-color:var(--deny)}.violation .remedy{margin-top:.3rem;color:#1a237e}
table{border-collapse:collapse;width:100%;font-size:.9rem}
th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid var(--line);vertical-align:top}
th{cursor:pointer;user-select:none;background:#f4f4f4;position:sticky;top:0}
th[aria-sort=ascending]::after{content:" \\25B2"}th[aria-sort=descending]::after{content:" \\25BC"}
.v-deny{color:var(--deny);font-weight:600}.v-warn{color:var(--warn);font-weight:600}.v-allow{color:var(--allow)}
code{font-size:.85em;word-break:break-all}
"""

_JS = """
(function(){
  var table=document.getElementById('containers');
  function key(td){var v=td.getAttribute('data-sort');return v===null?td.textContent:v;}
  function sortBy(col,dir){
    var ths=table.tHead.rows[0].cells,index=-1;
    for(var i=0;i<ths.length;i++){
      if(ths[i].getAttribute('data-key')===col){index=i;ths[i].setAttribute('aria-sort',dir==='desc'?'descending':'ascending');}
      else{ths[i].removeAttribute('aria-sort');}
    }
    if(index<0)return;
    var body=table.tBodies[0],rows=Array.prototype.slice.call(body.rows);
    rows.sort(function(a,b){
      var x=key(a.cells[index]),y=key(b.cells[index]);
      if(x===''&&y!=='')return 1;if(y===''&&x!=='')return -1;
      var r=x.localeCompare(y,undefined,{numeric:true});return dir==='desc'?-r:r;
    });
    rows.forEach(function(r){body.appendChild(r);});
    table.setAttribute('data-sorted',col+':'+dir);
  }
  Array.prototype.forEach.call(table.tHead.rows[0].cells,function(th){
    th.addEventListener('click',function(){
      sortBy(th.getAttribute('data-key'),th.getAttribute('aria-sort')==='ascending'?'desc':'asc');
    });
  });
  var q=new URLSearchParams(window.location.search);
  if(q.get('sort'))sortBy(q.get('sort'),q.get('dir')==='desc'?'desc':'asc');
})();
"""

# The sortable table's columns: (key, title). Verdicts sort by severity through `data-sort`.
COLUMNS = (
    ("namespace", "Namespace"),
    ("workload", "Workload"),
    ("container", "Container"),
    ("image", "Image"),
    ("os", "Distribution"),
    ("libc", "C library"),
    ("eol", "EOL"),
    ("verdict", "Verdict"),
)
_VERDICT_RANK = {"deny": "0", "warn": "1", "allow": "2"}


def _bars(title: str, counts: Counter[str], unit: str) -> str:
    top = max(counts.values(), default=1)
    rows = "".join(
        f'<div class="row" data-name="{escape(name)}" data-count="{n}"><span>{escape(name)}</span>'
        f'<div class="bar" style="width:{100 * n / top:.1f}%"></div><span>{n} {unit}</span></div>'
        for name, n in sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    )
    return f'<div class="bars"><h3>{escape(title)}</h3>{rows or "<p>none</p>"}</div>'


def _distribution_counts(result: AuditResult) -> tuple[Counter[str], Counter[str]]:
    distributions: Counter[str] = Counter()
    libcs: Counter[str] = Counter()
    for item in result.workloads:
        for name in dict.fromkeys(c.image.distribution for c in item.containers):
            distributions[name] += 1
        for name in dict.fromkeys(c.image.libc for c in item.containers):
            libcs[name] += 1
    return distributions, libcs


def _timeline(workloads: Iterable[WorkloadResult], today: date) -> str:
    dated = sorted(
        ((w.eol, w) for w in workloads if w.eol is not None), key=lambda item: (item[0], item[1].ref)
    )
    if not dated:
        return "<p>No workload runs a release with a known end-of-life date.</p>"
    start = min(dated[0][0], today) - timedelta(days=30)
    end = max(dated[-1][0], today + timedelta(days=TIMELINE_MIN_DAYS)) + timedelta(days=30)
    span = (end - start).days

    def x(day: date) -> float:
        return 100 * (day - start).days / span

    rows = []
    for eol, item in dated:
        days = (eol - today).days
        tone = "past" if days <= 0 else "soon" if days <= 180 else "later"
        when = f"EOL {eol.isoformat()}" + (f" ({-days} days ago)" if days <= 0 else f" (in {days} days)")
        left, right = sorted((x(today), x(eol)))
        rows.append(
            f'<div class="row" data-workload="{escape(str(item.ref))}" data-eol="{eol.isoformat()}">'
            f'<span class="label">{escape(item.ref.namespace)}/{escape(item.ref.name)} '
            f"<small>{escape(when)}</small></span>"
            f'<span class="span {tone}" style="left:{left:.2f}%;width:{right - left:.2f}%"></span>'
            f'<span class="dot {tone}" style="left:{x(eol):.2f}%" title="{escape(when)}"></span></div>'
        )
    axis = "".join(f"<span>{year}</span>" for year in range(start.year, end.year + 1))
    return (
        f'<div class="tl" id="timeline"><div class="today" style="left:{x(today):.2f}%" '
        f'title="today {today.isoformat()}"></div>{"".join(rows)}</div><div class="axis">{axis}</div>'
    )


def _violations(workloads: Iterable[WorkloadResult]) -> str:
    items = []
    for item in sorted(workloads, key=lambda w: (_VERDICT_RANK[w.verdict], w.ref)):
        for finding in item.decision.findings:
            if finding.action == "audit":
                continue
            remedy = (
                f'<div class="remedy"><b>Remedy:</b> {escape(finding.suggestion)}</div>'
                if finding.suggestion
                else ""
            )
            items.append(
                f'<div class="violation {finding.action}" data-policy="{escape(finding.policy)}" '
                f'data-workload="{escape(str(item.ref))}">'
                f'<b class="v-{finding.action}">{finding.action.upper()}</b> '
                f"{escape(str(item.ref))}, container <code>{escape(finding.container)}</code>: "
                f"{escape(finding.policy)}/{escape(finding.rule)}"
                f"<div>{escape(finding.message)}</div>{remedy}</div>"
            )
    return "".join(items) or "<p>No violations.</p>"


def _table(workloads: Iterable[WorkloadResult]) -> str:
    head = "".join(f'<th data-key="{key}">{title}</th>' for key, title in COLUMNS)
    rows = []
    for item in workloads:
        for c in item.containers:
            image = c.image
            libc = f"{image.libc} {image.libc_version}".strip()
            eol = image.eol.isoformat() if image.eol else ""
            cells = (
                (item.ref.namespace, None),
                (f"{item.ref.kind}/{item.ref.name}", None),
                (c.container, None),
                (image.image, None),
                (image.distribution if not image.error else f"unresolved: {image.error}", None),
                (libc, None),
                (eol, eol),
            )
            tds = "".join(
                f"<td>{escape(text)}</td>" if sort is None else f'<td data-sort="{sort}">{escape(text)}</td>'
                for text, sort in cells
            )
            rank = _VERDICT_RANK[c.verdict]
            tds += f'<td data-sort="{rank}" class="v-{c.verdict}">{c.verdict}</td>'
            rows.append(f'<tr data-verdict="{c.verdict}">{tds}</tr>')
    return f'<table id="containers"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def render_html(result: AuditResult) -> str:
    today = result.generated.date()
    counts = result.counts()
    where = f"namespace {result.namespace}" if result.namespace else "all namespaces"
    cards = "".join(
        f'<div class="card {key}" id="count-{key}" data-count="{n}"><div class="n">{n}</div>{label}</div>'
        for key, n, label in (
            ("workloads", len(result.workloads), "workloads"),
            *((v, counts[v], v) for v in VERDICTS),
            ("images", len(result.images), "distinct images"),
            ("problems", len(result.problems), "errors"),
        )
    )
    distributions, libcs = _distribution_counts(result)
    problems = "".join(f"<li>{escape(p)}</li>" for p in result.problems)
    policies = ", ".join(escape(p) for p in result.policies) or "none"
    # The machine form rides along for anyone who saves the page and wants the numbers.
    summary = json.dumps({"workloads": len(result.workloads), **{v: counts[v] for v in VERDICTS}})
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>distroguard audit: {escape(result.context or "cluster")}</title>
<style>{_CSS}</style></head>
<body>
<h1>distroguard audit</h1>
<div class="meta">context <b>{escape(result.context or "-")}</b>, {escape(where)};
generated {result.generated.strftime("%Y-%m-%d %H:%M UTC")}; policies: {policies};
EOL data of {result.catalog_snapshot.isoformat()}</div>
<div class="cards">{cards}</div>
{f'<h2>Errors</h2><ul id="problems">{problems}</ul>' if problems else ""}
<h2>What the workloads run</h2>
<div class="cols" id="counts">{_bars("By distribution", distributions, "workloads")}
{_bars("By C library", libcs, "workloads")}</div>
<h2>End of life</h2>
{_timeline(result.workloads, today)}
<h2>Violations</h2>
<div id="violations">{_violations(result.workloads)}</div>
<h2>Every container</h2>
{_table(result.workloads)}
<script type="application/json" id="summary">{summary}</script>
<script>{_JS}</script>
</body></html>
"""
