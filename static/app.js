// roomctl dashboard: plain JS, no build step. Everything from the network is
// inserted as text (device ids and payloads come from MQTT).
//
// Truth rule: what the page shows is current only while its event stream is
// alive (the server sends a `tick` every few seconds). When the stream
// fails or falls silent, every card is marked "last known", Start is
// disabled and nothing says CONNECTED or online as if it were now.
"use strict";

const $ = (id) => document.getElementById(id);
const state = {
  devices: new Map(), // id -> device view + seenAt (local monotonic seconds)
  status: null,
  connection: null,
  health: null,
  scenes: [],
  commands: [],
  linkUp: false,
  lastHeard: 0, // performance.now() of the last event
  tick: 5, // seconds between server ticks
  es: null,
};

const mono = () => performance.now() / 1000;

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

function ago(d) {
  if (d == null) return "never";
  if (d < 2) return "just now";
  if (d < 90) return `${Math.round(d)} s ago`;
  if (d < 5400) return `${Math.round(d / 60)} min ago`;
  return `${Math.round(d / 3600)} h ago`;
}

async function getJSON(path) {
  const r = await fetch(path, { cache: "no-store", headers: auth.headers() });
  if (!r.ok) throw new Error(`${path}: ${r.status}`);
  return r.json();
}

// ---- rendering -----------------------------------------------------------

function renderConnection(c) {
  if (c) state.connection = c;
  c = state.connection;
  const badge = $("connection-state");
  const where = $("connection-broker");
  const fo = $("failover-banner");
  if (!c) return;
  if (!state.linkUp) {
    badge.textContent = "unknown";
    badge.className = "badge stale";
    where.textContent = `last known: ${c.state}${c.broker ? " via " + c.broker : ""}`;
    fo.hidden = true;
    return;
  }
  const backup = c.state === "CONNECTED" && c.broker_priority_index > 1;
  badge.textContent = c.state;
  badge.className = "badge " + (backup ? "warn" : ({ CONNECTED: "ok", CONNECTING: "warn", RECONNECTING: "warn" }[c.state] || "bad"));
  where.textContent = c.broker
    ? `${c.broker} (${c.broker_priority_index}/${c.broker_count}${backup ? ", backup" : ""})`
    : (c.last_error || "");
  fo.hidden = !backup;
  if (backup) {
    fo.textContent = `Failover: running on backup broker ${c.broker} (${c.broker_priority_index} of ${c.broker_count}); the preferred broker is unreachable.`;
  }
}

