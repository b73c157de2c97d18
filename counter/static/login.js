// 登录: the staff sign-in page. User name + password posted as JSON to /auth/login (the
// answer sets the HttpOnly session cookie), or the city's identity provider when
// /auth/config says so. Then on to `next` (a path of this app only) or the user's start
// page by permissions. `denied=1`: signed in, but the roles do not allow the page asked for.

import { may, roleNames } from "./common.js";
import { applyI18n, langToggle, onLangChange, t } from "./i18n.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const denied = params.get("denied") === "1";
const expired = params.get("expired") === "1";

/** `next` when it is a path of this app ("/x", not "//host", no scheme), else null. */
export function safeNext(next) {
  if (!next || !next.startsWith("/") || next.startsWith("//") || next.includes("\\")) return null;
  if (/[\u0000-\u001f]/.test(next)) return null;
  let url;
  try {
    url = new URL(next, location.origin);
  } catch {
    return null;
  }
  if (url.origin !== location.origin) return null;
  if (url.pathname === "/login" || url.pathname.startsWith("/auth/")) return null;
  return url.pathname + url.search + url.hash;
}

const next = safeNext(params.get("next"));

/** The start page of a user, by permissions (null: none of the pages is theirs). */
function home(s) {
  if (may(s, "read_cases")) return "/";
  if (may(s, "read_access_log")) return "/audit";
  if (may(s, "read_metrics")) return "/docs";
  return null;
}

// the permission each staff page needs (the server decides; this only avoids a detour)
const PAGE_PERMISSION = { "/": "read_cases", "/board": "read_board", "/audit": "read_access_log" };

/** Where to go once signed in: `next` if the user may open it, else their start page. */
function destination(s) {
  if (next) {
    const need = PAGE_PERMISSION[new URL(next, location.origin).pathname];
    if (!need || may(s, need)) return next;
  }
  return home(s);
}

function message(key, kind = "error") {
  const m = $("login-message");
  m.hidden = !key;
  m.className = `message message-${kind}`;
  m.dataset.i18n = key || "";
  m.textContent = key ? t(key) : "";
}

let current = null; // the session of a user already signed in (denied=1)

function showSignedIn() {
  const box = $("signed-in");
  if (!current) {
    box.hidden = true;
    return;
  }
  box.hidden = false;
  $("signed-in-text").textContent = t("login.signed_in_as", { name: current.name, roles: roleNames(current) });
  const target = home(current);
  $("go-home").hidden = !target;
  if (target) $("go-home").href = target;
  else $("signed-in-text").textContent += ` ${t("login.no_home")}`;
}

async function signOutHere() {
  if (current?.csrf_token) {
    await fetch("/auth/logout", { method: "POST", headers: { "X-CSRF-Token": current.csrf_token } })
      .catch(() => null);
  }
  current = null;
  showSignedIn();
  message(null);
  $("username").focus();
}

async function submit(ev) {
  ev.preventDefault();
  const username = $("username").value.trim();
  const password = $("password").value;
  if (!username || !password) {
    message("login.missing", "warn");
    return;
  }
  const btn = $("login-btn");
  btn.disabled = true;
  btn.textContent = t("login.busy");
  let resp = null;
  try {
    resp = await fetch("/auth/login", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ username, password }),
    });
  } catch {
    resp = null;
  }
  btn.disabled = false;
  btn.textContent = t("login.button");
  if (resp?.ok) {
    const s = await resp.json();
    const target = destination(s);
    if (target) {
      location.replace(target);
      return;
    }
    current = s;
    showSignedIn();
    message(null);
    return;
  }
  $("password").value = "";
  if (resp?.status === 401) message("login.invalid");
  else if (resp?.status === 429) message("login.limited");
  else if (resp?.status === 422) message("login.missing", "warn");
  else message("login.error");
  $("password").focus();
}

async function start() {
  applyI18n();
  langToggle($("lang"));
  onLangChange(showSignedIn);
  $("login-form").addEventListener("submit", submit);
  $("login-signout").addEventListener("click", signOutHere);

  fetch("/auth/config", { headers: { Accept: "application/json" } })
    .then((r) => (r.ok ? r.json() : null))
    .then((cfg) => {
      if (!cfg?.oidc) return;
      $("oidc-btn").href = `/auth/oidc/login${next ? `?next=${encodeURIComponent(next)}` : ""}`;
      $("oidc").hidden = false;
    })
    .catch(() => { /* the local form stays */ });

  // Already signed in? Then on to the page (unless it was refused: say so instead).
  let s = null;
  try {
    const r = await fetch("/api/session", { headers: { Accept: "application/json" } });
    s = r.ok ? await r.json() : null;
  } catch {
    s = null;
  }
  if (s && !denied) {
    const target = destination(s);
    if (target) {
      location.replace(target);
      return;
    }
  }
  if (s) {
    current = s;
    showSignedIn();
  }
  if (denied && s) message("login.denied", "warn");
  else if (expired) message("login.expired", "info");
  $("username").focus();
}

start();
