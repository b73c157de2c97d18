// Shared helpers of the pages: DOM building, the JSON API (the session, its CSRF token, the
// way back to the sign-in page), the staff header, time formatting, the live feed.

import { code, lang, onLangChange, t } from "./i18n.js";

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

// ------------------------------------------------------------------ session

let staffPage = false; // a staff page: a 401 from the API sends the browser to /login
let sessionPromise = null; // GET /api/session, fetched once (null on a public page)

/** "/login?next=<this page>": where a staff page goes when its session ended. */
export function loginUrl(extra = "") {
  const here = location.pathname + location.search;
  return `/login?next=${encodeURIComponent(here)}${extra}`;
}

function toLogin() {
  location.assign(loginUrl("&expired=1"));
}

async function parse(resp) {
  let body = null;
  try {
    body = await resp.json();
  } catch {
    body = null;
  }
  if (resp.status === 401 && staffPage) toLogin();
  if (!resp.ok) throw new ApiError(resp.status, body);
  return body;
}

export async function getJSON(url) {
  return parse(await fetch(url, { headers: { Accept: "application/json" } }));
}

async function post(url, data) {
  const headers = { "Content-Type": "application/json", Accept: "application/json" };
  const s = sessionPromise ? await sessionPromise.catch(() => null) : null;
  if (s?.csrf_token) headers["X-CSRF-Token"] = s.csrf_token;
  return fetch(url, { method: "POST", headers, body: data === undefined ? undefined : JSON.stringify(data) });
}

/** POST JSON; on a staff page with the session's CSRF token in X-CSRF-Token. */
export async function postJSON(url, data) {
  let resp = await post(url, data);
  if (resp.status === 403 && sessionPromise) {
    // the session's token changed (signed in again in another tab): fetch it, retry once
    const body = await resp.clone().json().catch(() => null);
    if (body?.error === "csrf") {
      sessionPromise = getJSON("/api/session");
      resp = await post(url, data);
    }
  }
  return parse(resp);
}

/**
 * The signed-in user {name, subject, source, roles, permissions, csrf_token}, fetched
 * once; a 401 sends the browser to /login?next=<this page> (the promise then rejects).
 */
export function session() {
  staffPage = true;
  if (sessionPromise === null) sessionPromise = getJSON("/api/session");
  return sessionPromise;
}

export function may(s, permission) {
  return Boolean(s?.permissions?.includes(permission));
}

/** The roles of a session, in words ("窗口人员、窗口主管"). */
export function roleNames(s) {
  return (s?.roles || []).map((r) => t(`role.${r}`)).join(lang === "en" ? ", " : "、");
}

/** End the session (POST /auth/logout with the CSRF token), then go to the sign-in page. */
export async function signOut() {
  try {
    await postJSON("/auth/logout");
  } catch {
    /* already ended: the sign-in page either way */
  }
  location.assign("/login");
}

/**
 * The header of a staff page: fetch the session, show the name and roles with a sign-out
 * button in #who (inside the top bar), hide every [data-perm] element the user's
 * permissions do not cover. Resolves to the session.
 */
export async function staffHeader() {
  const s = await session();
  for (const el of document.querySelectorAll("[data-perm]")) {
    el.hidden = !may(s, el.dataset.perm);
  }
  const box = document.getElementById("who");
  if (box) {
    const draw = () => box.replaceChildren(
      h("span", { class: "who-name", id: "who-name", title: `${t("who.title")}: ${s.subject}` }, s.name),
      h("span", { class: "who-roles", id: "who-roles" }, roleNames(s)),
      h("button", { type: "button", class: "signout", id: "signout", onclick: signOut }, t("who.signout")));
    draw();
    onLangChange(draw);
    box.hidden = false;
  }
  return s;
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

/** Done/total tasks of a case, from its counts by status (all of its tasks: the board and
 * the lists carry the counts, not every task). */
export function taskProgress(c) {
  const counts = c.task_counts || {};
  const done = ["APPROVED", "REJECTED", "WITHDRAWN"].reduce((n, s) => n + (counts[s] || 0), 0);
  return { done, total: c.tasks_total ?? 0 };
}

/**
 * Follow the change feed (Server-Sent Events, `event: case` {case_id, version, status}).
 * `onCase(change)` per change; `onState("live" | "connecting" | "lost")`; `onOpen()` after
 * every (re)connection, to reload what may have changed while disconnected.
 *
 * The browser's EventSource reconnects by itself after a dropped connection, but gives up
 * on an HTTP error (401 once the session ended, 429 with too many tabs open): then the
 * session is checked (a 401 goes to the sign-in page) and the feed tried again later.
 */
export function followChanges({ onCase, onState = () => {}, onOpen = () => {} }) {
  let retry = 2000;
  function connect() {
    onState("connecting");
    const es = new EventSource("/api/changes?poll=1&since_seconds=5");
    es.addEventListener("open", () => {
      retry = 2000;
      onState("live");
      onOpen();
    });
    es.addEventListener("error", () => {
      if (es.readyState !== EventSource.CLOSED) {
        onState("connecting");
        return;
      }
      onState("lost");
      const again = () => {
        setTimeout(connect, retry);
        retry = Math.min(retry * 2, 30000);
      };
      getJSON("/api/session").then(again, (err) => {
        if (!(err instanceof ApiError && err.status === 401)) again(); // 401: off to /login
      });
    });
    es.addEventListener("case", (ev) => {
      try {
        onCase(JSON.parse(ev.data));
      } catch {
        /* a malformed event is ignored */
      }
    });
  }
  connect();
}
