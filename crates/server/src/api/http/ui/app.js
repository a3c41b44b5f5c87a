// chorus dashboard: read-only views over the member's own /v3 JSON gateway and /metrics.
// No framework, no build step. Every gateway call goes through `api()`, which carries the
// signed-in user's token; the page never calls an endpoint that writes.
"use strict";

const PAGE_MAX = 100; // keys per range request, whatever the page-size control says
const PREFIX_MAX = 1024; // bytes of a prefix
const VALUE_PREVIEW = 2048; // characters of a value shown
const LEASES_MAX = 50; // leases asked for their TTL per refresh
const LEASE_KEYS_SHOWN = 20;
const REFRESH_MS = 5000; // members and leases
const METRICS_MS = 3000;
const CHART_POINTS = 60;

const $ = (id) => document.getElementById(id);
const enc = new TextEncoder();
const dec = new TextDecoder("utf-8", { fatal: true });

const state = {
  token: sessionStorage.getItem("chorus-token") || "",
  user: sessionStorage.getItem("chorus-user") || "",
  prefix: "",
  pageSize: 25,
  pageStarts: [], // start key (bytes) of each page visited, for "Previous"
  start: null, // start key of the page shown
  rows: [], // kvs on the page shown
  more: false,
  watch: null, // AbortController of the live watch
  timers: [],
};

// ---- bytes, base64, formatting ------------------------------------------------------

function b64(bytes) {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  }
  return btoa(s);
}

function unb64(s) {
  const bin = atob(s || "");
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

// The first key after every key with this prefix (etcd's GetPrefixRangeEnd); [0] = all.
function prefixEnd(p) {
  const end = Uint8Array.from(p);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i] < 0xff) {
      end[i] += 1;
      return end.slice(0, i + 1);
    }
  }
  return new Uint8Array([0]);
}

function cmpBytes(a, b) {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

function startsWith(key, p) {
  if (key.length < p.length) return false;
  for (let i = 0; i < p.length; i++) if (key[i] !== p[i]) return false;
  return true;
}

function text(bytes) {
  try {
    return dec.decode(bytes);
  } catch (_) {
    return null;
  }
}

function keyText(bytes) {
  const t = text(bytes);
  if (t !== null) return t;
  return "0x" + Array.from(bytes.slice(0, 64), (b) => b.toString(16).padStart(2, "0")).join("");
}

function hexId(id) {
  try {
    return BigInt(id || 0).toString(16);
  } catch (_) {
    return String(id);
  }
}

function bytesHuman(n) {
  n = Number(n || 0);
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return (i ? n.toFixed(1) : String(n)) + " " + units[i];
}

// A field by its proto name or its JSON (camelCase) name.
function f(obj, ...names) {
  if (!obj) return undefined;
  for (const n of names) if (obj[n] !== undefined) return obj[n];
  return undefined;
}

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}

// ---- the gateway ---------------------------------------------------------------------

class ApiError extends Error {
  constructor(message, code, status) {
    super(message);
    this.code = code;
    this.status = status;
  }
  get needsLogin() {
    return /user name is empty|invalid auth token|authentication failed|unauthenticated/i.test(
      this.message,
    ) || this.code === 16;
  }
}

async function api(path, body, base, signal) {
  const headers = { "Content-Type": "application/json" };
  if (state.token) headers.Authorization = state.token;
  const resp = await fetch((base || "") + "/v3/" + path, {
    method: "POST",
    headers,
    body: JSON.stringify(body || {}),
    cache: "no-store",
    signal,
  });
  return answer(resp);
}

async function answer(resp) {
  let data;
  try {
    data = await resp.json();
  } catch (_) {
    throw new ApiError(`HTTP ${resp.status} without a JSON body`, 0, resp.status);
  }
  if (!resp.ok || data.error) {
    const msg = data.message || data.error || `HTTP ${resp.status}`;
    throw new ApiError(typeof msg === "string" ? msg : JSON.stringify(msg), data.code, resp.status);
  }
  return data;
}

// Another member's status, asked from the browser at that member's client URL with the
// same token: a cross-origin request, whose CORS preflight every member answers (as etcd,
// `Access-Control-Allow-Origin: *` and 200 to OPTIONS). Bounded by 2 s.
function remoteStatus(url) {
  return api("maintenance/status", {}, url.replace(/\/$/, ""), AbortSignal.timeout(2000));
}

