// roomctl dashboard: plain JS, no build step. Everything from the network is
// inserted as text (device ids and payloads come from MQTT).
"use strict";

const $ = (id) => document.getElementById(id);
const state = { devices: new Map(), status: null, scenes: [], linkUp: false };

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k.startsWith("data-")) e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

function secs(s) {
  if (s == null) return "–";
  if (s < 120) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  return `${m} min ${Math.round(s - m * 60)} s`;
}

function ago(unix) {
  const d = Math.max(0, Date.now() / 1000 - unix);
  if (d < 2) return "just now";
  if (d < 90) return `${Math.round(d)} s ago`;
  if (d < 5400) return `${Math.round(d / 60)} min ago`;
  return `${Math.round(d / 3600)} h ago`;
}

async function getJSON(path) {
  const r = await fetch(path, { cache: "no-store" });
  if (!r.ok) throw new Error(`${path}: ${r.status}`);
  return r.json();
}

// ---- rendering -----------------------------------------------------------

function renderConnection(c) {
  const badge = $("connection-state");
  badge.textContent = c.state;
  badge.className = "badge " + ({ CONNECTED: "ok", CONNECTING: "warn", RECONNECTING: "warn" }[c.state] || "bad");
  const where = c.broker
    ? `${c.broker} (${c.broker_priority_index}/${c.broker_count}${c.broker_priority_index > 1 ? ", backup" : ""})`
    : (c.last_error ? c.last_error : "");
  $("connection-broker").textContent = where;
}

