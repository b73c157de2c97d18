// The counter screen: find a case (case number or applicant ID), its live card (with the
// acceptance receipt to print), and the window board (supervisors). Without a case open it
// is the home page: today's figures and the latest cases of the signed-in user's window
// (GET /api/home). Live updates: the
// change feed (SSE) says which case changed and to which version; the page reloads just
// that case's card, or the board, without a page reload. Signed in: the header shows who,
// with a sign-out button; a 401 from the API goes back to /login (common.js).

import {
  ApiError, chip, daysText, deptName, fmtShort, fmtTime, followChanges, getJSON, h,
  loadDepartments, postJSON, staffHeader, taskProgress,
} from "./common.js";
import { applyI18n, code, langToggle, onLangChange, t } from "./i18n.js";

const $ = (id) => document.getElementById(id);

const state = {
  view: location.pathname === "/board" ? "board" : "search",
  card: null, // {case, holders, ...} of the case shown
  timeline: null,
  results: null, // an applicant's cases
  board: null,
  boardDate: null, // null: today (or the latest day with acceptances while today has none)
  boardFallback: false,
  boardWindow: "",
  flash: new Set(), // case ids whose row/status changed since the last render
  home: null, // GET /api/home: today's figures and the window's latest cases
  session: null,
};

// ------------------------------------------------------------------ views

function showView(view, push = true) {
  state.view = view;
  $("view-search").hidden = view !== "search";
  $("view-board").hidden = view !== "board";
  renderHome();
  for (const a of document.querySelectorAll(".tab[data-view]")) {
    a.classList.toggle("active", a.dataset.view === view);
  }
  if (push) history.pushState({ view }, "", view === "board" ? "/board" : "/");
  if (view === "board") loadBoard();
}

// ------------------------------------------------------------------ search

function message(text, kind = "info") {
  const m = $("message");
  m.hidden = !text;
  m.className = `message message-${kind}`;
  m.textContent = text || "";
}

async function search(q) {
  message("");
  homeShown(false);
  $("results").hidden = true;
  state.results = null;
  let res;
  try {
    res = await postJSON("/api/search", { q });
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return; // on the way to /login
    message(t(err instanceof ApiError && err.status === 429 ? "search.limited" : "search.error"), "error");
    return;
  }
  if (res.match === "none" || res.items.length === 0) {
    state.card = null;
    $("card").replaceChildren();
    message(t("search.none"), "warn");
    return;
  }
  if (res.items.length === 1) {
    await openCase(res.items[0].case_id);
    return;
  }
  state.results = res.items;
  renderResults();
  await openCase(res.items[0].case_id);
}

function renderResults() {
  const box = $("results");
  if (!state.results) {
    box.hidden = true;
    return;
  }
  box.hidden = false;
  box.replaceChildren(
    h("p", {}, t("search.many", { n: state.results.length })),
    h("ul", { class: "result-list" }, state.results.map((c) => h("li", {},
      h("button", {
        type: "button",
        class: state.card?.case.case_id === c.case_id ? "result active" : "result",
        onclick: () => openCase(c.case_id),
      },
      h("span", { class: "mono" }, c.case_id), " ", c.service_name || "", " ",
      chip("status", c.status), " ", h("span", { class: "muted" }, fmtTime(c.accepted_at)))))),
  );
}

async function openCase(caseId) {
  try {
    const [card, timeline] = await Promise.all([
      getJSON(`/api/cases/${encodeURIComponent(caseId)}/card`),
      getJSON(`/api/cases/${encodeURIComponent(caseId)}/timeline?limit=200`),
    ]);
    const before = state.card?.case.case_id === caseId ? state.card.case : null;
    if (before && before.status !== card.case.status) state.flash.add(caseId);
    state.card = card;
    state.timeline = timeline;
    renderCard();
    renderResults();
    renderHome();
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) message(t("search.none"), "warn");
    else if (!(err instanceof ApiError && err.status === 401)) message(t("search.error"), "error");
  }
}

function kv(label, value, attrs = {}) {
  return h("div", { class: "kv", ...attrs }, h("dt", {}, label), h("dd", {}, value ?? "—"));
}