function showError(id, err) {
  const box = $(id);
  if (!err) {
    box.textContent = "";
    return;
  }
  if (err instanceof ApiError && err.needsLogin) {
    showLogin(err.message);
    return;
  }
  box.textContent = err instanceof ApiError ? `${err.message} (HTTP ${err.status})` : String(err.message || err);
}

// ---- login ---------------------------------------------------------------------------

function showLogin(reason) {
  stopAll();
  state.token = "";
  sessionStorage.removeItem("chorus-token");
  $("app").hidden = true;
  $("login").hidden = false;
  $("logout").hidden = true;
  $("session").textContent = "Not signed in";
  $("login-error").textContent = reason && !/user name is empty/i.test(reason) ? reason : "";
  $("login-user").focus();
}

async function login(ev) {
  ev.preventDefault();
  const name = $("login-user").value;
  const password = $("login-password").value;
  $("login-error").textContent = "";
  try {
    const r = await api("auth/authenticate", { name, password });
    state.token = r.token;
    state.user = name;
    sessionStorage.setItem("chorus-token", r.token);
    sessionStorage.setItem("chorus-user", name);
    $("login-password").value = "";
    start();
  } catch (err) {
    $("login-error").textContent = `Sign-in failed: ${err.message}`;
  }
}

function logout() {
  sessionStorage.removeItem("chorus-user");
  showLogin("");
}

// Whether the cluster wants a user: a range with no token answers "user name is empty".
async function needsLogin() {
  if (state.token) return false;
  try {
    await api("kv/range", { key: b64(new Uint8Array([0])), limit: "1", keys_only: true });
    return false;
  } catch (err) {
    return err instanceof ApiError && err.needsLogin;
  }
}

// ---- cluster and members -------------------------------------------------------------

async function refreshMembers() {
  try {
    const [list, own] = await Promise.all([api("cluster/member/list", {}), api("maintenance/status", {})]);
    const members = list.members || [];
    const ownId = String(f(f(own, "header"), "member_id", "memberId") || "");
    const leader = String(f(own, "leader") || "0");
    const statuses = new Map([[ownId, own]]);
    await Promise.all(
      members
        .filter((m) => String(m.ID) !== ownId && (m.clientURLs || []).length)
        .map((m) =>
          remoteStatus(m.clientURLs[0]).then(
            (s) => statuses.set(String(m.ID), s),
            () => {},
          ),
        ),
    );
    renderMembers(members, statuses, ownId, leader);
    const clusterId = hexId(f(f(own, "header"), "cluster_id", "clusterId"));
    const leaderM = members.find((m) => String(m.ID) === leader);
    $("cluster-summary").textContent =
      `Cluster ${clusterId}: ${members.length} member(s); leader ` +
      (leaderM ? `${leaderM.name || hexId(leader)} (${hexId(leader)})` : "none") +
      `; revision ${f(f(own, "header"), "revision") || "?"}; this page is served by ` +
      (members.find((m) => String(m.ID) === ownId) || {}).name + ".";
    showError("members-error", null);
  } catch (err) {
    showError("members-error", err);
  }
}

function renderMembers(members, statuses, ownId, leader) {
  const body = $("members").tBodies[0];
  body.replaceChildren(
    ...members.map((m) => {
      const id = String(m.ID);
      const s = statuses.get(id);
      const role = [];
      if (id === leader) role.push(el("span", { class: "badge leader", text: "leader" }));
      else role.push(el("span", { class: "badge", text: m.isLearner ? "" : "follower" }));
      if (m.isLearner) role.push(el("span", { class: "badge learner", text: "learner" }));
      if (id === ownId) role.push(" ", el("span", { class: "badge", text: "serving" }));
      const na = s ? null : "—";
      const alarms = s ? (f(s, "errors") || []).join(", ") || "none" : "—";
      return el(
        "tr",
        { "data-member": m.name || id, class: id === leader ? "is-leader" : "" },
        el("th", { scope: "row", text: m.name || "(unstarted)" }),
        el("td", {}, el("code", { class: "id", text: hexId(id) })),
        el("td", {}, ...role),
        el("td", { text: (m.peerURLs || []).join(" ") }),
        el("td", { text: (m.clientURLs || []).join(" ") }),
        el("td", { class: "num", text: na || f(s, "raftTerm", "raft_term") || "0" }),
        el("td", { class: "num", text: na || f(s, "raftIndex", "raft_index") || "0" }),
        el("td", { class: "num", text: na || bytesHuman(f(s, "dbSize", "db_size")) }),
        el("td", { class: "num", text: na || bytesHuman(f(s, "dbSizeInUse", "db_size_in_use")) }),
        el("td", { text: alarms }),
        el("td", { text: na || f(s, "version") || "" }),
      );
    }),
  );
}

