// Shared helpers of the pages: DOM building, the JSON API, time formatting, the live feed.

import { code, lang, t } from "./i18n.js";

/** h("div", {class: "x", onclick: fn}, child, "text", ...) -> an element. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") el.className = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.detail && typeof body.detail === "string" ? body.detail : `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

async function parse(resp) {
  let body = null;
  try {
    body = await resp.json();
  } catch {
    body = null;
  }
  if (!resp.ok) throw new ApiError(resp.status, body);
  return body;
}

export async function getJSON(url) {
  return parse(await fetch(url, { headers: { Accept: "application/json" } }));
}

export async function postJSON(url, data) {
  return parse(await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify(data),
  }));
}

/** "2026-03-02T09:15:00+08:00" -> "2026-03-02 09:15" (the API already speaks Shanghai time). */
export function fmtTime(s) {
  if (!s) return "";
  return `${s.slice(0, 10)} ${s.slice(11, 16)}`;
}

export function fmtShort(s) {
  if (!s) return "";
  return `${s.slice(5, 10)} ${s.slice(11, 16)}`;
}

let departments = null;

/** The department registry {code: {name, name_en}} (fetched once). */
export async function loadDepartments() {
  if (departments === null) {
    try {
      const list = await getJSON("/api/departments");
      departments = Object.fromEntries(list.map((d) => [d.code, d]));
    } catch {
      departments = {};
    }
  }
  return departments;
}

export function deptName(codeValue) {
  const d = departments?.[codeValue];
  if (!d) return codeValue;
  return lang === "en" ? d.name_en : d.name;
}

/** A coloured chip for a case status, task status or SLA status. */
export function chip(kind, value, extra = "") {
  if (!value) return h("span", { class: "chip chip-none" }, "—");
  return h("span", { class: `chip ${kind}-${value} ${extra}`.trim(), dataset: { code: value } },
    code(kind, value));
}

/** The working-days-left text of a case (ScreenCaseOut); hour promises by their due time. */
export function daysText(c) {
  if (c.closed_at) return t("days.closed");
  if (c.paused_since) return t("days.paused");
  const n = c.working_days_left;
  if (n === null || n === undefined) return t("days.none");
  if (c.sla_status === "OVERDUE") return n < 0 ? t("days.over", { n: -n }) : t("days.overdue");
  if (c.promise?.unit === "HOUR" && c.due_at) return t("days.due_at", { time: fmtShort(c.due_at) });
  if (n > 0) return t("days.left", { n });
  return t("days.today");
}

/** Done/total departments of a case. */
export function taskProgress(c) {
  const done = c.tasks.filter((x) => ["APPROVED", "REJECTED", "WITHDRAWN"].includes(x.status));
  return { done: done.length, total: c.tasks.length };
}

/**
 * Follow the change feed (Server-Sent Events, `event: case` {case_id, version, status}).
 * `onCase(change)` per change; `onState("live" | "connecting" | "lost")`; `onOpen()` after
 * every (re)connection, to reload what may have changed while disconnected.
 */
export function followChanges({ onCase, onState = () => {}, onOpen = () => {} }) {
  onState("connecting");
  const es = new EventSource("/api/changes?poll=0.5&since_seconds=5");
  es.addEventListener("open", () => {
    onState("live");
    onOpen();
  });
  es.addEventListener("error", () => onState(es.readyState === EventSource.CLOSED ? "lost" : "connecting"));
  es.addEventListener("case", (ev) => {
    try {
      onCase(JSON.parse(ev.data));
    } catch {
      /* a malformed event is ignored */
    }
  });
  return es;
}