function renderCard() {
  const box = $("card");
  if (!state.card) {
    box.replaceChildren();
    return;
  }
  const { case: c, holders } = state.card;
  const flash = state.flash.has(c.case_id);
  state.flash.delete(c.case_id);
  const prog = taskProgress(c);
  const sla = c.sla_status || "NONE";

  const header = h("div", { class: "card-head" },
    h("div", {},
      h("div", { class: "case-id mono", id: "case-id" }, c.case_id),
      h("h2", { class: "service" }, c.service_name || c.service_code || "")),
    h("div", { class: "head-status" },
      h("span", {
        id: "case-status",
        class: `chip big status-${c.status}${flash ? " flash" : ""}`,
        dataset: { code: c.status, version: String(c.version) },
      }, code("status", c.status)),
      chip("sla", c.sla_status, "big"),
      h("a", {
        class: "button secondary receipt-link", id: "receipt-link", target: "_blank", rel: "noopener",
        href: `/api/cases/${encodeURIComponent(c.case_id)}/receipt`, title: t("card.receipt_hint"),
      }, t("card.receipt"))));

  const applicant = c.applicant;
  const facts = h("div", { class: "facts" },
    h("section", { class: "fact" },
      h("h3", {}, t("card.applicant")),
      h("dl", {},
        kv(code("applicant", applicant?.kind) || t("card.applicant"), applicant?.name),
        kv(code("idtype", applicant?.id_type), h("span", { class: "mono" }, applicant?.id_masked || "—")))),
    h("section", { class: "fact" },
      h("h3", {}, t("card.acceptance")),
      h("dl", {},
        kv(t("card.accepted_at"), fmtTime(c.accepted_at)),
        kv(t("card.window"), c.window_id),
        kv(t("card.channel"), code("channel", c.channel)),
        kv(t("card.kind"), code("kind", c.case_kind)))),
    h("section", { class: `fact deadline sla-bg-${sla}`, id: "deadline" },
      h("h3", {}, t("card.deadline")),
      h("div", { class: `days sla-text-${sla}`, id: "days-left" }, daysText(c)),
      h("dl", {},
        kv(t("card.promise"), c.promise ? `${c.promise.amount} ${code("unit", c.promise.unit)}` : null),
        c.closed_at ? kv(t("card.closed_at"), fmtTime(c.closed_at))
          : c.paused_since ? kv(t("card.paused_since"), fmtTime(c.paused_since))
            : kv(t("card.due"), c.promise?.unit === "HOUR" ? fmtTime(c.due_at) : c.due_date),
        kv(t("card.version"), String(c.version))),
      c.due_provisional ? h("p", { class: "provisional" }, t("card.provisional")) : null));

  const tasks = h("section", { class: "panel" },
    h("div", { class: "panel-head" },
      h("h3", {}, t("card.tasks")),
      h("span", { class: "muted" }, t("card.task_progress", prog))),
    h("div", { class: "progress" }, progressBar(prog)),
    h("table", { class: "tasks", id: "tasks" },
      h("thead", {}, h("tr", {},
        h("th", {}, t("col.department")), h("th", {}, t("col.task")),
        h("th", {}, t("col.status")), h("th", {}, t("col.updated")))),
      h("tbody", {}, c.tasks.map((x) => h("tr", { dataset: { task: x.task_id } },
        h("td", {}, deptName(x.department)), h("td", {}, x.name || x.task_id),
        h("td", {}, chip("task", x.status)), h("td", { class: "muted" }, fmtShort(x.updated_at)))))),
    c.tasks_total > c.tasks.length
      ? h("p", { class: "muted", id: "more-tasks" }, t("card.more_tasks", { n: c.tasks_total - c.tasks.length }))
      : null);

  box.replaceChildren(h("article", { class: "case-card", id: "case-card" },
    header, facts,
    h("div", { class: "columns" },
      h("div", { class: "col-main" }, tasks, documentsPanel(holders)),
      h("div", { class: "col-side" }, timelinePanel()))));
}

function progressBar({ done, total }) {
  const bar = h("div", { class: "bar" });
  bar.style.width = total ? `${Math.round((100 * done) / total)}%` : "0%";
  return bar;
}