// ---- charts from /metrics ------------------------------------------------------------

const series = { rate: [], fsync: [], commit: [] };
let lastScrape = null;

// The counters and histogram buckets the charts need, summed over labels.
function parseMetrics(textBody) {
  const out = { requests: 0, fsync: new Map(), commit: new Map() };
  for (const line of textBody.split("\n")) {
    if (!line || line[0] === "#") continue;
    const sp = line.lastIndexOf(" ");
    const name = line.slice(0, sp);
    const value = Number(line.slice(sp + 1));
    if (name.startsWith("grpc_server_started_total")) out.requests += value;
    else if (name.startsWith("etcd_disk_wal_fsync_duration_seconds_bucket")) addBucket(out.fsync, name, value);
    else if (name.startsWith("etcd_disk_backend_commit_duration_seconds_bucket")) addBucket(out.commit, name, value);
  }
  return out;
}

function addBucket(map, name, value) {
  const m = /le="([^"]+)"/.exec(name);
  if (!m) return;
  const le = m[1] === "+Inf" ? Infinity : Number(m[1]);
  map.set(le, (map.get(le) || 0) + value);
}

// Prometheus's histogram_quantile over the buckets' increase; null when nothing happened.
function quantile(q, now, before) {
  const les = Array.from(now.keys()).sort((a, b) => a - b);
  const inc = les.map((le) => Math.max(0, now.get(le) - ((before && before.get(le)) || 0)));
  const total = inc[inc.length - 1];
  if (!total) return null;
  const rank = q * total;
  for (let i = 0; i < les.length; i++) {
    if (inc[i] >= rank) {
      if (les[i] === Infinity) return les[i - 1] || 0;
      const lo = i ? les[i - 1] : 0;
      const below = i ? inc[i - 1] : 0;
      const inBucket = inc[i] - below;
      return lo + (les[i] - lo) * (inBucket ? (rank - below) / inBucket : 1);
    }
  }
  return null;
}

async function scrape() {
  try {
    const resp = await fetch("/metrics", { cache: "no-store" });
    if (!resp.ok) throw new Error(`/metrics answered HTTP ${resp.status}`);
    const now = { at: performance.now(), ...parseMetrics(await resp.text()) };
    if (lastScrape) {
      const secs = (now.at - lastScrape.at) / 1000;
      push(series.rate, Math.max(0, now.requests - lastScrape.requests) / secs);
      push(series.fsync, msOrNull(quantile(0.99, now.fsync, lastScrape.fsync)));
      push(series.commit, msOrNull(quantile(0.99, now.commit, lastScrape.commit)));
      draw("chart-rate", series.rate, (v) => v.toFixed(1) + "/s");
      draw("chart-fsync", series.fsync, (v) => v.toFixed(2) + " ms");
      draw("chart-commit", series.commit, (v) => v.toFixed(2) + " ms");
    }
    lastScrape = now;
    $("metrics-error").textContent = "";
  } catch (err) {
    $("metrics-error").textContent = String(err.message || err);
  }
}

function msOrNull(s) {
  return s === null ? null : s * 1000;
}

function push(arr, v) {
  arr.push(v);
  if (arr.length > CHART_POINTS) arr.shift();
}

const SVG = "http://www.w3.org/2000/svg";

function svgEl(tag, attrs) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  return e;
}

