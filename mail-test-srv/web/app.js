// mail-test-srv's page: messages, sessions, faults and numbers over the JSON API (/api/v1), live through
// the server-sent event stream /api/v1/stream. Plain DOM code, no framework and no build step.
//
// Safety: everything that comes from a message, a transcript or an event is inserted as text (append of
// a string, textContent), never as HTML; the HTML part of a message is shown only in an <iframe
// sandbox=""> (no scripts, opaque origin) from the server's own route, which sends its own strict CSP.
// State-changing calls carry a JSON body and Content-Type: application/json, as the server's guard
// requires; the browser adds Origin and Sec-Fetch-Site itself.
//
// Speed: the lists hold one page (50 rows) whatever the store holds, so 100,000 stored messages cost
// what 50 do; new mail is prepended from the stream without a request.
"use strict";

(() => {
  /** Rows per page of the message and session lists. */
  const PAGE = 50;
  /** Fault events kept in the timeline. */
  const EVENTS_KEPT = 200;
  /** Characters of a text part or raw source shown at most; the .eml download has all. */
  const SHOW_CHARS = 1_000_000;
  /** Seconds of history in the chart. */
  const CHART_SECONDS = 300;
  /** Rule names the server accepts. */
  const NAME_RE = /^[A-Za-z0-9_-]{1,64}$/;
  const PRESETS = {
    "close-35": ["close-chance", "mail:close:35%"],
    "accept-close": ["accept-close", "data-end:accept-close:10%"],
    "rate-limit": ["rate-limit", "mail:reply=451:rate=10/s"],
    greylist: ["greylist", "rcpt:greylist=1m"],
  };

  const $ = (id) => document.getElementById(id);

  /** An element with properties (`class`, `data`, `on*` handlers, anything else as a property) and children;
   *  string children become text nodes, so data can never turn into markup. */
  function el(tag, props, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (v === undefined || v === null) continue;
      if (k === "class") e.className = v;
      else if (k === "data") Object.assign(e.dataset, v);
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e[k] = v;
    }
    for (const c of children) {
      if (c !== undefined && c !== null && c !== false) e.append(c);
    }
    return e;
  }

  // ---------------------------------------------------------------- state

  const S = {
    view: "messages",
    msg: {
      q: "",
      page: 0,
      /** Matching messages (of the query `totalFor`). */
      total: 0,
      totalFor: null,
      /** Summaries shown, newest first. */
      rows: [],
      openId: null,
      detail: null,
      /** The part last chosen by the user; a message without it shows its text. */
      prefer: "html",
      loadToken: 0,
      reloadTimer: 0,
      /** Consecutive stats ticks whose stored count disagreed with the list. */
      mismatches: 0,
      /** Ids deleted while this page was open (`event: deleted`), never shown again. */
      gone: new Set(),
    },
    sess: { before: null, stack: [], next: null, faultsOnly: false, rows: [], openId: null, loaded: false, timer: 0 },
    events: [],
    rules: [],
    /** The rule being edited in place, if any. */
    editing: null,
    seedText: "",
    series: [],
    stats: null,
    /** Faults injected in all, from the last stats tick plus the events streamed since. */
    faultsTotal: 0,
    everConnected: false,
    source: null,
  };

  // ---------------------------------------------------------------- API

  /** One API call. `body` makes it a JSON request (any JSON value; with `raw`, text already JSON); errors
   *  throw with the server's own `{"error"}` message. `text` reads the answer as text. */
  async function api(method, path, body, { text = false, raw = false } = {}) {
    const init = { method, headers: {}, cache: "no-store" };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = raw ? body : JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(path, init);
    } catch (e) {
      throw new Error(`${method} ${path}: ${e.message} (is the server running?)`);
    }
    if (res.status === 204) return null;
    const type = res.headers.get("content-type") || "";
    const data = text || !type.includes("json") ? await res.text() : await res.json().catch(() => null);
    if (!res.ok) {
      const why = data && typeof data === "object" && data.error ? data.error : `${res.status} ${res.statusText}`;
      throw new Error(`${method} ${path}: ${why}`);
    }
    return data;
  }

  /** A state change: always a JSON body (`{}` when there is nothing to say). */
  const change = (method, path, body = {}, opts = {}) => api(method, path, body, opts);

  function showError(message) {
    $("error-text").textContent = message;
    $("error-bar").hidden = false;
  }

  /** Runs an async UI action, showing its failure instead of losing it in the console. */
  function act(fn) {
    return (...args) =>
      Promise.resolve()
        .then(() => fn(...args))
        .catch((e) => showError(e.message || String(e)));
  }

  /** A destructive button needs a second click within 4 s. */
  function armed(button, label, fn) {
    const plain = button.textContent;
    let timer = 0;
    button.addEventListener(
      "click",
      act(async () => {
        if (!button.classList.contains("armed")) {
          button.classList.add("armed");
          button.textContent = label;
          timer = setTimeout(() => {
            button.classList.remove("armed");
            button.textContent = plain;
          }, 4000);
          return;
        }
        clearTimeout(timer);
        button.classList.remove("armed");
        button.textContent = plain;
        await fn();
      }),
    );
  }

  // ---------------------------------------------------------------- formatting

  function fmtTime(rfc3339) {
    if (!rfc3339) return "";
    const d = new Date(rfc3339);
    if (Number.isNaN(d.getTime())) return rfc3339;
    const time = d.toLocaleTimeString([], { hour12: false });
    return d.toDateString() === new Date().toDateString() ? time : `${d.toLocaleDateString()} ${time}`;
  }

  function fmtSize(n) {
    if (n < 1024) return `${n} B`;
    if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} kB`;
    return `${(n / 1024 / 1024).toFixed(1)} MB`;
  }

  /** At most SHOW_CHARS of `text`, saying what was left out: a 20 MB message must not hang the tab. */
  function clipped(text) {
    if (text.length <= SHOW_CHARS) return text;
    return `${text.slice(0, SHOW_CHARS)}\n\n… ${(text.length - SHOW_CHARS).toLocaleString()} more characters: download the .eml for all of it.`;
  }

  const plural = (n, one, many = one + "s") => `${n.toLocaleString()} ${n === 1 ? one : many}`;

  /** A rule's `--fault` text from the object form `GET /faults` answers with (as the server's Display). */
  function ruleText(r) {
    if (typeof r === "string") return r;
    let action = r.action;
    if (action && typeof action === "object") {
      const [k, v] = Object.entries(action)[0];
      action = `${k}=${v}`;
    }
    let t = `${r.stage}:${action}`;
    if (r.chance !== undefined) t += `:${r.chance}%`;
    for (const k of ["first", "every", "after", "first_conns", "for", "after_time", "rate"]) {
      if (r[k] !== undefined) t += `:${k.replace("_", "-")}=${r[k]}`;
    }
    if (r.per_peer) t += ":per-peer";
    for (const k of ["conns", "from", "to", "times"]) {
      if (r[k] !== undefined) t += `:${k}=${r[k]}`;
    }
    return t;
  }

  // ---------------------------------------------------------------- views

  function showView(view) {
    if (!["messages", "sessions", "faults", "numbers"].includes(view)) view = "messages";
    S.view = view;
    for (const tab of document.querySelectorAll("#tabs [data-view]")) {
      tab.setAttribute("aria-selected", String(tab.dataset.view === view));
    }
    for (const section of document.querySelectorAll("main > .view")) {
      section.hidden = section.dataset.view !== view;
    }
    if (location.hash !== `#${view}`) history.replaceState(null, "", `#${view}`);
    if (view === "sessions" && !S.sess.loaded) act(loadSessions)();
    if (view === "numbers") act(loadNumbers)();
  }

  /** Everything again: after a reconnect of the stream or a reset. */
  function reloadAll() {
    act(loadMessages)();
    act(loadFaults)();
    act(loadEvents)();
    if (S.view === "sessions" || S.sess.loaded) act(loadSessions)();
    if (S.view === "numbers") act(loadNumbers)();
    if (S.msg.openId !== null) act(openMessage)(S.msg.openId);
  }

  // ---------------------------------------------------------------- messages

  function messagesQuery() {
    return S.msg.q ? `q=${encodeURIComponent(S.msg.q)}&` : "";
  }

  /** The page `S.msg.page` (0 = newest) of the list, newest first (`order=newest`); past the last page
   *  (the store shrank meanwhile) it moves back to the last one. */
  async function loadMessages() {
    const token = ++S.msg.loadToken;
    const q = S.msg.q;
    const get = () => api("GET", `/api/v1/messages?${messagesQuery()}order=newest&limit=${PAGE}&offset=${S.msg.page * PAGE}`);
    let page = await get();
    if (page.messages.length === 0 && S.msg.page > 0 && page.total > 0) {
      S.msg.page = Math.ceil(page.total / PAGE) - 1;
      page = await get();
    }
    if (token !== S.msg.loadToken) return; // a newer load (another page or query) won
    S.msg.total = page.total;
    S.msg.totalFor = q;
    S.msg.mismatches = 0;
    S.msg.rows = page.messages;
    if (!q) $("badge-messages").textContent = page.total.toLocaleString();
    renderMessages();
  }

  /** At most one reload per `ms`, however much mail arrives meanwhile. */
  function scheduleMessageReload(ms = 250) {
    if (S.msg.reloadTimer) return;
    S.msg.reloadTimer = setTimeout(() => {
      S.msg.reloadTimer = 0;
      act(loadMessages)();
    }, ms);
  }

  function messageRow(m) {
    const to = m.recipients.join(", ");
    const tr = el(
      "tr",
      { class: "msg-row", data: { id: String(m.id) }, title: `#${m.id}`, tabIndex: 0 },
      el("td", { class: "col-time" }, fmtTime(m.received)),
      el("td", { class: "ellipsis" }, m.from || "<>"),
      el("td", { class: "ellipsis" }, to),
      el("td", { class: "ellipsis subject" }, m.subject ?? "(no subject)"),
      el("td", { class: "num" }, fmtSize(m.size)),
    );
    if (m.id === S.msg.openId) tr.classList.add("selected");
    return tr;
  }

  function renderMessages() {
    $("msg-rows").replaceChildren(...S.msg.rows.map(messageRow));
    renderMessageCounts();
    // When the first list is on screen, for bench/web_page.sh.
    if (!performance.getEntriesByName("messages-list").length) performance.mark("messages-list");
  }

  function renderMessageCounts() {
    const { page, q } = S.msg;
    const total = S.msg.total || 0;
    const pages = Math.max(1, Math.ceil(total / PAGE));
    $("msg-total").textContent = q ? `${plural(total, "match", "matches")}` : plural(total, "message");
    $("msg-page").textContent = `page ${page + 1} of ${pages.toLocaleString()}`;
    $("msg-prev").disabled = page === 0;
    $("msg-next").disabled = page + 1 >= pages;
    $("msg-empty").hidden = S.msg.rows.length > 0;
    $("msg-empty").textContent = q ? "Nothing matches." : "No messages yet. Send some to the SMTP port.";
  }

  /** `event: messages`: new mail, oldest first. On the first page of the unfiltered list it is prepended
   *  at once; a search or a batch with skipped items reloads the page instead. */
  function onMessages(d) {
    $("badge-messages").textContent = (d.total ?? 0).toLocaleString();
    if (S.msg.q || d.skipped) {
      scheduleMessageReload();
      return;
    }
    if (typeof d.total === "number") {
      S.msg.total = d.total;
      S.msg.totalFor = "";
    }
    if (S.msg.page === 0) {
      const have = new Set(S.msg.rows.map((m) => m.id));
      const tbody = $("msg-rows");
      for (const m of d.items || []) {
        if (have.has(m.id) || S.msg.gone.has(m.id)) continue;
        S.msg.rows.unshift(m);
        tbody.prepend(messageRow(m));
      }
      while (S.msg.rows.length > PAGE) {
        S.msg.rows.pop();
        tbody.lastElementChild.remove();
      }
    }
    renderMessageCounts();
  }

  /** One message deleted (here or by another client): its row goes at once, and the page is
   *  refilled from the server so it keeps its 50 rows. Its id is remembered, so a batch that
   *  was rendered just before the delete cannot bring the row back. */
  function onDeleted(d) {
    S.msg.gone.add(d.id);
    if (S.msg.gone.size > 10000) S.msg.gone.clear();
    if (typeof d.total === "number") $("badge-messages").textContent = d.total.toLocaleString();
    const at = S.msg.rows.findIndex((m) => m.id === d.id);
    if (at >= 0) {
      S.msg.rows.splice(at, 1);
      for (const tr of $("msg-rows").children) if (tr.dataset.id === String(d.id)) tr.remove();
      scheduleMessageReload();
    }
    if (S.msg.openId === d.id) closeMessage();
    if (!S.msg.q && typeof d.total === "number") {
      S.msg.total = d.total;
      S.msg.totalFor = "";
    }
    renderMessageCounts();
  }

  function markSelected(tbody, attr, value) {
    for (const tr of tbody.children) tr.classList.toggle("selected", tr.dataset[attr] === String(value));
  }

  async function openMessage(id) {
    S.msg.openId = id;
    markSelected($("msg-rows"), "id", id);
    const m = await api("GET", `/api/v1/messages/${id}`);
    if (S.msg.openId !== id) return;
    S.msg.detail = m;
    $("msg-detail").hidden = false;
    $("msg-subject").textContent = m.subject ?? "(no subject)";
    const meta = [
      ["From", m.from || "<>"],
      ["To", m.recipients.join(", ")],
      ["Received", `${fmtTime(m.received)} (${m.received})`],
      ["Size", fmtSize(m.size)],
      ["Session", el("a", { href: "#sessions", onclick: (e) => (e.preventDefault(), act(openSessionFrom)(m.session)) }, `#${m.session}`)],
      ["TLS", m.tls ? "yes" : "no"],
    ];
    if (m.auth_user) meta.push(["AUTH user", m.auth_user]);
    if (m.message_id) meta.push(["Message-ID", m.message_id]);
    for (const line of m.lenient_lines || []) meta.push(["Lenient", line]);
    $("msg-meta").replaceChildren(...meta.flatMap(([k, v]) => [el("dt", null, k), el("dd", null, v)]));
    const attachments = (m.parts && m.parts.attachments) || [];
    $("msg-attachments-box").hidden = attachments.length === 0;
    $("msg-attachments").replaceChildren(
      ...attachments.map((a) =>
        el(
          "li",
          { class: "attachment" },
          el(
            "a",
            {
              href: `/api/v1/messages/${id}/attachments/${a.index}`,
              download: a.filename || `attachment-${a.index}`,
              data: { index: String(a.index) },
            },
            a.filename || `attachment ${a.index}`,
          ),
          el("span", { class: "muted" }, ` ${a.content_type || "application/octet-stream"}, ${fmtSize(a.size ?? 0)}${a.inline ? ", inline" : ""}`),
        ),
      ),
    );
    const eml = $("msg-eml");
    eml.href = `/api/v1/messages/${id}/eml`;
    eml.download = `message-${id}.eml`;
    const hasHtml = m.parts ? !!m.parts.html : m.html != null;
    $("part-html").disabled = !hasHtml;
    showPart(S.msg.prefer === "html" && !hasHtml ? "text" : S.msg.prefer);
  }

  function closeMessage() {
    S.msg.openId = null;
    S.msg.detail = null;
    $("msg-detail").hidden = true;
    $("msg-part").replaceChildren();
    markSelected($("msg-rows"), "id", null);
  }

  function showPart(part) {
    const m = S.msg.detail;
    if (!m) return;
    for (const b of document.querySelectorAll(".subtabs [data-part]")) {
      b.setAttribute("aria-selected", String(b.dataset.part === part));
    }
    const box = $("msg-part");
    if (part === "html") {
      const frame = document.createElement("iframe");
      frame.id = "msg-html";
      // Empty sandbox: no scripts, no forms, no popups, an opaque origin (no access to this page).
      frame.setAttribute("sandbox", "");
      frame.setAttribute("referrerpolicy", "no-referrer");
      frame.title = "HTML part (sandboxed)";
      frame.addEventListener("load", () => (frame.dataset.loaded = "1"));
      frame.src = `/api/v1/messages/${m.id}/html`;
      box.replaceChildren(frame);
    } else if (part === "text") {
      const text = m.parts ? m.parts.text : m.text;
      box.replaceChildren(el("pre", { id: "msg-text", class: "body" }, text == null ? "(no text part)" : clipped(text)));
    } else if (part === "headers") {
      box.replaceChildren(
        el(
          "table",
          { id: "msg-headers", class: "headers" },
          el("tbody", null, ...(m.headers || []).map((h) => el("tr", null, el("th", null, h.name), el("td", null, h.value)))),
        ),
      );
    } else {
      const pre = el("pre", { id: "msg-raw", class: "body" }, "loading…");
      box.replaceChildren(pre);
      const id = m.id;
      act(async () => {
        const raw = await api("GET", `/api/v1/messages/${id}/raw`, undefined, { text: true });
        if (S.msg.detail && S.msg.detail.id === id) pre.textContent = clipped(raw);
      })();
    }
  }

  // ---------------------------------------------------------------- sessions

  async function loadSessions() {
    const params = new URLSearchParams({ limit: String(PAGE) });
    if (S.sess.before !== null) params.set("before", String(S.sess.before));
    if (S.sess.faultsOnly) params.set("fault", "true");
    const page = await api("GET", `/api/v1/sessions?${params}`);
    S.sess.loaded = true;
    S.sess.rows = page.sessions;
    S.sess.next = page.next_before ?? null;
    renderSessions();
  }

  function outcomeClass(s) {
    if (s.open) return "open";
    const o = s.outcome || "";
    if (o.startsWith("server-fault")) return "fault";
    if (o.startsWith("limit") || o === "idle-timeout" || o === "tls-failed") return "warn";
    return "ok";
  }

  function sessionRow(s) {
    const faults = el("td", { class: "num" }, s.faults ? `⚡ ${s.faults}` : "0");
    const tr = el(
      "tr",
      { class: "sess-row", data: { id: String(s.id) }, tabIndex: 0 },
      el("td", { class: "num" }, String(s.id)),
      el("td", { class: "col-time" }, fmtTime(s.started)),
      el("td", null, s.peer),
      el("td", { class: `outcome ${outcomeClass(s)}` }, s.open ? "open" : (s.outcome ?? "")),
      el("td", { class: "num" }, String((s.messages || []).length)),
      faults,
    );
    if (s.faults) tr.classList.add("has-faults");
    if ((s.refusals || []).length) tr.title = `${s.refusals.length} refused: ${s.refusals.map((r) => r.reason).join("; ")}`;
    if (s.id === S.sess.openId) tr.classList.add("selected");
    return tr;
  }

  function renderSessions() {
    $("sess-rows").replaceChildren(...S.sess.rows.map(sessionRow));
    $("sess-empty").hidden = S.sess.rows.length > 0;
    $("sess-newest").disabled = S.sess.before === null;
    $("sess-next").disabled = S.sess.next === null;
  }

  /** `event: sessions`: sessions opened or ended; upserted on the first page. */
  function onSessions(d) {
    if (!S.sess.loaded || S.sess.before !== null) return;
    let changed = false;
    for (const s of d.items || []) {
      if (S.sess.faultsOnly && !s.faults) continue;
      const i = S.sess.rows.findIndex((r) => r.id === s.id);
      if (i >= 0) S.sess.rows[i] = s;
      else if (!S.sess.rows.length || s.id > S.sess.rows[0].id) S.sess.rows.unshift(s);
      else continue;
      changed = true;
      if (s.id === S.sess.openId) {
        clearTimeout(S.sess.timer);
        S.sess.timer = setTimeout(act(() => openSession(s.id)), 300);
      }
    }
    if (!changed) return;
    S.sess.rows.sort((a, b) => b.id - a.id);
    if (S.sess.rows.length > PAGE) {
      S.sess.rows.length = PAGE;
      S.sess.next = S.sess.rows[PAGE - 1].id;
    }
    renderSessions();
  }

  async function openSession(id) {
    S.sess.openId = id;
    markSelected($("sess-rows"), "id", id);
    const s = await api("GET", `/api/v1/sessions/${id}`);
    if (S.sess.openId !== id) return;
    $("sess-detail").hidden = false;
    $("sess-title").textContent = `Session #${s.id} from ${s.peer}`;
    $("sess-text").href = `/api/v1/sessions/${s.id}/transcript`;
    const meta = [
      ["Started", `${fmtTime(s.started)}`],
      ["Ended", s.ended ? fmtTime(s.ended) : "still open"],
      ["Outcome", el("span", { class: `outcome ${outcomeClass(s)}` }, s.open ? "open" : (s.outcome ?? ""))],
      ["HELO", s.helo ?? "—"],
      ["TLS", s.tls ? `${s.tls.version} ${s.tls.cipher}${s.tls.sni ? ` (SNI ${s.tls.sni})` : ""}` : "no"],
      ["Commands", String(s.commands)],
      ["Faults", String(s.faults)],
    ];
    if (s.auth_user) meta.push(["AUTH user", s.auth_user]);
    if ((s.messages || []).length) {
      meta.push([
        "Messages",
        el(
          "span",
          null,
          ...s.messages.flatMap((mid, i) => [
            i ? ", " : "",
            el("a", { href: "#messages", onclick: (e) => (e.preventDefault(), showView("messages"), act(openMessage)(mid)) }, `#${mid}`),
          ]),
        ),
      ]);
    }
    for (const r of s.refusals || []) meta.push(["Refused", `${r.stage}: ${r.reason}`]);
    $("sess-meta").replaceChildren(...meta.flatMap(([k, v]) => [el("dt", null, k), el("dd", null, v)]));
    const prefix = { c: "C:", s: "S:", note: "*:" };
    $("sess-transcript").replaceChildren(
      ...s.lines.map((l) =>
        el(
          "div",
          { class: `line line-${l.dir}` },
          el("span", { class: "t" }, `+${l.t.toFixed(3)}s`),
          el("span", { class: "p" }, prefix[l.dir] || "?:"),
          el("span", { class: "x" }, l.line),
        ),
      ),
    );
  }

  async function openSessionFrom(id) {
    showView("sessions");
    await openSession(id);
  }

  function closeSession() {
    S.sess.openId = null;
    $("sess-detail").hidden = true;
    markSelected($("sess-rows"), "id", null);
  }

  // ---------------------------------------------------------------- faults: switchboard

  async function loadFaults() {
    // As text: the seed is a u64, which a JS number would round.
    const text = await api("GET", "/api/v1/faults", undefined, { text: true });
    const plan = JSON.parse(text);
    const seed = /"seed"\s*:\s*(\d+)/.exec(text);
    S.seedText = seed ? seed[1] : String(plan.seed);
    S.rules = plan.rules;
    if (document.activeElement !== $("seed")) $("seed").value = S.seedText;
    renderRules();
    const settings = await api("GET", "/api/v1/settings");
    $("strict").checked = !!settings.strict;
    renderOutage(await api("GET", "/api/v1/outage"));
  }

  /** The switchboard; while a rule is being edited it waits (a live refresh would throw the edit away)
   *  and renders when the edit is saved or cancelled. */
  function renderRules() {
    if (S.editing) return;
    $("rules-rows").replaceChildren(...S.rules.map(ruleRow));
    $("rules-empty").hidden = S.rules.length > 0;
  }

  function ruleRow(r) {
    const name = r.name;
    const text = ruleText(r);
    const enabled = r.enabled !== false;
    const toggle = el("input", {
      type: "checkbox",
      checked: enabled,
      class: "rule-toggle",
      title: enabled ? "firing: click to switch off" : "off: click to switch on",
      onchange: act(async (e) => {
        try {
          await change("PATCH", `/api/v1/faults/${encodeURIComponent(name)}`, { enabled: e.target.checked });
        } finally {
          await loadFaults();
        }
      }),
    });
    const textCell = el("td", { class: "rule-text" }, el("code", null, text));
    const edit = el("button", { type: "button", class: "rule-edit" }, "edit");
    const del = el("button", { type: "button", class: "rule-delete danger" }, "delete");
    edit.addEventListener("click", () => {
      const input = el("input", { value: text, class: "rule-edit-text", ariaLabel: "rule" });
      S.editing = name;
      const done = () => {
        S.editing = null;
        renderRules();
      };
      const save = act(async () => {
        await change("PUT", `/api/v1/faults/${encodeURIComponent(name)}`, input.value.trim());
        // A rule put as text is on; keep a switched-off rule off.
        if (!enabled) await change("PATCH", `/api/v1/faults/${encodeURIComponent(name)}`, { enabled: false });
        S.editing = null;
        await loadFaults();
      });
      input.addEventListener("keydown", (e) => {
        if (e.key === "Enter") save();
        if (e.key === "Escape") done();
      });
      textCell.replaceChildren(
        input,
        el("button", { type: "button", class: "rule-save", onclick: save }, "save"),
        el("button", { type: "button", class: "rule-cancel", onclick: done }, "cancel"),
      );
      input.focus();
    });
    del.addEventListener(
      "click",
      act(async () => {
        await change("DELETE", `/api/v1/faults/${encodeURIComponent(name)}`);
        await loadFaults();
      }),
    );
    return el(
      "tr",
      { class: enabled ? "rule" : "rule off", data: { rule: name } },
      el("td", null, toggle),
      el("td", { class: "rule-name" }, name),
      textCell,
      el("td", { class: "actions" }, edit, del),
    );
  }

  /** A free name from the rule text: `mail-close`, then `mail-close-2`, ... */
  function freeName(base) {
    const taken = new Set(S.rules.map((r) => r.name));
    base = base.replace(/[^A-Za-z0-9_-]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 56) || "rule";
    if (!taken.has(base)) return base;
    for (let i = 2; ; i++) if (!taken.has(`${base}-${i}`)) return `${base}-${i}`;
  }

  async function addRule(name, text) {
    text = text.trim();
    if (!text) throw new Error("a rule needs its text, e.g. mail:close:35%");
    name = name.trim() || freeName(text.split(":").slice(0, 2).join("-"));
    if (!NAME_RE.test(name)) throw new Error(`bad rule name ${JSON.stringify(name)}: letters, digits, _ and - (at most 64)`);
    if (S.rules.some((r) => r.name === name)) throw new Error(`a rule named ${name} exists: edit it, or pick another name`);
    await change("PUT", `/api/v1/faults/${encodeURIComponent(name)}`, text);
    await loadFaults();
  }

  function renderOutage(o) {
    const on = o && o.active;
    $("outage-status").textContent = on ? `${o.mode} for ${o.for}, until ${fmtTime(o.until)}` : "";
    $("outage-status").classList.toggle("fault", !!on);
    $("outage-end").hidden = !on;
  }

  // ---------------------------------------------------------------- faults: events

  async function loadEvents() {
    const head = await api("GET", "/api/v1/events?since=0&limit=1");
    const since = Math.max(0, head.last_seq - EVENTS_KEPT);
    const page = await api("GET", `/api/v1/events?since=${since}&limit=${EVENTS_KEPT}`);
    S.events = page.events.slice().reverse();
    renderEvents();
  }

  function eventRow(e) {
    const session = el(
      "a",
      { href: "#sessions", onclick: (ev) => (ev.preventDefault(), act(openSessionFrom)(e.session)) },
      e.stage === "outage" ? "—" : `#${e.session}`,
    );
    return el(
      "tr",
      { class: `event stage-${e.stage}`, data: { seq: String(e.seq) }, title: e.definition },
      el("td", { class: "col-time" }, fmtTime(e.time)),
      el("td", { class: "num" }, session),
      el("td", null, e.stage),
      el("td", { class: "ellipsis" }, e.rule),
      el("td", { class: "fault" }, e.action),
      el("td", null, e.stored ? "stored" : ""),
    );
  }

  function renderEvents() {
    $("event-rows").replaceChildren(...S.events.map(eventRow));
    renderEventCount();
  }

  function renderEventCount() {
    $("events-empty").hidden = S.events.length > 0;
    $("events-count").textContent = S.events.length ? `(newest ${S.events.length})` : "";
  }

  /** `event: faults`: injected faults, oldest first. */
  function onFaults(d) {
    const tbody = $("event-rows");
    const have = new Set(S.events.map((e) => e.seq));
    for (const e of d.items || []) {
      if (have.has(e.seq)) continue;
      S.events.unshift(e);
      tbody.prepend(eventRow(e));
    }
    while (S.events.length > EVENTS_KEPT) {
      S.events.pop();
      tbody.lastElementChild.remove();
    }
    renderEventCount();
    // As /stats counts them: outage start and end are events, not injected faults.
    S.faultsTotal += (d.items || []).filter((e) => e.stage !== "outage").length + (d.skipped || 0);
    $("badge-faults").textContent = S.faultsTotal.toLocaleString();
  }

  // ---------------------------------------------------------------- numbers

  async function loadNumbers() {
    const [stats, series] = await Promise.all([
      api("GET", "/api/v1/stats"),
      api("GET", `/api/v1/stats/series?seconds=${CHART_SECONDS}`).catch(() => ({ points: [] })),
    ]);
    S.series = series.points || [];
    onStats(stats, true);
    drawChart();
  }

  function counter(label, value, cls) {
    return el("div", { class: `counter ${cls || ""}`, data: { counter: label } }, el("div", { class: "value" }, value), el("div", { class: "label" }, label));
  }

  function onStats(st, fromLoad = false) {
    S.stats = st;
    const faultsTotal = (st.faults && st.faults.total) || 0;
    S.faultsTotal = faultsTotal;
    $("badge-faults").textContent = faultsTotal.toLocaleString();
    if (st.stored) $("badge-messages").textContent = st.stored.messages.toLocaleString();
    if (!fromLoad && st.point) {
      const last = S.series[S.series.length - 1];
      if (!last || st.point.t > last.t) S.series.push(st.point);
      const cut = st.point.t - CHART_SECONDS;
      while (S.series.length && S.series[0].t <= cut) S.series.shift();
    }
    if (st.outage !== undefined) renderOutage(st.outage ? { active: true, ...st.outage } : null);
    checkMessageCount(st);
    if (S.view !== "numbers") return;
    const n = (v) => (typeof v === "number" ? v.toLocaleString() : "—");
    $("counters").replaceChildren(
      counter("messages received", n(st.messages)),
      counter("messages stored", n(st.stored && st.stored.messages)),
      counter("sessions", n(st.connections && st.connections.total)),
      counter("open now", n(st.connections && st.connections.open)),
      counter("faults injected", n(faultsTotal), faultsTotal ? "fault" : ""),
      counter("reconnects seen", n(st.reconnects_seen)),
      counter("refused connects", n(st.connections && st.connections.refused)),
      counter("evicted", n(st.evictions)),
      counter("outage", st.outage ? `${st.outage.mode}` : "none", st.outage ? "fault" : ""),
      counter("seed", S.seedText || String(st.seed)),
    );
    // Only what fired: a dozen rows of zeros say nothing.
    const table = (id, map) => {
      const fired = Object.entries(map || {}).filter(([, v]) => v > 0);
      fired.sort((a, b) => b[1] - a[1]);
      $(id).tBodies[0].replaceChildren(
        ...fired.map(([k, v]) => el("tr", null, el("th", null, k), el("td", { class: "num" }, v.toLocaleString()))),
        ...(fired.length ? [] : [el("tr", { class: "zero" }, el("td", null, "none yet"))]),
      );
    };
    table("by-stage", st.faults && st.faults.by_stage);
    table("by-action", st.faults && st.faults.by_action);
    drawChart();
  }

  /** The list heals itself when the store changed behind it (a delete by another client, evictions):
   *  two stats ticks in a row disagreeing with the unfiltered list's total reload it. */
  function checkMessageCount(st) {
    if (S.msg.q || !st.stored || S.msg.totalFor !== "") return;
    if (st.stored.messages === S.msg.total) {
      S.msg.mismatches = 0;
    } else if (++S.msg.mismatches >= 2) {
      S.msg.mismatches = 0;
      scheduleMessageReload(0);
    }
  }

  function drawChart() {
    const canvas = $("chart");
    if (S.view !== "numbers" || !canvas) return;
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.clientWidth || 900;
    const height = canvas.clientHeight || 180;
    if (canvas.width !== Math.round(width * ratio)) {
      canvas.width = Math.round(width * ratio);
      canvas.height = Math.round(height * ratio);
    }
    const g = canvas.getContext("2d");
    g.setTransform(ratio, 0, 0, ratio, 0, 0);
    g.clearRect(0, 0, width, height);
    const styles = getComputedStyle(document.documentElement);
    const ink = styles.getPropertyValue("--muted").trim() || "#888";
    const pad = { l: 40, r: 8, t: 8, b: 18 };
    const now = S.series.length ? S.series[S.series.length - 1].t : Math.floor(Date.now() / 1000);
    const from = now - CHART_SECONDS;
    const max = Math.max(1, ...S.series.map((p) => Math.max(p.messages || 0, p.faults || 0)));
    const top = niceCeil(max);
    const x = (t) => pad.l + ((t - from) / CHART_SECONDS) * (width - pad.l - pad.r);
    const y = (v) => height - pad.b - (v / top) * (height - pad.t - pad.b);
    g.strokeStyle = ink;
    g.fillStyle = ink;
    g.lineWidth = 1;
    g.globalAlpha = 0.3;
    g.beginPath();
    for (const v of [0, top / 2, top]) {
      g.moveTo(pad.l, Math.round(y(v)) + 0.5);
      g.lineTo(width - pad.r, Math.round(y(v)) + 0.5);
    }
    g.stroke();
    g.globalAlpha = 1;
    g.font = "11px system-ui, sans-serif";
    g.textAlign = "right";
    g.fillText(String(top), pad.l - 4, y(top) + 4);
    g.fillText("0", pad.l - 4, y(0) + 4);
    g.textAlign = "left";
    g.fillText(`-${CHART_SECONDS / 60} min`, pad.l, height - 4);
    g.textAlign = "right";
    g.fillText("now", width - pad.r, height - 4);
    for (const [key, color] of [
      ["messages", styles.getPropertyValue("--ok").trim() || "#2a7"],
      ["faults", styles.getPropertyValue("--fault").trim() || "#d33"],
    ]) {
      g.strokeStyle = color;
      g.lineWidth = 1.5;
      g.beginPath();
      let first = true;
      for (const p of S.series) {
        if (p.t < from) continue;
        const px = x(p.t);
        const py = y(p[key] || 0);
        if (first) g.moveTo(px, py);
        else g.lineTo(px, py);
        first = false;
      }
      g.stroke();
    }
  }

  function niceCeil(v) {
    const p = 10 ** Math.floor(Math.log10(v));
    for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p;
    return 10 * p;
  }

  // ---------------------------------------------------------------- the stream

  function setConn(state, label) {
    const c = $("conn-status");
    c.dataset.state = state;
    c.textContent = label || state;
  }

  /** Parses one stream event and hands it on; a bad payload is shown, not fatal. */
  function on(source, name, handler) {
    source.addEventListener(name, (e) => {
      try {
        handler(e.data ? JSON.parse(e.data) : {});
      } catch (err) {
        showError(`stream event ${name}: ${err.message}`);
      }
    });
  }

  /** `event: reset`: the store was cleared (POST /reset, or DELETE /messages from anywhere). The
   *  message list empties at once; events, sessions and rules are read again, since a delete of the
   *  messages alone keeps them. */
  function onReset() {
    S.msg.rows = [];
    S.msg.total = 0;
    S.msg.totalFor = S.msg.q ? null : "";
    S.msg.page = 0;
    closeMessage();
    renderMessages();
    $("badge-messages").textContent = "0";
    act(loadEvents)();
    act(async () => onStats(await api("GET", "/api/v1/stats"), true))();
    act(loadFaults)();
    if (S.sess.loaded) {
      S.sess.before = null;
      S.sess.stack = [];
      if (S.sess.openId !== null) closeSession();
      act(loadSessions)();
    }
  }

  function connect() {
    const source = new EventSource("/api/v1/stream");
    S.source = source;
    source.addEventListener("open", () => setConn("live"));
    source.addEventListener("error", () => {
      if (source.readyState === EventSource.CLOSED) {
        // The browser gave up (an HTTP error rather than a dropped connection): try again ourselves.
        setConn("down", "disconnected");
        setTimeout(connect, 3000);
      } else {
        setConn("reconnecting");
      }
    });
    on(source, "hello", (d) => {
      setConn("live");
      if (S.everConnected) reloadAll();
      S.everConnected = true;
      $("badge-messages").textContent = (d.messages ?? 0).toLocaleString();
      if (d.stats) onStats(d.stats, true);
    });
    on(source, "messages", onMessages);
    on(source, "faults", onFaults);
    on(source, "sessions", onSessions);
    on(source, "stats", (d) => onStats(d));
    on(source, "deleted", onDeleted);
    on(source, "reset", onReset);
    on(source, "rules", () => act(loadFaults)());
  }

  // ---------------------------------------------------------------- wiring

  function wire() {
    for (const tab of document.querySelectorAll("#tabs [data-view]")) {
      tab.addEventListener("click", () => showView(tab.dataset.view));
    }
    window.addEventListener("hashchange", () => showView(location.hash.slice(1)));
    $("error-close").addEventListener("click", () => ($("error-bar").hidden = true));

    // Messages
    let searchTimer = 0;
    $("msg-search").addEventListener("input", (e) => {
      clearTimeout(searchTimer);
      searchTimer = setTimeout(() => {
        S.msg.q = e.target.value.trim();
        S.msg.page = 0;
        act(loadMessages)();
      }, 200);
    });
    $("msg-prev").addEventListener("click", () => {
      S.msg.page = Math.max(0, S.msg.page - 1);
      act(loadMessages)();
    });
    $("msg-next").addEventListener("click", () => {
      S.msg.page += 1;
      act(loadMessages)();
    });
    $("msg-rows").addEventListener("click", (e) => {
      const tr = e.target.closest("tr[data-id]");
      if (tr) act(openMessage)(Number(tr.dataset.id));
    });
    // Rows are focusable: Enter opens one, as a click does.
    for (const id of ["msg-rows", "sess-rows"]) {
      $(id).addEventListener("keydown", (e) => {
        if (e.key === "Enter" && e.target.matches("tr[data-id]")) e.target.click();
      });
    }
    $("msg-close").addEventListener("click", closeMessage);
    for (const b of document.querySelectorAll(".subtabs [data-part]")) {
      b.addEventListener("click", () => {
        S.msg.prefer = b.dataset.part;
        showPart(b.dataset.part);
      });
    }
    $("msg-delete").addEventListener(
      "click",
      act(async () => {
        const id = S.msg.openId;
        if (id === null) return;
        await change("DELETE", `/api/v1/messages/${id}`);
        closeMessage();
        S.msg.totalFor = null;
        await loadMessages();
      }),
    );
    armed($("msg-delete-all"), "really delete all?", async () => {
      await change("DELETE", "/api/v1/messages");
      closeMessage();
      S.msg.totalFor = null;
      S.msg.page = 0;
      await loadMessages();
    });

    // Sessions
    $("sess-rows").addEventListener("click", (e) => {
      const tr = e.target.closest("tr[data-id]");
      if (tr) act(openSession)(Number(tr.dataset.id));
    });
    $("sess-close").addEventListener("click", closeSession);
    $("sess-faults-only").addEventListener("change", (e) => {
      S.sess.faultsOnly = e.target.checked;
      S.sess.before = null;
      S.sess.stack = [];
      act(loadSessions)();
    });
    $("sess-next").addEventListener("click", () => {
      if (S.sess.next === null) return;
      S.sess.stack.push(S.sess.before);
      S.sess.before = S.sess.next;
      act(loadSessions)();
    });
    $("sess-newest").addEventListener("click", () => {
      S.sess.before = null;
      S.sess.stack = [];
      act(loadSessions)();
    });

    // Faults
    const addFromForm = act(async () => {
      await addRule($("rule-name").value, $("rule-text").value);
      $("rule-name").value = "";
      $("rule-text").value = "";
    });
    $("rule-form").addEventListener("submit", (e) => {
      // At once, not after an await: the form must never navigate (the CSP forbids it anyway).
      e.preventDefault();
      addFromForm();
    });
    for (const b of document.querySelectorAll("[data-preset]")) {
      b.addEventListener(
        "click",
        act(async () => {
          const [name, text] = PRESETS[b.dataset.preset];
          await addRule(freeName(name), text);
        }),
      );
    }
    $("outage-start").addEventListener(
      "click",
      act(async () => {
        const seconds = Number($("outage-seconds").value);
        if (!Number.isInteger(seconds) || seconds < 1 || seconds > 3600) throw new Error("an outage lasts 1 to 3600 whole seconds");
        renderOutage(await change("POST", "/api/v1/outage", { for: `${seconds}s`, mode: $("outage-mode").value }));
      }),
    );
    $("outage-end").addEventListener(
      "click",
      act(async () => renderOutage(await change("DELETE", "/api/v1/outage"))),
    );
    $("seed-set").addEventListener(
      "click",
      act(async () => {
        const seed = $("seed").value.trim();
        if (!/^\d{1,20}$/.test(seed)) throw new Error("a seed is a whole number (0 to 2^64-1)");
        // Written by hand so that a seed above 2^53 reaches the server exactly.
        await change("PUT", "/api/v1/faults", `{"seed":${seed},"rules":${JSON.stringify(S.rules)}}`, { raw: true });
        await loadFaults();
      }),
    );
    $("strict").addEventListener(
      "change",
      act(async (e) => {
        const s = await change("PATCH", "/api/v1/settings", { strict: e.target.checked });
        e.target.checked = !!s.strict;
      }),
    );
    armed($("reset"), "confirm reset", async () => {
      await change("POST", "/api/v1/reset");
      onReset();
    });
    window.addEventListener("resize", drawChart);
  }

  function start() {
    wire();
    showView(location.hash.slice(1) || "messages");
    connect();
    act(loadMessages)();
    act(loadFaults)();
    act(loadEvents)();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