function timelinePanel() {
  const items = state.timeline?.items || [];
  const shown = items.slice(-60).reverse();
  return h("section", { class: "panel" },
    h("h3", {}, t("card.timeline")),
    items.length > shown.length ? h("p", { class: "muted" }, t("card.more_timeline", { n: shown.length })) : null,
    h("ol", { class: "timeline", id: "timeline" }, shown.map((e) => {
      let what = code("event", e.event_type);
      if (e.event_type === "TaskUpdated") what = code("task", e.status);
      if (e.event_type === "MaterialSubmitted") what = `${code("event", e.event_type)} · ${e.event?.name || code("material", e.event?.material_type)}`;
      if (e.event_type === "CertificateIssued") what = `${code("event", e.event_type)} · ${code("material", e.event?.certificate_type)}`;
      const note = e.event?.note;
      return h("li", { class: `tl tl-${e.event_type}${e.out_of_role ? " tl-out-of-role" : ""}` },
        h("time", {}, fmtShort(e.occurred_at)),
        h("span", { class: "tl-dept" }, deptName(e.department),
          e.out_of_role ? h("span", { class: "tag tag-oor", title: t("timeline.out_of_role_hint") }, t("timeline.out_of_role")) : null),
        h("span", { class: "tl-what" }, what),
        note ? h("span", { class: "tl-note" }, note) : null);
    })));
}

function documentsPanel(holders) {
  const { avoidable_submissions: avoidable } = state.card;
  const conflicts = holders.reduce((n, hd) => n + hd.documents.filter((d) => d.conflicts.length).length, 0);
  const alerts = [];
  if (conflicts) alerts.push(h("p", { class: "alert alert-conflict", id: "conflict-alert" }, "⚠ ", t("card.conflicts", { n: conflicts })));
  if (avoidable) alerts.push(h("p", { class: "alert alert-reuse" }, t("card.avoidable", { n: avoidable })));
  return h("section", { class: "panel", id: "documents" },
    h("h3", {}, t("card.documents")), alerts,
    holders.length === 0 ? h("p", { class: "muted" }, t("card.no_documents")) : null,
    holders.map((hd) => h("div", { class: "holder" },
      h("div", { class: "holder-head" },
        h("span", { class: hd.is_applicant ? "tag tag-applicant" : "tag" },
          hd.is_applicant ? t("card.applicant_tag") : t("card.holder_tag")),
        h("strong", {}, hd.holder.name || ""), " ",
        h("span", { class: "mono muted" }, hd.holder.id_masked || ""), " ",
        h("span", { class: "muted" }, code("idtype", hd.holder.id_type))),
      hd.documents.length === 0 ? h("p", { class: "muted" }, t("card.no_documents")) : null,
      h("ul", { class: "docs" }, hd.documents.map(documentItem)),
      hd.total_documents > hd.documents.length
        ? h("p", { class: "muted more-documents" }, t("card.more_documents", { n: hd.total_documents - hd.documents.length }))
        : null)));
}

function documentItem(d) {
  const badges = [];
  if (d.conflicts.length) badges.push(h("span", { class: "badge badge-conflict" }, t("doc.conflict")));
  if (d.expired) badges.push(h("span", { class: "badge badge-expired" }, t("doc.expired")));
  if (d.reusable) badges.push(h("span", { class: "badge badge-reuse" }, t("doc.reusable")));
  else if (d.in_this_case && !d.conflicts.length) badges.push(h("span", { class: "badge badge-new" }, t("doc.new")));
  if (d.avoidable_submissions) badges.push(h("span", { class: "badge badge-avoidable" }, t("doc.avoidable", { n: d.avoidable_submissions })));
  const number = d.document_number || d.document_number_masked;
  return h("li", { class: d.conflicts.length ? "doc doc-conflict" : "doc" },
    h("div", { class: "doc-line" },
      h("span", { class: "doc-name" }, d.name || code("material", d.material_type)),
      h("span", { class: "badges" }, badges)),
    h("div", { class: "doc-meta muted" },
      number ? h("span", {}, `${t("doc.number")} `, h("span", { class: "mono" }, number)) : null,
      h("span", {}, `${t("doc.first")} ${fmtTime(d.first_on_file_at)}`),
      h("span", {}, t("doc.times", { n: d.times_submitted }))),
    conflictSummary(d));
}

