// roomctl dashboard: the front desk's bar at the top of every tab (the
// room in one sentence from the controller, "Start next show", the panic
// button, the E-stop's reset), the toasts that carry each action's result
// wherever it was taken, times in the museum's zone (not the tablet's), and
// the manual send to a channel no scene uses yet.
"use strict";

const desk = { zone: null, toastSeq: 0 };

// A time in the museum's zone (from /api/status), with its offset.
function museumTime(unix, withDate) {
  const d = new Date(unix * 1000);
  const z = desk.zone;
  const opts = { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false };
  if (withDate) Object.assign(opts, { year: "numeric", month: "2-digit", day: "2-digit" });
  if (z && z.name !== "UTC") {
    try { return new Intl.DateTimeFormat("en-GB", { ...opts, timeZone: z.name }).format(d); } catch (_) { /* below */ }
  }
  const shifted = new Date(d.getTime() + (z ? z.offset : 0) * 1000);
  const iso = shifted.toISOString();
  return withDate ? `${iso.slice(0, 10)} ${iso.slice(11, 19)}` : iso.slice(11, 19);
}

function zoneLabel() {
  const z = desk.zone;
  if (!z) return "";
  const m = Math.abs(z.offset) / 60;
  const off = `UTC${z.offset < 0 ? "-" : "+"}${String(Math.floor(m / 60)).padStart(2, "0")}:${String(m % 60).padStart(2, "0")}`;
  return z.name === "UTC" ? off : `${z.name} (${off})`;
}

// A result shown over every tab for a while; errors stay until dismissed
// or until the same action succeeds.
function toast(text, kind) {
  const box = document.getElementById("toasts");
  const t = authEl("div", { class: `toast ${kind || "info"}`, role: kind === "error" ? "alert" : "status", "data-seq": String(++desk.toastSeq) }, text);
  const close = authEl("button", { class: "quiet", type: "button", "aria-label": "dismiss" }, "×");
  close.addEventListener("click", () => t.remove());
  t.append(close);
  box.append(t);
  while (box.children.length > 3) box.firstChild.remove();
  if (kind !== "error") setTimeout(() => t.remove(), 8000);
}

function clearErrorToasts() {
  for (const t of document.querySelectorAll("#toasts .toast.error")) t.remove();
}

function renderFrontDesk(s, linkUp) {
  if (s && s.zone) desk.zone = s.zone;
  const bar = document.getElementById("frontdesk");
  if (!s || !s.verdict) return;
  const v = s.verdict;
  bar.className = `frontdesk level-${linkUp ? v.level : "unknown"}`;
  document.getElementById("verdict").textContent = linkUp ? v.text : `Last known: ${v.text} (no link to the controller)`;
  const reasons = document.getElementById("verdict-reasons");
  const items = (v.reasons.length > 1 ? v.reasons : []).concat(v.notes || []);
  reasons.replaceChildren(...items.map((r) => authEl("li", {}, r)));
  reasons.hidden = items.length === 0;
  const next = document.getElementById("start-next");
  const why = document.getElementById("start-next-why");
  let reason = "";
  if (!linkUp) reason = "No link to the controller";
  else if (v.level === "latched") reason = "The E-stop is latched: a technician resets it first";
  else if (s.scene) reason = `${s.scene.name} is running: stop it first, or wait for its end`;
  else if (!v.next) reason = "No next show: no schedule and no scenes.default";
  next.textContent = v.next ? `Start next show (${v.next.scene}${v.next.at ? " at " + v.next.at : ""})` : "Start next show";
  next.dataset.scene = v.next ? v.next.scene : "";
  next.disabled = reason !== "";
  next.title = reason;
  why.textContent = reason && auth.can("operator") && v.next ? reason : "";
  why.hidden = why.textContent === "";
  document.getElementById("estop-reset").hidden = v.level !== "latched";
  document.getElementById("zone").textContent = desk.zone ? `· times in ${zoneLabel()}` : "";
  showVolume();
}

function showVolume() {
  document.getElementById("volume-value").textContent = `${document.getElementById("volume").value} %`;
}

async function deskStart() {
  const scene = document.getElementById("start-next").dataset.scene;
  if (scene) control(`/api/scenes/${encodeURIComponent(scene)}/start`);
}

async function deskReset() {
  if (!window.confirm("Reset the E-stop? Shows, the schedule and triggers can start again. Only reset when the room is safe.")) return;
  control("/api/estop/reset", { confirm: "reset" });
}

// One status refresh for a burst of events.
function soonStatus() {
  if (desk.soon) return;
  desk.soon = setTimeout(() => { desk.soon = null; refreshStatus(); }, 250);
}

// What is scrolled to (a link, a focused field, a form's button) lands
// below the bar, not under it.
new ResizeObserver(() => {
  document.documentElement.style.scrollPaddingTop = `${document.getElementById("frontdesk").offsetHeight + 8}px`;
}).observe(document.getElementById("frontdesk"));

// A command file's run, summed up when it ends and its last replies had
// time to come: each step sent, and how its confirmation went.
const runs = new Map();

function commandEvent(c) {
  if (c.event === "started") runs.set(c.name, { steps: c.steps, ok: 0, failed: [] });
  if (c.event !== "ended") return;
  setTimeout(() => {
    const r = runs.get(c.name);
    runs.delete(c.name);
    if (!r) return;
    const how = [`${c.sent} of ${r.steps} step(s) sent${c.cancelled ? " (stopped)" : ""}`, `${r.ok} confirmed`];
    if (r.failed.length) how.push(`${r.failed.length} failed: ${r.failed.slice(0, 3).join(", ")}`);
    toast(`Command ${c.name}: ${how.join(" · ")}`, r.failed.length ? "error" : "info");
  }, 1500);
}

function commandFeedback(f) {
  const r = f.scene && f.scene.startsWith("command ") ? runs.get(f.scene.slice(8)) : null;
  if (!r) return;
  if (f.result === "OK") r.ok += 1; else r.failed.push(`${f.command_topic} ${f.result}`);
}

// Manual control of a channel no scene uses yet (a new relay).
document.getElementById("send-other").addEventListener("submit", (e) => {
  e.preventDefault();
  const f = e.target;
  control("/api/control/send", { topic: f.topic.value.trim(), message: f.message.value });
});

document.getElementById("start-next").addEventListener("click", deskStart);
document.getElementById("volume").addEventListener("input", showVolume);
document.getElementById("estop-reset").addEventListener("click", deskReset);