// A line over the last CHART_POINTS samples; gaps (no events) are not drawn.
function draw(id, data, fmt) {
  const fig = $(id);
  const svg = fig.querySelector("svg");
  const W = 300, H = 90, L = 34, B = 12;
  const vals = data.filter((v) => v !== null);
  const max = Math.max(1e-9, ...vals) * 1.1;
  const x = (i) => L + ((W - L - 2) * i) / (CHART_POINTS - 1);
  const y = (v) => H - B - ((H - B - 4) * v) / max;
  let d = "";
  let pen = false;
  data.forEach((v, i) => {
    if (v === null) {
      pen = false;
      return;
    }
    d += (pen ? "L" : "M") + x(i + CHART_POINTS - data.length).toFixed(1) + "," + y(v).toFixed(1);
    pen = true;
  });
  const top = svgEl("text", { x: 2, y: 10 });
  top.textContent = fmt(max / 1.1);
  const zero = svgEl("text", { x: 2, y: H - B });
  zero.textContent = "0";
  const foot = svgEl("text", { x: L, y: H - 1 });
  foot.textContent = `last ${Math.round((CHART_POINTS * METRICS_MS) / 1000)} s`;
  fig.dataset.points = String(vals.length);
  const last = data[data.length - 1];
  const dot = last === null ? [] : [svgEl("circle", { class: "dot", cx: x(CHART_POINTS - 1), cy: y(last), r: 2.5 })];
  svg.replaceChildren(
    svgEl("line", { class: "axis", x1: L, y1: H - B, x2: W, y2: H - B }),
    svgEl("line", { class: "axis", x1: L, y1: 2, x2: L, y2: H - B }),
    svgEl("path", { class: "line", d }),
    ...dot,
    top,
    zero,
    foot,
  );
  const summary = last === null ? "no events in the last interval" : "latest " + fmt(last);
  fig.querySelector(".last").textContent = summary;
  svg.setAttribute("aria-label", `${fig.querySelector("figcaption").textContent}: ${summary}`);
}

// ---- key browser ---------------------------------------------------------------------

function prefixBytes() {
  return enc.encode(state.prefix);
}

function rangeEnd() {
  const p = prefixBytes();
  return p.length ? prefixEnd(p) : new Uint8Array([0]);
}

async function browse(prefix) {
  const bytes = enc.encode(prefix);
  if (bytes.length > PREFIX_MAX) {
    $("keys-error").textContent = `The prefix is ${bytes.length} bytes; at most ${PREFIX_MAX} are allowed.`;
    return;
  }
  state.prefix = prefix;
  $("prefix").value = prefix;
  state.pageStarts = [];
  renderCrumbs();
  await loadPage(bytes.length ? bytes : new Uint8Array([0]));
}

async function loadPage(startKey) {
  const limit = Math.min(PAGE_MAX, Math.max(1, state.pageSize | 0));
  $("keys-error").textContent = "";
  try {
    const r = await api("kv/range", { key: b64(startKey), range_end: b64(rangeEnd()), limit: String(limit) });
    state.start = startKey;
    state.rows = (r.kvs || []).slice(0, limit).map(decodeKv);
    state.more = !!r.more;
    const count = Number(r.count || 0);
    const page = state.pageStarts.length + 1;
    const under = `“${state.prefix || "(all keys)"}”`;
    const total = page === 1 ? `${count} key(s) under ${under}` : `${count} key(s) from this page to the end of ${under}`;
    $("keys-status").textContent =
      `${total}; page ${page}, ${state.rows.length} shown ` +
      `(at most ${limit} per request), revision ${f(r.header, "revision")}.`;
    renderKeys();
    watchFrom(Number(f(r.header, "revision")) + 1);
  } catch (err) {
    state.rows = [];
    renderKeys();
    showError("keys-error", err);
  }
}

function decodeKv(kv) {
  return {
    key: unb64(kv.key),
    value: unb64(kv.value),
    create_revision: f(kv, "create_revision", "createRevision") || "0",
    mod_revision: f(kv, "mod_revision", "modRevision") || "0",
    version: kv.version || "0",
    lease: kv.lease || "0",
    changed: false,
    deleted: false,
  };
}