/** One line for the conflicts of a document: how many, which fields, a few of them (the
 * answer lists the first ones; conflicts_total counts all). */
function conflictSummary(d) {
  const conflicts = d.conflicts;
  if (!conflicts.length) return null;
  const unlisted = (d.conflicts_total || 0) - conflicts.length;
  const others = [...new Set(conflicts.map((x) => x.conflicts_with))];
  const fields = [...new Set(conflicts.flatMap((x) => x.differing_fields))];
  const holders = conflicts.some((x) => x.holders_differ);
  const shown = others.slice(0, 3).join("、") + (others.length > 3 ? ` ${t("doc.more")}` : "");
  return h("div", { class: "conflict-detail" }, "⚠ ",
    t("doc.conflict_detail", { n: others.length, fields: fields.join(", ") || "—", others: shown }),
    holders ? ` · ${t("doc.holder_differs")}` : "",
    unlisted > 0 ? ` · ${t("doc.more_conflicts", { n: unlisted })}` : "");
}

// ------------------------------------------------------------------ home

let homeTimer = null;

/** The home page is shown on the search view while no case is open. */
function homeShown(show = state.view === "search" && !state.card && !state.results) {
  $("home").hidden = !show || !state.home;
  return show;
}

async function loadHome() {
  try {
    state.home = await getJSON("/api/home");
    renderHome();
  } catch {
    /* keep what is shown; the next change retries */
  }
}

/** Reload the home page's figures, at most every 5 s however many changes arrive (each
 * load is a read in the access log). */
function scheduleHome() {
  if (homeTimer !== null) return;
  homeTimer = setTimeout(() => {
    homeTimer = null;
    if (homeShown()) loadHome();
  }, 5000);
}

/** Back to the home page: no case open, the figures reloaded. */
function goHome() {
  state.card = null;
  state.timeline = null;
  state.results = null;
  message("");
  $("q").value = "";
  renderCard();
  renderResults();
  loadHome();
}

function renderHome() {
  if (!homeShown() || !state.home) return;
  const { figures: f, window_id: w, cases, today } = state.home;
  $("home-date").textContent = today;
  $("home-window").textContent = w ? t("home.window", { w }) : t("home.all_windows");
  const tiles = [];
  if (w) {
    tiles.push(["window_accepted", "mine"], ["window_open", "mine"]);
  }
  tiles.push(["accepted"], ["closed"], ["open"], ["overdue", "warn"], ["due_soon", "soon"], ["paused"],
    ["avoidable"], ["conflicts", f.conflicts ? "warn" : ""]);
  if (state.session?.permissions?.includes("read_dead_letters")) tiles.push(["dead_letters", f.dead_letters ? "warn" : ""]);
  $("home-figures").replaceChildren(...tiles.map(([key, kind]) => h("div", {
    class: `home-figure ${kind || ""}`.trim(), dataset: { figure: key },
  }, h("dt", {}, t(`home.${key}`)), h("dd", {}, String(f[key] ?? "—")))));
  $("home-latest-title").textContent = t(w ? "home.latest" : "home.latest_all");
  $("home-cases").replaceChildren(cases.length === 0 ? h("p", { class: "muted empty" }, t("home.empty"))
    : h("table", { class: "board", id: "home-table" },
      h("thead", {}, h("tr", {},
        h("th", {}, t("col.case")), h("th", {}, t("col.accepted")), h("th", {}, t("board.window")),
        h("th", {}, t("col.service")), h("th", {}, t("col.applicant")), h("th", {}, t("col.status")),
        h("th", {}, t("col.progress")), h("th", {}, t("col.sla")), h("th", {}, t("col.days")))),
      h("tbody", {}, cases.map((c) => {
        const prog = taskProgress(c);
        return h("tr", { dataset: { case: c.case_id } },
          h("td", {}, h("a", {
            href: `/?case=${encodeURIComponent(c.case_id)}`, class: "mono",
            onclick: (ev) => {
              ev.preventDefault();
              $("q").value = c.case_id;
              openCase(c.case_id);
            },
          }, c.case_id)),
          h("td", {}, fmtShort(c.accepted_at)),
          h("td", {}, c.window_id || ""),
          h("td", {}, c.service_name || ""),
          h("td", {}, c.applicant?.name || ""),
          h("td", {}, chip("status", c.status)),
          h("td", {}, h("span", { class: "mini-bar" }, progressBar(prog)), ` ${prog.done}/${prog.total}`),
          h("td", {}, chip("sla", c.sla_status)),
          h("td", { class: `sla-text-${c.sla_status || "NONE"}` }, daysText(c)));
      }))));
}

