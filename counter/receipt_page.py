"""The acceptance receipt (受理回执) a clerk prints from the case card: the case, its
deadline, where and how to follow it, and the query code the progress lookup asks for.

Plain HTML from a template string with every value escaped; styled for A5 paper by
``/static/receipt.css``; the print button is ``/static/receipt.js`` (the pages' CSP
allows no inline script).
"""

from __future__ import annotations

from html import escape
from typing import Any

__all__ = ["render"]

_TEMPLATE = """<!doctype html>
<html lang="zh-CN">
<head>
  <meta charset="utf-8">
  <meta name="referrer" content="no-referrer">
  <title>受理回执 {case_id}</title>
  <link rel="icon" href="data:,">
  <link rel="stylesheet" href="/static/receipt.css">
  <script type="module" src="/static/receipt.js"></script>
</head>
<body>
  <main class="receipt" id="receipt">
    <h1>政务服务受理回执</h1>
    <dl>
      <dt>办件编号</dt><dd class="mono" id="receipt-case">{case_id}</dd>
      <dt>办理事项</dt><dd>{service_name}</dd>
      <dt>申请人</dt><dd>{applicant}</dd>
      <dt>受理时间</dt><dd>{accepted_at}</dd>
      <dt>承诺办结</dt><dd>{due}</dd>
    </dl>
    <section class="code">
      <p>查询码 / Query code</p>
      <p class="mono big" id="receipt-code">{code}</p>
      <p class="hint">凭办件编号和查询码，可在 {lookup_url} 查询办理进度。请妥善保管本回执，查询码仅印在回执上。</p>
    </section>
    <button type="button" id="print" class="no-print">打印回执</button>
  </main>
</body>
</html>
"""


def render(case: dict[str, Any], code: str, lookup_url: str) -> str:
    """The receipt of ``case`` (the API's case view, ``counter.present.case_out``)."""
    applicant = case.get("applicant") or {}
    promise = case.get("promise")
    promised = f"{promise['amount']} 个{_unit(promise['unit'])}" if promise else None
    if case.get("due_date") and promised:
        due = f"{case['due_date']}（{promised}）"
    else:
        due = case.get("due_date") or (f"受理后 {promised}" if promised else "—")
    values = {
        "case_id": case["case_id"], "service_name": case.get("service_name") or "",
        "applicant": applicant.get("name") or "", "accepted_at": (case.get("accepted_at")
                                                                  or "")[:16].replace("T", " "),
        "due": due, "code": code, "lookup_url": lookup_url,
    }
    return _TEMPLATE.format(**{k: escape(str(v)) for k, v in values.items()})


def _unit(unit: str) -> str:
    return {"WORKING_DAY": "工作日", "NATURAL_DAY": "自然日"}.get(unit, unit)