function preview(value) {
  const t = text(value);
  if (t === null) {
    return el("span", { class: "value", text: `binary, ${value.length} bytes (base64 ${b64(value.slice(0, 48))}${value.length > 48 ? "…" : ""})` });
  }
  let shown = t;
  try {
    if (/^\s*[[{]/.test(t) && t.length <= 65536) shown = JSON.stringify(JSON.parse(t), null, 2);
  } catch (_) {
    shown = t;
  }
  if (shown.length > VALUE_PREVIEW) shown = shown.slice(0, VALUE_PREVIEW) + `… (${value.length} bytes)`;
  return el("code", { class: "value", text: shown });
}

function renderKeys() {
  const body = $("kv").tBodies[0];
  const p = prefixBytes();
  if (!state.rows.length) {
    body.replaceChildren(el("tr", {}, el("td", { colspan: 6, text: "No keys on this page." })));
  } else {
    body.replaceChildren(...state.rows.map((kv) => keyRow(kv, p)));
  }
  $("prev-page").disabled = state.pageStarts.length === 0;
  $("next-page").disabled = !state.more;
}

function keyRow(kv, p) {
  const name = keyText(kv.key);
  const rest = startsWith(kv.key, p) ? text(kv.key.slice(p.length)) : null;
  const slash = rest === null ? -1 : rest.indexOf("/", 1);
  const keyCell = el("th", { scope: "row" }, el("code", { text: name }));
  if (slash > 0) {
    const sub = state.prefix + rest.slice(0, slash + 1);
    keyCell.append(" ", el("button", { type: "button", class: "link", text: `browse ${sub}`, onclick: () => browse(sub) }));
  }
  return el(
    "tr",
    { class: kv.deleted ? "deleted" : kv.changed ? "changed" : "", "data-key": name },
    keyCell,
    el("td", {}, kv.deleted ? el("em", { text: "deleted" }) : preview(kv.value)),
    el("td", { class: "num", text: kv.create_revision }),
    el("td", { class: "num", text: kv.mod_revision }),
    el("td", { class: "num", text: kv.version }),
    el("td", { text: kv.lease === "0" ? "—" : hexId(kv.lease) }),
  );
}

function renderCrumbs() {
  const nav = $("crumbs");
  const parts = state.prefix.split("/");
  const items = [el("button", { type: "button", class: "link", text: "(all keys)", onclick: () => browse("") })];
  let acc = "";
  parts.forEach((part, i) => {
    if (i === parts.length - 1 && part === "") return;
    acc += part + (i < parts.length - 1 ? "/" : "");
    const target = acc;
    items.push(" › ", el("button", { type: "button", class: "link", text: part || "/", onclick: () => browse(target) }));
  });
  nav.replaceChildren(...items);
}

function nextPage() {
  if (!state.more || !state.rows.length) return;
  const last = state.rows[state.rows.length - 1].key;
  state.pageStarts.push(state.start);
  const next = new Uint8Array(last.length + 1);
  next.set(last);
  loadPage(next);
}

function prevPage() {
  const start = state.pageStarts.pop();
  if (start) loadPage(start);
}

// ---- live updates: the gateway's streaming /v3/watch ---------------------------------

async function watchFrom(revision) {
  if (state.watch) state.watch.abort();
  const ctl = new AbortController();
  state.watch = ctl;
  const p = prefixBytes();
  const req = { create_request: { key: b64(p.length ? p : new Uint8Array([0])), range_end: b64(rangeEnd()), start_revision: String(revision) } };
  const headers = { "Content-Type": "application/json" };
  if (state.token) headers.Authorization = state.token;
  $("live").textContent = "Live: connecting…";
  try {
    const resp = await fetch("/v3/watch", { method: "POST", headers, body: JSON.stringify(req), signal: ctl.signal, cache: "no-store" });
    const reader = resp.body.getReader();
    const utf8 = new TextDecoder();
    let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += utf8.decode(value, { stream: true });
      let nl;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.trim()) onWatchLine(JSON.parse(line), revision);
      }
      if (buf.length > 8 * 1024 * 1024) throw new Error("watch line over 8 MiB");
    }
    if (state.watch === ctl) $("live").textContent = "Live updates stopped (the stream ended); reload the page.";
  } catch (err) {
    if (err.name !== "AbortError" && state.watch === ctl) $("live").textContent = `Live updates stopped: ${err.message}`;
  }
}

function onWatchLine(msg, revision) {
  if (msg.error) {
    $("live").textContent = `Live updates stopped: ${msg.error.message}`;
    return;
  }
  const r = msg.result || {};
  if (r.created) $("live").textContent = `Live: watching from revision ${revision}.`;
  if (r.canceled) $("live").textContent = `Live updates stopped: ${r.cancel_reason || r.cancelReason || "canceled"}`;
  for (const ev of r.events || []) applyEvent(ev);
}