// ------------------------------------------------------------------ board

function boardQuery() {
  const p = new URLSearchParams();
  if (state.boardDate) p.set("date", state.boardDate);
  if (state.boardWindow) p.set("window_id", state.boardWindow);
  return p.toString();
}

let boardTimer = null;
let boardLoading = false;

/** Reload the board, at most once a second however many changes arrive. */
function scheduleBoard() {
  if (boardTimer !== null) return;
  boardTimer = setTimeout(() => {
    boardTimer = null;
    loadBoard();
  }, 1000);
}

async function loadBoard() {
  if (boardLoading) {
    scheduleBoard();
    return;
  }
  boardLoading = true;
  try {
    let res = await getJSON(`/api/board?${boardQuery()}`);
    state.boardFallback = false;
    if (!state.boardDate && res.items.length === 0 && res.latest_accepted_on
        && res.latest_accepted_on < res.date) {
      // nothing accepted today (yet): show the latest day with acceptances, and say so
      const p = new URLSearchParams(boardQuery());
      p.set("date", res.latest_accepted_on);
      res = await getJSON(`/api/board?${p}`);
      state.boardFallback = true;
    }
    const before = new Map((state.board?.items || []).map((c) => [c.case_id, c.version]));
    if (state.board && state.board.date === res.date && state.board.window_id === res.window_id) {
      for (const c of res.items) if (before.get(c.case_id) !== c.version) state.flash.add(c.case_id);
    }
    state.board = res;
    renderBoard();
  } catch {
    /* keep what is shown; the next change retries */
  } finally {
    boardLoading = false;
  }
}

function renderBoard() {
  const b = state.board;
  if (!b) return;
  $("board-date").value = b.date;
  const sel = $("board-window");
  const windows = b.windows.map((w) => w.window_id);
  if (state.boardWindow && !windows.includes(state.boardWindow)) windows.push(state.boardWindow);
  sel.replaceChildren(
    h("option", { value: "" }, t("board.all")),
    ...windows.sort().map((w) => {
      const n = b.windows.find((x) => x.window_id === w)?.accepted ?? 0;
      return h("option", { value: w }, `${w} (${t("board.count", { n })})`);
    }));
  sel.value = state.boardWindow;
  $("board-summary").textContent = t("board.summary", { date: b.date, n: b.items.length });
  const latest = $("board-latest");
  if (state.boardFallback) {
    latest.hidden = false;
    latest.className = "message message-info";
    latest.textContent = t("board.fallback", { today: b.today, d: b.date });
  } else if (b.items.length === 0 && b.latest_accepted_on && b.latest_accepted_on !== b.date) {
    latest.hidden = false;
    latest.className = "message message-info";
    latest.replaceChildren(h("a", {
      href: "#",
      onclick: (ev) => {
        ev.preventDefault();
        state.boardDate = b.latest_accepted_on;
        loadBoard();
      },
    }, t("board.latest", { d: b.latest_accepted_on })));
  } else {
    latest.hidden = true;
  }
  const rows = b.items.map((c) => {
    const flash = state.flash.delete(c.case_id);
    const prog = taskProgress(c);
    return h("tr", { class: flash ? "flash-row" : "", dataset: { case: c.case_id } },
      h("td", {}, h("a", {
        href: "#", class: "mono",
        onclick: (ev) => {
          ev.preventDefault();
          showView("search");
          $("q").value = c.case_id;
          openCase(c.case_id);
        },
      }, c.case_id)),
      h("td", {}, fmtShort(c.accepted_at)),
      h("td", {}, c.window_id || ""),
      h("td", {}, c.service_name || ""),
      h("td", {}, c.applicant?.name || ""),
      h("td", {}, chip("status", c.status)),
      h("td", {}, h("span", { class: "mini-bar" }, progressBar(prog)), ` ${prog.done}/${prog.total}`),
      h("td", {}, chip("sla", c.sla_status)),
      h("td", { class: `sla-text-${c.sla_status || "NONE"}` }, daysText(c)));
  });
  $("board").replaceChildren(b.items.length === 0 ? h("p", { class: "muted empty" }, t("board.empty"))
    : h("table", { class: "board", id: "board-table" },
      h("thead", {}, h("tr", {},
        h("th", {}, t("col.case")), h("th", {}, t("col.accepted")), h("th", {}, t("board.window")),
        h("th", {}, t("col.service")), h("th", {}, t("col.applicant")), h("th", {}, t("col.status")),
        h("th", {}, t("col.progress")), h("th", {}, t("col.sla")), h("th", {}, t("col.days")))),
      h("tbody", {}, rows)));
}

