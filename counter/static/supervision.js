// The supervisor view: one card per dataset of /api/supervision/*, over a period and
// optional department and service. Each card draws its rows with Apache ECharts (vendored
// by `make vendor-echarts` into /static/vendor/echarts/, no CDN), shows the same rows as a
// table on a toggle, and links the same table as a CSV file (format=csv). The conflicts
// are a list an inspector opens case by case (/?case=<id> opens the case card).
// docs/supervisor.md says what each figure means.

import * as echarts from "./vendor/echarts/echarts.esm.min.js";
import { ApiError, deptName, fmtTime, getJSON, h, loadDepartments, staffHeader } from "./common.js";
import { applyI18n, code, langToggle, onLangChange, t } from "./i18n.js";

const $ = (id) => document.getElementById(id);
const PAGE = 20; // conflicts per page
const CLOSED = ["approved", "partially_approved", "rejected", "withdrawn"];
const COLORS = {
  on_track: "#1e8e3e", due_soon: "#e3a008", overdue: "#c5221f", paused: "#3b6fb6",
  on_time: "#5aa9a0", late: "#7a1f1f", accepted: "#1f4e8c", open_at_end: "#6b7785",
  approved: "#1e8e3e", partially_approved: "#8bc34a", rejected: "#c5221f", withdrawn: "#9aa5b1",
};

const CARDS = [
  { id: "cases", title: "sup.cases", note: "sup.cases_note", wide: true, option: casesOption },
  { id: "sla", title: "sup.sla", note: "sup.sla_note", wide: true, option: slaOption },
  { id: "open-cases", title: "sup.open_cases", note: "sup.open_cases_note", option: openOption },
  { id: "decision-times", title: "sup.decision", note: "sup.decision_note", option: decisionOption },
  { id: "avoidable", title: "sup.avoidable", note: "sup.avoidable_note", option: avoidableOption },
  { id: "resubmitted", title: "sup.resubmitted", note: "sup.resubmitted_note", option: resubmittedOption },
  { id: "dead-letters", title: "sup.dead", note: "sup.dead_note", wide: true, option: deadOption },
  { id: "conflicts", title: "sup.conflicts", note: "sup.conflicts_note", wide: true, list: true },
];

const state = {
  scope: { from: "", to: "", department: "", service_code: "" },
  today: null,
  data: {}, // dataset -> its answer
  table: {}, // dataset -> true while its table is shown instead of its chart
  charts: {}, // dataset -> ECharts instance
  offset: 0, // of the conflicts list
  services: [],
};

// ------------------------------------------------------------------ helpers

function params(extra = {}) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries({ ...state.scope, ...extra })) if (v !== "" && v !== null && v !== undefined) p.set(k, v);
  return p.toString();
}

function message(text, kind = "error") {
  const m = $("sup-message");
  m.hidden = !text;
  m.className = `message message-${kind}`;
  m.textContent = text || "";
}