// Puts and deletes inside the page's window update it in place; a new key joins the page
// if it sorts before its last key (or the page is the last one), keeping the page's size.
function applyEvent(ev) {
  const kv = decodeKv(ev.kv || {});
  const isDelete = ev.type === "DELETE" || ev.type === 1;
  const i = state.rows.findIndex((r) => cmpBytes(r.key, kv.key) === 0);
  if (i >= 0) {
    if (isDelete) state.rows[i].deleted = true;
    else state.rows[i] = { ...kv, changed: true };
  } else if (!isDelete) {
    const last = state.rows[state.rows.length - 1];
    const inWindow = cmpBytes(kv.key, state.start) >= 0 && (!state.more || (last && cmpBytes(kv.key, last.key) < 0));
    if (!inWindow) return;
    kv.changed = true;
    state.rows.push(kv);
    state.rows.sort((a, b) => cmpBytes(a.key, b.key));
    if (state.rows.length > Math.min(PAGE_MAX, state.pageSize)) {
      state.rows.pop();
      state.more = true;
    }
  }
  renderKeys();
}

// ---- leases --------------------------------------------------------------------------

async function refreshLeases() {
  try {
    const r = await api("lease/leases", {});
    const ids = (r.leases || []).map((l) => l.ID);
    const shown = ids.slice(0, LEASES_MAX);
    const ttls = await Promise.all(
      shown.map((id) => api("lease/timetolive", { ID: id, keys: true }).catch((err) => ({ ID: id, err }))),
    );
    $("lease-table").tBodies[0].replaceChildren(
      ...(ttls.length ? ttls.map(leaseRow) : [el("tr", {}, el("td", { colspan: 4, text: "No leases." }))]),
    );
    $("leases-status").textContent =
      `${ids.length} lease(s)` + (ids.length > shown.length ? `; the first ${shown.length} shown.` : ".");
    showError("leases-error", null);
  } catch (err) {
    showError("leases-error", err);
  }
}

function leaseRow(t) {
  if (t.err) {
    return el("tr", {}, el("th", { scope: "row" }, el("code", { text: hexId(t.ID) })), el("td", { colspan: 3, class: "error", text: t.err.message }));
  }
  const keys = (t.keys || []).map((k) => keyText(unb64(k)));
  const more = keys.length > LEASE_KEYS_SHOWN ? ` … and ${keys.length - LEASE_KEYS_SHOWN} more` : "";
  return el(
    "tr",
    {},
    el("th", { scope: "row" }, el("code", { text: hexId(t.ID) })),
    el("td", { class: "num", text: String(t.TTL) === "-1" ? "expired" : t.TTL || "0" }),
    el("td", { class: "num", text: t.grantedTTL || "0" }),
    el("td", { text: keys.length ? keys.slice(0, LEASE_KEYS_SHOWN).join(", ") + more : "none" }),
  );
}

// ---- start and stop ------------------------------------------------------------------

function stopAll() {
  if (state.watch) state.watch.abort();
  state.watch = null;
  state.timers.forEach(clearInterval);
  state.timers = [];
}

function every(ms, fn) {
  fn();
  state.timers.push(setInterval(fn, ms));
}

function start() {
  stopAll();
  $("login").hidden = true;
  $("app").hidden = false;
  $("logout").hidden = !state.token;
  $("session").textContent = state.token ? `Signed in as ${state.user}` : "Authentication is off";
  every(REFRESH_MS, refreshMembers);
  every(METRICS_MS, scrape);
  every(REFRESH_MS, refreshLeases);
  browse(state.prefix);
}

async function boot() {
  $("metrics-every").textContent = String(METRICS_MS / 1000);
  $("login-form").addEventListener("submit", login);
  $("logout").addEventListener("click", logout);
  $("prefix-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    state.pageSize = Number($("page-size").value);
    browse($("prefix").value);
  });
  $("next-page").addEventListener("click", nextPage);
  $("prev-page").addEventListener("click", prevPage);
  if (await needsLogin()) showLogin("");
  else start();
}

boot();
