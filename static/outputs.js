// roomctl dashboard: the Outputs card. What the room believes each output
// is doing now (the last confirmed command, pending while unconfirmed,
// failed after ERROR or TIMEOUT, unknown after its board went offline or
// the daemon restarted, stopped after ROOM/STOP), with since when. Loaded
// from /api/outputs, then kept current by the stream's `output` events.
"use strict";

const outputs = new Map();

const outputWords = {
  confirmed: "confirmed", pending: "pending…", failed: "failed", unknown: "unknown", stopped: "off (STOP)",
};

// A channel that may break after its slashes, never mid-word.
function outputName(channel) {
  const parts = channel.split("/");
  return parts.flatMap((p, i) => (i < parts.length - 1 ? [`${p}/`, el("wbr")] : [p]));
}

function setOutput(o) {
  outputs.set(o.channel, o);
  renderOutputs();
}

function renderOutputs() {
  const list = [...outputs.values()].sort((a, b) => a.channel.localeCompare(b.channel));
  $("outputs").querySelector("tbody").replaceChildren(...list.map(o => {
    const what = o.state === "stopped" ? "" : (o.message || "");
    return el("tr", { "data-channel": o.channel, "data-state": o.state },
      el("td", { class: "output-name" }, ...outputName(o.channel), el("div", { class: "muted" }, o.device || "no board known")),
      el("td", { class: `output-state ${o.state}` },
        el("b", {}, what ? `${what} ` : ""), outputWords[o.state] || o.state,
        o.why ? el("div", { class: "muted" }, o.why) : ""),
      el("td", { class: "muted" }, museumTime(o.since)));
  }));
  $("no-outputs").hidden = list.length > 0;
  const n = s => list.filter(o => o.state === s).length;
  const bad = n("failed") + n("unknown");
  $("output-counts").textContent = list.length
    ? `${list.length} output${list.length === 1 ? "" : "s"}${bad ? `, ${bad} failed or unknown` : ""}` : "";
}

async function refreshOutputs() {
  try {
    const list = await getJSON("/api/outputs");
    outputs.clear();
    for (const o of list) outputs.set(o.channel, o);
    renderOutputs();
  } catch (_) { /* the event stream reports the link state */ }
}
