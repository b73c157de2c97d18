// 访问日志: the auditor's page over the access log. Every filter, the holder's ID number
// among them, goes in the body of POST /api/access-log/query (never in the URL); rows come
// newest first, a page at a time (next_offset).

import { ApiError, h, postJSON, staffHeader } from "./common.js";
import { applyI18n, code, langToggle, onLangChange, t } from "./i18n.js";

const $ = (id) => document.getElementById(id);
const PAGE = 50;

// the actions the counter app writes (counter/*_api.py), offered in the action filter
const ACTIONS = [
  "case.card", "case.read", "case.timeline", "case.receipt", "cases.list", "search",
  "holder.documents", "material.read", "board.read", "feed.open", "lookup", "auth.sign_in",
  "auth.sign_out", "denied", "access_log.read", "dead_letters.read",
];
const ID_TYPES = ["RESIDENT_ID", "USCC", "PASSPORT", "OTHER"];
const RESULT_CLASS = {
  ok: "result-ok", not_found: "result-muted", denied: "result-bad", failed: "result-bad",
  limited: "result-warn", invalid: "result-warn",
};

const state = {
  filters: {}, // the body of the last query, less limit and offset
  offset: 0,
  page: null, // {items, limit, offset, next_offset}
  seq: 0, // the latest query: an older answer arriving late is dropped
};

function message(key, kind = "info") {
  const m = $("audit-message");
  m.hidden = !key;
  m.className = `message message-${kind}`;
  m.textContent = key ? t(key) : "";
}

function fillSelects() {
  const action = $("f-action");
  const keep = action.value;
  action.replaceChildren(h("option", { value: "" }, t("audit.action_any")),
    ...ACTIONS.map((a) => h("option", { value: a }, `${code("action", a)} (${a})`)));
  action.value = keep;
  const type = $("f-id-type");
  const keepType = type.value;
  type.replaceChildren(h("option", { value: "" }, t("audit.holder_none")),
    ...ID_TYPES.map((x) => h("option", { value: x }, code("idtype", x))));
  type.value = keepType;
}

/** A datetime-local value ("2026-03-02T09:15", Beijing time) as ISO-8601 with its offset. */
function instant(value) {
  if (!value) return null;
  return `${value.length === 16 ? `${value}:00` : value}+08:00`;
}

/** The filters of the form, or null (with a message) when they do not make sense. */
function readFilters() {
  const f = {
    since: instant($("f-since").value),
    until: instant($("f-until").value),
    user: $("f-user").value.trim() || null,
    action: $("f-action").value || null,
    target: $("f-target").value.trim() || null,
    holder: null,
  };
  const idType = $("f-id-type").value;
  const idNumber = $("f-id-number").value.trim();
  if (Boolean(idType) !== Boolean(idNumber)) {
    message("audit.holder_missing", "warn");
    return null;
  }
  if (idType) f.holder = { id_type: idType, id_number: idNumber };
  if (f.since && f.until && f.since >= f.until) {
    message("audit.invalid", "warn");
    return null;
  }
  return Object.fromEntries(Object.entries(f).filter(([, v]) => v !== null));
}

async function load() {
  message(null);
  const seq = ++state.seq;
  let page;
  try {
    page = await postJSON("/api/access-log/query", { ...state.filters, limit: PAGE, offset: state.offset });
  } catch (err) {
    if (seq !== state.seq) return;
    if (err instanceof ApiError && err.status === 401) return; // on the way to /login
    state.page = null;
    render();
    message(err instanceof ApiError && err.status === 422 ? "audit.invalid" : "audit.error",
      err instanceof ApiError && err.status === 422 ? "warn" : "error");
    return;
  }
  if (seq !== state.seq) return;
  state.page = page;
  render();
}

function when(s) {
  return s ? `${s.slice(0, 10)} ${s.slice(11, 19)}` : "";
}

/** A long holder target (holder:<type>:<keyed hash>) shortened; the whole in the title. */
function target(value) {
  if (!value) return h("span", { class: "muted" }, "—");
  if (value.startsWith("holder:")) {
    const [, type, hash] = value.split(":");
    return h("span", { class: "mono", title: value },
      `${code("idtype", type) || type} · ${(hash || "").slice(0, 10)}…`);
  }
  return h("span", { class: "mono", title: value }, value);
}

function render() {
  const box = $("audit-result");
  const p = state.page;
  if (!p) {
    box.replaceChildren();
    $("pager").hidden = true;
    return;
  }
  if (p.items.length === 0) {
    box.replaceChildren(h("p", { class: "muted empty", id: "audit-empty" }, t("audit.empty")));
  } else {
    box.replaceChildren(h("table", { class: "audit-table", id: "audit-table" },
      h("thead", {}, h("tr", {},
        ["at", "user", "roles", "action", "target", "result", "client", "detail"]
          .map((c) => h("th", {}, t(`audit.col.${c}`))))),
      h("tbody", {}, p.items.map((r) => h("tr", {
        dataset: { id: String(r.id), action: r.action, target: r.target || "", result: r.result },
      },
      h("td", { class: "nowrap" }, when(r.at)),
      h("td", {}, h("div", {}, r.name), h("div", { class: "muted small mono" }, r.subject)),
      h("td", {}, r.roles.map((x) => t(`role.${x}`)).join(" ")),
      h("td", {}, h("div", {}, code("action", r.action)), h("div", { class: "muted small mono" }, r.action)),
      h("td", {}, target(r.target)),
      h("td", {}, h("span", { class: `chip ${RESULT_CLASS[r.result] || ""}` }, code("result", r.result))),
      h("td", { class: "mono small" }, r.client),
      h("td", { class: "small" }, r.detail || ""))))));
  }
  $("pager").hidden = p.offset === 0 && p.next_offset === null;
  $("audit-prev").disabled = p.offset === 0;
  $("audit-next").disabled = p.next_offset === null;
  $("audit-range").textContent = p.items.length
    ? t("audit.range", { from: p.offset + 1, to: p.offset + p.items.length }) : "";
}

function start() {
  applyI18n();
  fillSelects();
  langToggle($("lang"));
  onLangChange(() => {
    fillSelects();
    render();
  });
  $("audit-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const f = readFilters();
    if (!f) return;
    state.filters = f;
    state.offset = 0;
    load();
  });
  $("audit-reset").addEventListener("click", () => {
    $("audit-form").reset();
    state.filters = {};
    state.offset = 0;
    load();
  });
  $("audit-prev").addEventListener("click", () => {
    state.offset = Math.max(0, state.offset - PAGE);
    load();
  });
  $("audit-next").addEventListener("click", () => {
    if (state.page?.next_offset === null || state.page?.next_offset === undefined) return;
    state.offset = state.page.next_offset;
    load();
  });
  staffHeader().then(load, () => { /* not signed in: on the way to /login */ });
}

start();