function shiftDay(day, days) {
  const d = new Date(`${day}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + days);
  return d.toISOString().slice(0, 10);
}

const dayLabel = (d) => d.slice(5); // MM-DD
/** A category axis of departments: every name shown, slanted when they are many. */
const deptAxis = (names) => ({
  type: "category", data: names, axisLabel: { interval: 0, rotate: names.length > 6 ? 30 : 0 },
});
const material = (r) => r.name || code("material", r.material_type);

function base(extra = {}) {
  return {
    animation: false,
    tooltip: { trigger: "axis", renderMode: "richText", confine: true },
    legend: { top: 0, type: "scroll" },
    grid: { left: 8, right: 16, top: 36, bottom: 8, containLabel: true },
    ...extra,
  };
}

// ------------------------------------------------------------------ chart options

function casesOption(rows) {
  const x = rows.map((r) => dayLabel(r.day));
  return base({
    xAxis: { type: "category", data: x },
    yAxis: { type: "value", minInterval: 1 },
    series: [
      { name: t("sup.s.accepted"), type: "bar", data: rows.map((r) => r.accepted), itemStyle: { color: COLORS.accepted } },
      ...CLOSED.map((k) => ({
        name: t(`sup.c.${k}`), type: "bar", stack: "closed", data: rows.map((r) => r[k]), itemStyle: { color: COLORS[k] },
      })),
      { name: t("sup.s.open_at_end"), type: "line", data: rows.map((r) => r.open_at_end), itemStyle: { color: COLORS.open_at_end } },
    ],
  });
}

function slaOption(rows) {
  const x = rows.map((r) => dayLabel(r.day));
  const series = (k, stack) => ({
    name: code("sla", k.toUpperCase()), type: "bar", stack, data: rows.map((r) => r[k]), itemStyle: { color: COLORS[k] },
  });
  return base({
    xAxis: { type: "category", data: x },
    yAxis: { type: "value", minInterval: 1 },
    series: [...["on_track", "due_soon", "overdue", "paused"].map((k) => series(k, "open")),
      ...["on_time", "late"].map((k) => series(k, "closed"))],
  });
}

function openOption(rows) {
  return base({
    legend: { show: false },
    xAxis: { type: "value", minInterval: 1 },
    yAxis: { type: "category", inverse: true, data: rows.map((r) => code("status", r.status)) },
    series: [{ name: t("sup.c.cases"), type: "bar", data: rows.map((r) => r.cases), itemStyle: { color: COLORS.accepted } }],
  });
}

function decisionOption(rows) {
  const y = rows.map((r) => deptName(r.department));
  const bar = (key, label, color) => ({ name: t(label), type: "bar", data: rows.map((r) => r[key]), itemStyle: { color } });
  return base({
    xAxis: { type: "value", name: "h" },
    yAxis: { type: "category", inverse: true, data: y },
    series: [bar("active_median_h", "sup.s.active_median", "#1f4e8c"), bar("active_p90_h", "sup.s.active_p90", "#7ea6d8"),
      bar("paused_median_h", "sup.s.paused_median", "#b26a00"), bar("paused_p90_h", "sup.s.paused_p90", "#f0c27a")],
  });
}

function avoidableOption(rows) {
  const depts = [...new Set(rows.map((r) => r.department))];
  const types = [...new Set(rows.map((r) => r.material_type))];
  const cell = (d, ty) => rows.find((r) => r.department === d && r.material_type === ty)?.avoidable ?? 0;
  const share = depts.map((d) => {
    const mine = rows.filter((r) => r.department === d);
    const n = mine.reduce((s, r) => s + r.submissions, 0);
    return n ? Math.round((1000 * mine.reduce((s, r) => s + r.avoidable, 0)) / n) / 10 : 0;
  });
  return base({
    xAxis: deptAxis(depts.map(deptName)),
    yAxis: [{ type: "value", minInterval: 1 }, { type: "value", max: 100, axisLabel: { formatter: "{value}%" } }],
    series: [...types.map((ty) => ({ name: code("material", ty), type: "bar", stack: "avoidable", data: depts.map((d) => cell(d, ty)) })),
      { name: t("sup.s.share"), type: "line", yAxisIndex: 1, data: share, itemStyle: { color: "#c5221f" } }],
  });
}

function resubmittedOption(rows) {
  return base({
    xAxis: { type: "value", minInterval: 1 },
    yAxis: { type: "category", inverse: true, data: rows.map(material) },
    series: [
      { name: t("sup.c.avoidable"), type: "bar", data: rows.map((r) => r.avoidable), itemStyle: { color: "#b26a00" } },
      { name: t("sup.c.pages"), type: "bar", data: rows.map((r) => r.pages), itemStyle: { color: "#f0c27a" } },
    ],
  });
}

function deadOption(rows) {
  const depts = [...new Set(rows.map((r) => r.department))];
  const reasons = [...new Set(rows.map((r) => r.reason))];
  const cell = (d, why) => rows.find((r) => r.department === d && r.reason === why)?.dead_letters ?? 0;
  return base({
    xAxis: deptAxis(depts.map((d) => (d ? deptName(d) : "—"))),
    yAxis: { type: "value", minInterval: 1 },
    series: reasons.map((why) => ({ name: why, type: "bar", stack: "dead", data: depts.map((d) => cell(d, why)) })),
  });
}

// ------------------------------------------------------------------ tables

function caseLink(id) {
  if (!id) return "—";
  return h("a", { href: `/?case=${encodeURIComponent(id)}`, target: "_blank", rel: "noopener", class: "mono case-link" }, id);
}

function cellOf(col, value) {
  if (value === null || value === undefined || value === "") return "—";
  if (col === "department" || col === "department_a" || col === "department_b") return deptName(value);
  if (col === "status") return code("status", value);
  if (col === "material_type") return code("material", value);
  if (col === "share") return `${(100 * value).toFixed(1)}%`;
  if (col === "holders_differ") return t(value ? "sup.yes" : "sup.no");
  if (col === "differing_fields") return value.join(", ") || "—";
  if (col === "found_at") return fmtTime(value);
  if (col === "case_a" || col === "case_b") return caseLink(value);
  return String(value);
}

function table(body) {
  if (!body.rows.length) return h("p", { class: "sup-empty" }, t("sup.empty"));
  return h("table", { class: "sup-table" },
    h("thead", {}, h("tr", {}, body.columns.map((c) => h("th", { dataset: { col: c } }, t(`sup.c.${c}`))))),
    h("tbody", {}, body.rows.map((r) => h("tr", {}, body.columns.map((c) => h("td", {
      class: typeof r[c] === "number" ? "num" : null,
    }, cellOf(c, r[c])))))));
}

// ------------------------------------------------------------------ cards

function buildCards() {
  $("sup-charts").replaceChildren(...CARDS.map((spec) => {
    const tools = h("div", { class: "sup-tools" },
      spec.list ? null : h("button", {
        type: "button", class: "secondary sup-toggle", id: `toggle-${spec.id}`, onclick: () => toggle(spec),
      }, t("sup.table")),
      h("a", {
        class: "button sup-csv", id: `csv-${spec.id}`, href: `/api/supervision/${spec.id}?format=csv`, download: "", "data-i18n": "sup.csv",
      }, t("sup.csv")));
    return h("article", {
      class: `sup-card${spec.wide ? " wide" : ""}`, id: `card-${spec.id}`, dataset: { dataset: spec.id, view: spec.list ? "table" : "chart" },
    },
    h("div", { class: "sup-head" }, h("h2", { "data-i18n": spec.title }, t(spec.title)), tools),
    h("p", { class: "sup-note", "data-i18n": spec.note }, t(spec.note)),
    spec.list ? null : h("div", { class: "sup-chart", id: `chart-${spec.id}`, role: "img", "aria-label": t(spec.title) }),
    h("div", { class: "sup-table-wrap", id: `table-${spec.id}`, hidden: !spec.list }),
    spec.list ? h("div", { class: "sup-pager", id: `pager-${spec.id}` }) : null);
  }));
}

function toggle(spec) {
  state.table[spec.id] = !state.table[spec.id];
  const shown = state.table[spec.id];
  $(`card-${spec.id}`).dataset.view = shown ? "table" : "chart";
  $(`chart-${spec.id}`).hidden = shown;
  $(`table-${spec.id}`).hidden = !shown;
  $(`toggle-${spec.id}`).textContent = t(shown ? "sup.chart" : "sup.table");
  if (!shown) state.charts[spec.id]?.resize();
}

function render(spec) {
  const body = state.data[spec.id];
  if (!body) return;
  const card = $(`card-${spec.id}`);
  card.dataset.rows = String(body.rows.length);
  const extra = spec.list ? { limit: PAGE, offset: state.offset } : {};
  $(`csv-${spec.id}`).href = `/api/supervision/${spec.id}?${params({ ...extra, format: "csv" })}`;
  $(`table-${spec.id}`).replaceChildren(table(body));
  if (spec.list) {
    renderPager(spec, body);
    return;
  }
  $(`toggle-${spec.id}`).textContent = t(state.table[spec.id] ? "sup.chart" : "sup.table");
  const el = $(`chart-${spec.id}`);
  let chart = state.charts[spec.id];
  if (!chart) {
    chart = echarts.init(el, null, { renderer: "canvas" });
    state.charts[spec.id] = chart;
  }
  chart.setOption(spec.option(body.rows), { notMerge: true });
}

function renderPager(spec, body) {
  const prev = body.offset > 0 ? h("button", {
    type: "button", class: "secondary", id: "conflicts-prev",
    onclick: () => loadConflicts(Math.max(0, body.offset - PAGE)),
  }, t("sup.prev")) : null;
  const next = body.next_offset !== null ? h("button", {
    type: "button", class: "secondary", id: "conflicts-next", onclick: () => loadConflicts(body.next_offset),
  }, t("sup.more")) : null;
  $(`pager-${spec.id}`).replaceChildren(
    ...[h("span", {}, t("sup.conflicts_total", { n: body.total })), prev, next].filter(Boolean));
}

// ------------------------------------------------------------------ loading

function failed(err) {
  if (err instanceof ApiError && err.status === 401) return; // on the way to /login
  if (err instanceof ApiError && err.status === 422) {
    const detail = (err.body?.detail || []).map((d) => `${d.loc?.at(-1)}: ${d.msg}`).join("; ");
    message(t("sup.invalid", { detail }));
  } else {
    message(t("sup.error"));
  }
}

async function loadConflicts(offset) {
  state.offset = offset;
  try {
    state.data.conflicts = await getJSON(`/api/supervision/conflicts?${params({ limit: PAGE, offset })}`);
    render(CARDS.find((c) => c.id === "conflicts"));
  } catch (err) {
    failed(err);
  }
}

function fillServices() {
  const sel = $("f-service");
  const chosen = state.scope.service_code;
  const known = state.services.some((s) => s.service_code === chosen);
  sel.replaceChildren(h("option", { value: "" }, t("sup.all_services")),
    ...state.services.map((s) => h("option", { value: s.service_code }, `${s.service_name || s.service_code} (${s.cases})`)),
    chosen && !known ? h("option", { value: chosen }, chosen) : null);
  sel.value = chosen;
}

async function loadAll() {
  message("");
  state.offset = 0;
  history.replaceState(null, "", `/supervision${params() ? `?${params()}` : ""}`);
  const answers = await Promise.allSettled(CARDS.map((spec) => getJSON(
    `/api/supervision/${spec.id}?${params(spec.list ? { limit: PAGE, offset: 0 } : {})}`)));
  let error = null;
  answers.forEach((a, i) => {
    if (a.status === "fulfilled") {
      state.data[CARDS[i].id] = a.value;
    } else {
      error = error || a.reason;
    }
  });
  if (error) {
    failed(error);
    return;
  }
  const scope = answers[0].value.scope;
  state.today = scope.today;
  Object.assign(state.scope, { from: scope.from, to: scope.to });
  $("f-from").value = scope.from;
  $("f-to").value = scope.to;
  for (const spec of CARDS) render(spec);
  try {
    state.services = (await getJSON(`/api/supervision/services?${params({ service_code: "" })}`)).rows;
  } catch {
    state.services = [];
  }
  fillServices();
  document.body.dataset.loaded = String(Date.now());
}

function fillDepartments(depts) {
  const sel = $("f-department");
  sel.replaceChildren(h("option", { value: "" }, t("sup.all_departments")),
    ...Object.keys(depts).sort().map((c) => h("option", { value: c }, deptName(c))));
  sel.value = state.scope.department;
}

// ------------------------------------------------------------------ start

function start() {
  applyI18n();
  langToggle($("lang"));
  const p = new URLSearchParams(location.search);
  for (const k of Object.keys(state.scope)) state.scope[k] = p.get(k) || "";
  buildCards();
  $("sup-filters").addEventListener("submit", (ev) => {
    ev.preventDefault();
    Object.assign(state.scope, {
      from: $("f-from").value, to: $("f-to").value,
      department: $("f-department").value, service_code: $("f-service").value,
    });
    loadAll();
  });
  for (const b of document.querySelectorAll(".quick button")) {
    b.addEventListener("click", () => {
      const to = state.today || $("f-to").value;
      if (!to) return;
      // the period the button names, for the department and service the form shows (a
      // newcomer chose a department, clicked 近7天 and got every department's charts)
      Object.assign(state.scope, {
        from: shiftDay(to, 1 - Number(b.dataset.days)), to,
        department: $("f-department").value, service_code: $("f-service").value,
      });
      loadAll();
    });
  }
  window.addEventListener("resize", () => Object.values(state.charts).forEach((c) => c.resize()));
  staffHeader().then(async () => {
    const depts = await loadDepartments();
    fillDepartments(depts);
    onLangChange(() => {
      fillDepartments(depts);
      fillServices();
      for (const spec of CARDS) render(spec);
    });
    await loadAll();
  }, () => { /* not signed in: on the way to /login */ });
}

start();