// ------------------------------------------------------------------ live updates

function setConn(s) {
  const el = $("conn");
  el.className = `conn conn-${s}`;
  el.dataset.state = s;
  $("conn-text").dataset.i18n = `conn.${s}`;
  $("conn-text").textContent = t(`conn.${s}`);
}

function onCase(change) {
  const shown = state.card?.case;
  if (shown && change.case_id === shown.case_id && change.version > shown.version) {
    openCase(shown.case_id);
  }
  if (state.results) {
    const r = state.results.find((c) => c.case_id === change.case_id);
    if (r && change.version > r.version) Object.assign(r, { status: change.status, version: change.version });
  }
  if (state.view === "board" && state.board) {
    const row = state.board.items.find((c) => c.case_id === change.case_id);
    // a listed case moved on, or an unknown one (perhaps accepted just now): reload
    if (!row || change.version > row.version) scheduleBoard();
  }
  if (homeShown() && state.home) scheduleHome(); // any change may move today's figures
}

let feedOpened = false;

/** After a reconnection, reload what is shown (not on the first connection: the page has
 * just loaded it, and each load is a read in the access log). */
function onReconnect() {
  if (!feedOpened) {
    feedOpened = true;
    return;
  }
  if (state.card) openCase(state.card.case.case_id);
  if (state.view === "board") loadBoard();
  if (homeShown()) loadHome();
}

// ------------------------------------------------------------------ start

function start() {
  applyI18n();
  langToggle($("lang"));
  onLangChange(() => {
    renderCard();
    renderResults();
    renderBoard();
    renderHome();
  });
  $("search").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const q = $("q").value.trim();
    if (q) search(q);
  });
  for (const a of document.querySelectorAll(".tab[data-view]")) {
    a.addEventListener("click", (ev) => {
      ev.preventDefault();
      if (a.dataset.view === "search" && state.view === "search") goHome();
      else showView(a.dataset.view);
    });
  }
  window.addEventListener("popstate", () => showView(location.pathname === "/board" ? "board" : "search", false));
  $("board-window").addEventListener("change", (ev) => {
    state.boardWindow = ev.target.value;
    loadBoard();
  });
  $("board-date").addEventListener("change", (ev) => {
    state.boardDate = ev.target.value || null;
    loadBoard();
  });
  $("board-today").addEventListener("click", () => {
    state.boardDate = null; // today, following the latest day while today has none
    loadBoard();
  });
  const params = new URLSearchParams(location.search);
  if (params.get("window")) state.boardWindow = params.get("window");
  if (params.get("date")) state.boardDate = params.get("date");
  staffHeader().then(async (s) => {
    state.session = s;
    await loadDepartments();
    showView(state.view, false);
    const q = params.get("case");
    if (q) {
      $("q").value = q;
      search(q);
    } else if (state.view === "search") {
      loadHome();
    }
    followChanges({ onCase, onState: setConn, onOpen: onReconnect });
  }, () => { /* not signed in: on the way to /login */ });
}

start();