function renderStatus(s) {
  state.status = s;
  $("room-name").textContent = s.room;
  document.title = `roomctl · ${s.room}`;
  renderConnection(s.connection);
  const m = s.stats.mqtt, f = s.stats.feedback;
  const rows = [
    ["state", s.connection.state],
    ["broker", s.connection.broker || "none"],
    ["published", m.messages_published],
    ["queued (offline)", m.messages_queued],
    ["resent", m.messages_resent],
    ["expired / dropped / failed", `${m.messages_expired} / ${m.messages_dropped} / ${m.messages_failed}`],
    ["queue / in flight", `${m.queue_size} / ${m.inflight}`],
    ["reconnections", m.total_reconnections],
    ["failovers", m.failovers],
    ["ack timeouts", m.ack_timeouts],
    ["uptime", secs(s.uptime)],
  ];
  const dl = $("connection-stats");
  dl.replaceChildren(...rows.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
  $("feedback-counts").textContent =
    `${f.ok} OK · ${f.timeout} timeout · ${f.error} error` + (f.avg_latency != null ? ` · avg ${(f.avg_latency * 1000).toFixed(0)} ms` : "");
  const a = s.media.audio, v = s.media.video;
  $("media").replaceChildren(
    el("dt", {}, "audio"), el("dd", {}, a.device ? "output open" : `no output (${a.device_error || "?"})`),
    el("dt", {}, "playing"), el("dd", {}, a.playing.length ? a.playing.join(", ") : "–"),
    el("dt", {}, "video"), el("dd", {}, v.running ? (v.playing || "idle image") : `not running${v.error ? " (" + v.error + ")" : ""}`),
  );
  renderScene(s.scene);
}

function renderScene(sc) {
  const cur = $("current-scene");
  if (sc) {
    cur.className = "current";
    cur.textContent = `${sc.name} · ${sc.state} · ${secs(sc.elapsed)}${sc.duration ? " / " + secs(sc.duration) : ""}`;
    $("progress-bar").style.width = sc.duration ? `${Math.min(100, (100 * sc.elapsed) / sc.duration)}%` : "100%";
  } else {
    cur.className = "current idle";
    cur.textContent = "idle";
    $("progress-bar").style.width = "0";
  }
  const running = sc ? sc.name : null;
  for (const tr of document.querySelectorAll("#scenes tbody tr")) {
    tr.classList.toggle("running", tr.dataset.scene === running);
    tr.querySelector("button").disabled = running !== null;
  }
}

function renderScenes(list) {
  state.scenes = list;
  $("scenes").querySelector("tbody").replaceChildren(
    ...list.map((s) => {
      const b = el("button", { class: "start" }, "Start");
      b.addEventListener("click", () => control(`/api/scenes/${encodeURIComponent(s.name)}/start`));
      return el("tr", { "data-scene": s.name },
        el("td", {}, s.name), el("td", { class: "muted" }, s.description || ""),
        el("td", {}, s.duration != null ? secs(s.duration) : "event-driven"),
        el("td", {}, s.action_count), el("td", {}, b));
    }),
  );
  if (state.status) renderScene(state.status.scene);
}

function renderDevices() {
  const list = [...state.devices.values()].sort((a, b) => a.id.localeCompare(b.id));
  $("devices").replaceChildren(
    ...list.map((d) =>
      el("li", { "data-device": d.id, "data-presence": d.presence },
        el("span", { class: `dot ${d.presence}` }), el("span", { class: "grow" }, d.id),
        el("span", { class: "presence" }, d.presence), el("span", { class: "muted seen", "data-seen": d.last_seen }, ago(d.last_seen))),
    ),
  );
  $("no-devices").hidden = list.length > 0;
  const c = { online: 0, offline: 0, stale: 0 };
  for (const d of list) c[d.presence]++;
  $("device-counts").textContent = list.length ? `${c.online} online · ${c.offline} offline · ${c.stale} stale` : "";
}

function feedbackItem(f) {
  const t = new Date(f.at * 1000).toLocaleTimeString();
  const lat = f.result === "TIMEOUT" ? `>${f.timeout.toFixed(3)} s` : `${(f.latency * 1000).toFixed(0)} ms`;
  return el("li", { "data-result": f.result },
    el("span", { class: "muted" }, t), el("span", { class: `result ${f.result}` }, f.result),
    el("span", { class: "grow" }, `${f.command_topic} = ${f.message}`), el("span", { class: "muted" }, lat));
}

function addFeedback(f) {
  const log = $("feedback-log");
  log.prepend(feedbackItem(f));
  while (log.children.length > 100) log.lastChild.remove();
}

// ---- data ----------------------------------------------------------------

async function refreshAll() {
  const [status, scenes, devices, feedback] = await Promise.all([
    getJSON("/api/status"), getJSON("/api/scenes"), getJSON("/api/devices"), getJSON("/api/feedback?limit=50"),
  ]);
  renderScenes(scenes);
  renderStatus(status);
  state.devices = new Map(devices.map((d) => [d.id, d]));
  renderDevices();
  $("feedback-log").replaceChildren(...feedback.map(feedbackItem));
  refreshHealth();
}

async function refreshStatus() {
  try {
    renderStatus(await getJSON("/api/status"));
  } catch (_) { /* the event stream reports the link state */ }
}

async function refreshHealth() {
  try {
    const r = await fetch("/healthz", { cache: "no-store" });
    const h = await r.json();
    const b = $("health");
    b.textContent = h.status;
    b.className = "badge " + ({ healthy: "ok", degraded: "warn" }[h.status] || "bad");
    b.title = h.issues.join("\n");
  } catch (_) { /* ignored: the banner shows the link */ }
}

async function control(path) {
  const token = $("token").value.trim();
  const headers = token ? { Authorization: `Bearer ${token}` } : {};
  const err = $("control-error");
  try {
    const r = await fetch(path, { method: "POST", headers });
    if (r.status === 401) {
      $("token").parentElement.classList.add("needed");
      throw new Error("a token is needed (enter web.token at the top right)");
    }
    $("token").parentElement.classList.remove("needed");
    const body = await r.json();
    if (!r.ok) throw new Error(body.error || r.statusText);
    if (token) localStorage.setItem("roomctl-token", token);
    err.hidden = true;
  } catch (e) {
    err.textContent = e.message;
    err.hidden = false;
  }
  refreshStatus();
}

function setLink(up) {
  state.linkUp = up;
  $("link-banner").hidden = up;
  document.body.classList.toggle("link-down", !up);
}

function connectEvents() {
  const es = new EventSource("/api/events");
  es.addEventListener("hello", () => {
    setLink(true);
    refreshAll().catch(() => {});
  });
  es.addEventListener("device", (e) => {
    const d = JSON.parse(e.data).data;
    state.devices.set(d.id, d);
    renderDevices();
  });
  es.addEventListener("feedback", (e) => addFeedback(JSON.parse(e.data).data));
  es.addEventListener("connection", (e) => {
    renderConnection(JSON.parse(e.data).data);
    refreshHealth();
  });
  es.addEventListener("scene", () => refreshStatus());
  es.addEventListener("media", () => refreshStatus());
  es.addEventListener("lagged", () => refreshAll().catch(() => {}));
  // EventSource reconnects by itself; a fresh `hello` reloads everything.
  es.onerror = () => setLink(false);
}

$("stop").addEventListener("click", () => control("/api/scenes/stop"));
$("token").value = localStorage.getItem("roomctl-token") || "";
setInterval(() => {
  if (!state.linkUp) return;
  if (state.status && state.status.scene) refreshStatus();
  for (const s of document.querySelectorAll("[data-seen]")) s.textContent = ago(Number(s.dataset.seen));
}, 1000);
setInterval(() => state.linkUp && refreshHealth(), 5000);
connectEvents();