function renderStatus(s) {
  if (s) state.status = s;
  s = state.status;
  if (!s) return;
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
  $("connection-stats").replaceChildren(...rows.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
  $("feedback-counts").textContent =
    `${f.ok} OK · ${f.timeout} timeout · ${f.error} error` + (f.avg_latency != null ? ` · avg ${(f.avg_latency * 1000).toFixed(0)} ms` : "");
  const a = s.media.audio, v = s.media.video;
  if (document.activeElement !== $("volume") && a.master_volume != null) $("volume").value = Math.round(a.master_volume * 100);
  $("media").replaceChildren(
    el("dt", {}, "audio"), el("dd", {}, a.device ? "output open" : `no output (${a.device_error || "?"})`),
    el("dt", {}, "playing"), el("dd", {}, a.playing.length ? a.playing.join(", ") : "–"),
    el("dt", {}, "video"), el("dd", {}, v.running ? (v.playing || "idle image") : `not running${v.error ? " (" + v.error + ")" : ""}`),
  );
  const problems = s.problems || [];
  $("problems").replaceChildren(...problems.map((p) => el("li", {}, p)));
  $("problems").hidden = problems.length === 0;
  renderScene(s.scene);
  renderFrontDesk(s, state.linkUp);
}

function renderScene(sc) {
  const cur = $("current-scene");
  const bar = $("progress");
  const waits = $("scene-waits");
  const known = state.linkUp ? "" : "last known: ";
  if (sc) {
    cur.className = "current";
    cur.textContent = `${known}${sc.name} · state ${sc.state} · ${secs(sc.elapsed)}${sc.duration ? " / " + secs(sc.duration) : ""}`;
    // A timeline has a length; a state waiting for an event has none.
    const w = sc.waiting_for || [];
    const timed = sc.duration && !w.some((x) => x.remaining == null);
    bar.hidden = !timed;
    $("progress-bar").style.width = timed ? `${Math.min(100, (100 * sc.elapsed) / sc.duration)}%` : "0";
    waits.replaceChildren(...w.map((x) => el("li", { "data-wait": x.what },
      `waiting for ${x.what} → ${x.goto}`,
      ...(x.remaining != null ? [" ", el("span", { class: "left" }, `in ${secs(x.remaining)}`)] : []))));
    waits.hidden = w.length === 0;
  } else {
    cur.className = "current idle";
    cur.textContent = `${known}idle`;
    bar.hidden = false;
    $("progress-bar").style.width = "0";
    waits.hidden = true;
  }
  const running = sc ? sc.name : null;
  for (const tr of document.querySelectorAll("#scenes tbody tr")) {
    tr.classList.toggle("running", tr.dataset.scene === running);
    const b = tr.querySelector("button");
    b.disabled = running !== null || !state.linkUp;
    b.title = !state.linkUp ? "No link to the controller" : running !== null ? `${running} is running: one show at a time` : "";
  }
}

function renderScenes(list) {
  if (list) state.scenes = list;
  $("scenes").querySelector("tbody").replaceChildren(
    ...state.scenes.map((s) => {
      const b = el("button", { class: "start needs-operator" }, "Start");
      b.addEventListener("click", () => control(`/api/scenes/${encodeURIComponent(s.name)}/start`));
      const warnings = s.warnings || [];
      const name = warnings.length
        ? el("td", {}, s.name, el("ul", { class: "scene-warnings" }, ...warnings.map((w) => el("li", {}, w))))
        : el("td", {}, s.name);
      return el("tr", { "data-scene": s.name },
        name, el("td", { class: "muted col-desc" }, s.description || ""),
        el("td", { class: "col-len" }, s.duration != null ? secs(s.duration) : "event-driven"),
        el("td", { class: "col-count" }, s.action_count), el("td", {}, b));
    }),
  );
  renderScene(state.status ? state.status.scene : null);
}

function renderCommands(list) {
  if (list) state.commands = list;
  $("commands").querySelector("tbody").replaceChildren(
    ...state.commands.map((c) => {
      const b = el("button", { class: "run needs-operator" }, c.running ? "Running…" : "Run");
      b.disabled = c.running || !state.linkUp;
      b.addEventListener("click", () => control(`/api/commands/${encodeURIComponent(c.name)}/run`));
      const what = `${c.topics.join(", ")}${c.duration > 0 ? ` · over ${secs(c.duration)}` : ""}`;
      return el("tr", { "data-command": c.name, class: c.running ? "running-cmd" : "" },
        el("td", {}, c.name), el("td", { class: "muted col-desc" }, what), el("td", {}, b));
    }),
  );
  $("no-commands").hidden = state.commands.length > 0;
}

async function refreshCommands() {
  try {
    renderCommands(await getJSON("/api/commands"));
  } catch (_) { /* the event stream reports the link state */ }
}

function clock(p) {
  // "2026-11-24T10:15:00+01:00[Europe/Bratislava]" -> "Tue 10:15"
  const d = new Date(p.unix * 1000);
  const day = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"][new Date(p.at.slice(0, 10) + "T12:00:00").getDay()];
  return `${day} ${p.at.slice(11, 16)}` + (Math.abs(d - Date.now()) < 86400e3 ? ` (in ${secs(Math.max(0, (d - Date.now()) / 1000))})` : "");
}

function renderSchedule(v) {
  if (v !== undefined) state.schedule = v;
  const s = state.schedule;
  $("schedule-card").hidden = !s;
  if (!s) return;
  $("schedule-today").textContent = `today ${s.today}${s.open_now ? " · open" : " · closed now"} · ${s.timezone}`;
  $("schedule-paused").hidden = !s.paused;
  const t = $("schedule-toggle");
  t.textContent = s.paused ? "Resume" : "Pause";
  t.disabled = !state.linkUp;
  const kinds = { opening: "opening", closing: "closing (safe state)", show: "show" };
  $("schedule-next").replaceChildren(
    ...(s.next.length ? s.next.slice(0, 6).map((p) => el("li", { "data-planned": p.at },
      el("b", {}, clock(p)), ` ${p.scene} `, el("span", { class: "muted" }, kinds[p.kind] || p.kind)))
      : [el("li", { class: "muted" }, "nothing planned in the next two weeks")]),
  );
  $("schedule-recent").replaceChildren(
    ...s.recent.slice(-5).reverse().map((o) => el("li", { class: `outcome-${o.result}` },
      `${o.planned.at.slice(11, 16)} ${o.planned.scene}: ${o.result}${o.detail ? ` (${o.detail})` : ""}`)),
  );
}

async function refreshSchedule() {
  try {
    const r = await fetch("/api/schedule", { cache: "no-store" });
    renderSchedule(r.status === 404 ? null : await r.json());
  } catch (_) { /* the event stream reports the link state */ }
}

function renderChannels(list) {
  if (list) state.channels = list;
  const chans = state.channels || [];
  const up = state.linkUp;
  $("channels").querySelector("tbody").replaceChildren(
    ...chans.map((c) => {
      const buttons = c.messages.map((m) => {
        const b = el("button", { class: "send quiet", "data-message": m }, m);
        b.disabled = !up;
        b.addEventListener("click", () => control("/api/control/send", { topic: c.topic, message: m }));
        return b;
      });
      const input = el("input", { class: "free", placeholder: "message", size: "8", "aria-label": `message for ${c.topic}` });
      const go = el("button", { class: "send-free quiet" }, "Send");
      go.disabled = !up;
      go.addEventListener("click", () => { if (input.value.trim()) control("/api/control/send", { topic: c.topic, message: input.value }); });
      const l = c.last;
      const last = l ? `${l.message} → ${l.result}${l.latency != null ? ` ${(l.latency * 1000).toFixed(0)} ms` : ""}` : "–";
      return el("tr", { "data-channel": c.topic },
        el("td", {}, c.topic, el("div", { class: "muted" }, c.device || "no board announced")),
        el("td", { class: `last ${l ? "result-" + l.result.toLowerCase() : ""}` }, last),
        el("td", { class: "sends" }, ...buttons, el("span", { class: "free-text" }, input, go)));
    }),
  );
  $("no-channels").hidden = chans.length > 0;
}

async function refreshChannels() {
  try {
    renderChannels(await getJSON("/api/control/channels"));
  } catch (_) { /* the event stream reports the link state */ }
}

function renderLog(records, today) {
  $("log-card").hidden = false;
  const c = today.counts;
  const worst = c.timeouts.slice(0, 3).map(([d, n]) => `${d} ${n}`).join(", ");
  $("log-today").textContent = `Today (${today.day}): ${c.shows_started} show(s) started, ${c.shows_completed} completed` +
    `, ${c.timeouts.reduce((a, [, n]) => a + n, 0)} timeout(s)${worst ? ` (${worst})` : ""}, ${c.errors} error(s), ${c.failovers} failover(s)`;
  $("log").replaceChildren(...records.slice().reverse().map((r) => el("li", { class: `log-${r.kind}`, "data-who": r.who || "" },
    el("span", { class: "muted" }, museumTime(r.t)), ` ${r.text}`)));
  // The people seen so far, offered in the filter.
  state.people = state.people || new Set();
  for (const r of records) if (r.who) state.people.add(r.who);
  $("log-people").replaceChildren(...[...state.people].sort().map((p) => el("option", { value: p })));
}

async function refreshLog() {
  const who = $("log-who").value.trim();
  const q = who ? `&who=${encodeURIComponent(who)}` : "";
  $("log-csv").href = `/api/log.csv${who ? "?who=" + encodeURIComponent(who) : ""}`;
  try {
    const [r, t] = await Promise.all([fetch(`/api/log?limit=15${q}`, { cache: "no-store" }), fetch("/api/log/today", { cache: "no-store" })]);
    if (r.status === 404) return;
    renderLog(await r.json(), await t.json());
  } catch (_) { /* the event stream reports the link state */ }
}

function seenText(d) {
  return d.seenAt == null ? "never" : ago(mono() - d.seenAt);
}

function setDevice(d) {
  // Aged from the controller's own count, not the tablet's clock.
  d.seenAt = d.seconds_since_seen >= 0 ? mono() - d.seconds_since_seen : null;
  state.devices.set(d.id, d);
}

function renderDevices() {
  const list = [...state.devices.values()].sort((a, b) => a.id.localeCompare(b.id));
  const up = state.linkUp;
  $("devices").replaceChildren(
    ...list.map((d) =>
      el("li", { "data-device": d.id, "data-presence": up ? d.presence : "unknown", "data-last-presence": d.presence,
        title: d.channels && d.channels.length ? `answers ${d.channels.join(", ")}` : "" },
        el("span", { class: `dot ${up ? d.presence : "unknown"}` }), el("span", { class: "grow" }, d.id),
        el("span", { class: "presence" }, up ? d.presence : `last known ${d.presence}`),
        el("span", { class: "muted seen", "data-device-seen": d.id }, seenText(d)),
        ...(d.broker ? [el("span", { class: d.broker_note ? "broker warn" : "muted broker", title: d.broker_note || "the broker it was last heard on", "data-device-broker": d.id }, d.broker_note ? `on ${d.broker} ⚠ ${d.broker_note}` : `on ${d.broker}`)] : []),
        ...(d.channels && d.channels.length ? [(() => {
          const b = el("button", { class: "test quiet needs-technician", title: "Resend its last command and show the reply time" }, "Test");
          b.disabled = !up;
          b.addEventListener("click", () => control(`/api/control/devices/${encodeURIComponent(d.id)}/test`));
          return b;
        })()] : [])),
    ),
  );
  $("no-devices").hidden = list.length > 0;
  const c = { online: 0, offline: 0, stale: 0 };
  for (const d of list) c[d.presence]++;
  $("device-counts").textContent = list.length
    ? (up ? "" : "last known: ") + `${c.online} online · ${c.offline} offline · ${c.stale} stale`
    : "";
}

function ageDevices() {
  for (const s of document.querySelectorAll("[data-device-seen]")) {
    const d = state.devices.get(s.dataset.deviceSeen);
    if (d) s.textContent = seenText(d);
  }
}

function feedbackItem(f) {
  const t = museumTime(f.at);
  const lat = f.result === "TIMEOUT" ? `>${f.timeout.toFixed(3)} s` : `${(f.latency * 1000).toFixed(0)} ms`;
  const who = f.device ? ` · ${f.result === "TIMEOUT" ? "no answer from " : ""}${f.device}` : "";
  return el("li", { "data-result": f.result },
    el("span", { class: "muted" }, t), el("span", { class: `result ${f.result}` }, f.result),
    el("span", { class: "grow" }, `${f.command_topic} = ${f.message}${who}`), el("span", { class: "muted" }, lat));
}

function addFeedback(f) {
  const log = $("feedback-log");
  log.prepend(feedbackItem(f));
  while (log.children.length > 100) log.lastChild.remove();
}

function renderHealth(h) {
  if (h) state.health = h;
  h = state.health;
  const b = $("health");
  const list = $("health-issues");
  if (!state.linkUp || !h) {
    b.textContent = "health unknown";
    b.className = "badge stale";
    list.hidden = true;
    return;
  }
  b.textContent = h.status;
  b.className = "badge " + ({ healthy: "ok", degraded: "warn" }[h.status] || "bad");
  // Spelt out, not in a tooltip: a tablet has no hover.
  list.replaceChildren(...h.issues.map((i) => el("li", {}, i)));
  list.hidden = h.issues.length === 0;
}

function renderAll() {
  renderStatus();
  renderScenes();
  renderCommands();
  renderChannels();
  renderSchedule();
  renderDevices();
  renderHealth();
}

// ---- data ----------------------------------------------------------------

async function refreshAll() {
  const [status, scenes, devices, feedback, commands] = await Promise.all([
    getJSON("/api/status"), getJSON("/api/scenes"), getJSON("/api/devices"), getJSON("/api/feedback?limit=50"),
    getJSON("/api/commands"),
  ]);
  state.status = status;
  renderScenes(scenes);
  renderCommands(commands);
  renderStatus(status);
  state.devices = new Map();
  for (const d of devices) setDevice(d);
  renderDevices();
  $("feedback-log").replaceChildren(...feedback.map(feedbackItem));
  refreshHealth();
  refreshSchedule();
  refreshLog();
  refreshOutputs();
  refreshChannels();
}

async function refreshStatus() {
  try {
    renderStatus(await getJSON("/api/status"));
  } catch (_) { /* the event stream reports the link state */ }
}

async function refreshDevices() {
  try {
    const devices = await getJSON("/api/devices");
    state.devices = new Map();
    for (const d of devices) setDevice(d);
    renderDevices();
  } catch (_) { /* the event stream reports the link state */ }
}

async function refreshHealth() {
  try {
    const r = await fetch("/healthz", { cache: "no-store" });
    renderHealth(await r.json());
  } catch (_) { /* the event stream reports the link state */ }
}

// A result in the Scene card and as a toast over whichever tab is open.
function showError(text) {
  $("control-info").hidden = true;
  $("control-error").textContent = text;
  $("control-error").hidden = false;
  toast(text, "error");
}

function showInfo(text) {
  $("control-error").hidden = true;
  $("control-info").textContent = text;
  $("control-info").hidden = false;
  clearErrorToasts();
  toast(text, "info");
}

async function control(path, payload) {
  const headers = auth.headers();
  if (payload !== undefined) headers["Content-Type"] = "application/json";
  let body = null;
  try {
    const r = await fetch(path, { method: "POST", headers, body: payload === undefined ? undefined : JSON.stringify(payload) });
    body = await r.json().catch(() => ({}));
    if (r.status === 401 || r.status === 403) {
      // Who we are has changed (a session ended, a role was changed).
      refreshMe();
      throw new Error(r.status === 401 ? `${body.error} (Log in at the top right)` : body.error);
    }
    if (!r.ok) {
      const more = body.errors ? `: ${body.errors.join("; ")}` : "";
      throw new Error((body.error || r.statusText) + more);
    }
    if (path.startsWith("/api/control/devices/")) {
      showInfo(`Test ${body.device}: ${body.topic} = ${body.message} → ${body.text}`);
      refreshChannels();
    } else if (path === "/api/control/send") {
      showInfo(`Sent ${payload.topic} = ${payload.message}; waiting for its feedback…`);
      setTimeout(refreshChannels, 300);
      setTimeout(refreshChannels, 1500);
    } else if (path.startsWith("/api/control/")) {
      showInfo(path.endsWith("/volume") ? `Master volume ${Math.round(payload.volume * 100)} %` : `${path.split("/")[3]} stopped`);
    } else if (path === "/api/scenes/stop" || path === "/api/estop") {
      showInfo(body.safe ? body.safe.summary : "Stopped");
    } else if (path === "/api/estop/reset") {
      showInfo("E-stop reset: shows can start again");
    } else if (path.includes("/start")) {
      showInfo(`Started ${decodeURIComponent(path.split("/")[3])}`);
    } else if (path.startsWith("/api/schedule/")) {
      renderSchedule(body);
      $("control-error").hidden = true;
    } else if (path === "/api/reload") {
      const extra = [
        body.problems && body.problems.length ? `${body.problems.length} scene file(s) did not load` : "",
        body.needs_restart && body.needs_restart.length ? `restart needed for ${body.needs_restart.join(", ")}` : "",
      ].filter(Boolean);
      showInfo(`Reloaded: ${body.scenes.length} scene(s), ${(body.commands || []).length} command file(s)${extra.length ? " · " + extra.join(" · ") : ""}`);
      refreshAll().catch(() => {});
    } else {
      $("control-error").hidden = true;
      $("control-info").hidden = true;
    }
  } catch (e) {
    // fetch itself failed: nothing reached the controller.
    showError(e instanceof TypeError ? `No link to the controller: not done${path === "/api/scenes/stop" ? " — the stop was NOT sent; use the hardware E-stop or try again" : ""}` : e.message);
  }
  refreshStatus();
}

function setLink(up) {
  const changed = state.linkUp !== up;
  state.linkUp = up;
  $("link-banner").hidden = up;
  // An error about the lost link is stale once the link is back.
  if (up && changed) {
    clearErrorToasts();
    if ($("control-error").textContent.startsWith("No link")) $("control-error").hidden = true;
  }
  document.body.classList.toggle("link-down", !up);
  if (changed) renderAll();
}

function heard() {
  state.lastHeard = performance.now();
}

// The stream is back: reload everything, then say it is current.
function recover() {
  if (state.recovering) return;
  state.recovering = true;
  refreshAll().then(() => setLink(true)).catch(() => {}).finally(() => { state.recovering = false; });
}

function connectEvents() {
  if (state.es) state.es.close();
  const es = new EventSource("/api/events");
  state.es = es;
  heard();
  es.addEventListener("hello", () => {
    heard();
    recover();
  });
  es.addEventListener("tick", (e) => {
    heard();
    const t = JSON.parse(e.data);
    if (t.every > 0) state.tick = t.every;
    if (!state.linkUp) recover();
  });
  es.addEventListener("device", (e) => {
    heard();
    setDevice(JSON.parse(e.data).data);
    renderDevices();
  });
  es.addEventListener("feedback", (e) => {
    heard();
    const f = JSON.parse(e.data).data; addFeedback(f); commandFeedback(f);
  });
  es.addEventListener("output", (e) => {
    heard();
    setOutput(JSON.parse(e.data).data);
  });
  es.addEventListener("connection", (e) => {
    heard();
    renderConnection(JSON.parse(e.data).data);
    refreshHealth();
  });
  es.addEventListener("scene", () => { heard(); refreshStatus(); });
  es.addEventListener("media", () => { heard(); refreshStatus(); });
  es.addEventListener("command", (e) => { heard(); refreshCommands(); commandEvent(JSON.parse(e.data).data); });
  // An E-stop, a reset, a pause: the verdict changes (one refresh a burst).
  es.addEventListener("action", () => { heard(); soonStatus(); });
  es.addEventListener("lagged", () => { heard(); refreshAll().catch(() => {}); });
  es.onerror = () => {
    setLink(false);
    // EventSource retries by itself unless the server refused outright.
    if (es.readyState === EventSource.CLOSED && state.es === es) setTimeout(connectEvents, 2000);
  };
}

// A stream that falls silent (Wi-Fi gone, controller off) is dead even if
// the socket still looks open: mark everything stale and reconnect.
setInterval(() => {
  const silent = (performance.now() - state.lastHeard) / 1000;
  if (silent > Math.max(3 * state.tick, 2)) {
    if (state.linkUp) setLink(false);
    connectEvents();
  }
}, 500);

function showTab(tab) {
  if (tab === "all") delete document.body.dataset.tab; else document.body.dataset.tab = tab;
  for (const b of document.querySelectorAll("#tabs button")) b.classList.toggle("on", b.dataset.show === tab);
  localStorage.setItem("roomctl-tab", tab);
}
for (const b of document.querySelectorAll("#tabs button")) b.addEventListener("click", () => showTab(b.dataset.show));
showTab(localStorage.getItem("roomctl-tab") || "all");
$("stop").addEventListener("click", () => control("/api/scenes/stop"));
$("reload").addEventListener("click", () => control("/api/reload"));
$("volume").addEventListener("change", (e) => control("/api/control/volume", { volume: Number(e.target.value) / 100 }));
$("audio-stop").addEventListener("click", () => control("/api/control/audio/stop"));
$("video-stop").addEventListener("click", () => control("/api/control/video/stop"));
$("schedule-toggle").addEventListener("click", () =>
  control(state.schedule && state.schedule.paused ? "/api/schedule/resume" : "/api/schedule/pause"));
$("log-who").addEventListener("change", refreshLog);
setInterval(() => {
  ageDevices();
  if (state.linkUp && state.status && state.status.scene) refreshStatus();
}, 1000);
setInterval(() => {
  if (!state.linkUp) return;
  refreshHealth();
  refreshDevices();
  refreshStatus();
  refreshSchedule();
  refreshLog();
  refreshChannels();
}, 5000);
connectEvents();
renderAll();
