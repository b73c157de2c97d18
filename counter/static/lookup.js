// 办件进度查询: the citizen's page (public, no sign-in). Case number + the query code printed
// on the acceptance receipt (XXXX-XXXX; case, blanks and the hyphen do not matter); the
// answer is a reduced view with the name and the ID masked.

import { ApiError, chip, daysText, deptName, fmtTime, h, loadDepartments, postJSON } from "./common.js";
import { applyI18n, code, lang, langToggle, onLangChange, t } from "./i18n.js";

const $ = (id) => document.getElementById(id);
let last = null; // the last answer shown
let query = null; // {case_id, query_code} of that answer (kept in memory only)

/**
 * A department's name: from the answer when it carries one (`department_name`,
 * `department_name_en`), else from the registry (`/api/departments`, which needs a signed-in
 * user: a citizen sees the code then).
 */
function dept(x) {
  const named = lang === "en" ? x.department_name_en || x.department_name : x.department_name;
  return named || deptName(x.department);
}

/** What the citizen typed, as the API compares it: no blanks or hyphens, upper case. */
function normaliseCode(text) {
  return text.replace(/[\s-]+/g, "").toUpperCase();
}

function message(text, kind = "info") {
  const m = $("lookup-message");
  m.hidden = !text;
  m.className = `message message-${kind}`;
  m.textContent = text || "";
}

async function lookup(q) {
  message("");
  try {
    last = await postJSON("/api/lookup", q);
    query = q;
    render();
  } catch (err) {
    last = null;
    render();
    if (err instanceof ApiError && err.status === 404) message(t("lookup.not_found"), "warn");
    else if (err instanceof ApiError && err.status === 429) message(t("lookup.limited"), "error");
    else if (err instanceof ApiError && err.status === 422) message(t("lookup.invalid"), "warn");
    else message(t("lookup.error"), "error");
  }
}

function render() {
  const box = $("lookup-result");
  if (!last) {
    box.replaceChildren();
    return;
  }
  const c = last;
  const sla = c.sla_status || "NONE";
  const due = c.closed_at ? fmtTime(c.closed_at) : c.due_at && c.due_at.slice(11, 16) !== "23:59" ? fmtTime(c.due_at) : c.due_date;
  box.replaceChildren(h("article", { class: "lookup-card", id: "lookup-card" },
    h("div", { class: "lookup-head" },
      h("div", { class: "mono case-id" }, c.case_id),
      h("h2", {}, c.service_name || ""),
      h("div", { class: "head-status" },
        h("span", { id: "lookup-status", class: `chip big status-${c.status}`, dataset: { code: c.status } },
          code("status", c.status)),
        chip("sla", c.sla_status))),
    h("dl", { class: "lookup-facts" },
      h("div", { class: "kv" }, h("dt", {}, t("card.applicant")),
        h("dd", { id: "lookup-name" }, c.applicant.name_masked)),
      h("div", { class: "kv" }, h("dt", {}, code("idtype", c.applicant.id_type)),
        h("dd", { id: "lookup-id", class: "mono" }, c.applicant.id_masked || "—")),
      h("div", { class: "kv" }, h("dt", {}, t("card.accepted_at")), h("dd", {}, fmtTime(c.accepted_at))),
      c.paused_since && !c.closed_at
        ? h("div", { class: "kv" }, h("dt", {}, t("card.paused_since")), h("dd", {}, fmtTime(c.paused_since)))
        : h("div", { class: "kv" }, h("dt", {}, c.closed_at ? t("card.closed_at") : t("lookup.due")),
          h("dd", {}, due || "—")),
      h("div", { class: `kv days-kv sla-bg-${sla}` }, h("dt", {}, t("card.deadline")),
        h("dd", { class: `sla-text-${sla}` }, daysText(c)))),
    h("section", {},
      h("h3", {}, t("lookup.departments")),
      h("ul", { class: "lookup-tasks" }, c.tasks.map((x) => h("li", {},
        h("span", { class: "lt-dept" }, dept(x)),
        h("span", { class: "lt-name muted" }, x.name || ""),
        chip("task", x.status))))),
    h("section", {},
      h("h3", {}, t("lookup.steps")),
      h("ol", { class: "steps" }, [...c.steps].reverse().map((s) => h("li", {},
        h("time", {}, fmtTime(s.occurred_at)),
        h("span", {}, dept(s), " · ",
          s.event_type === "TaskUpdated" ? code("task", s.status) : code("event", s.event_type)))))),
    h("p", { class: "privacy muted" }, t("lookup.privacy")),
    h("button", { type: "button", class: "secondary", id: "lookup-refresh", onclick: () => query && lookup(query) },
      t("lookup.refresh"))));
}

function start() {
  applyI18n();
  langToggle($("lang"));
  onLangChange(render);
  loadDepartments();
  $("lookup-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const caseId = $("case-id").value.trim();
    const typed = normaliseCode($("query-code").value);
    if (!caseId || !/^[0-9A-Z]{8}$/.test(typed)) {
      message(t("lookup.invalid"), "warn");
      return;
    }
    lookup({ case_id: caseId, query_code: `${typed.slice(0, 4)}-${typed.slice(4)}` });
  });
}

start();
