// roomctl dashboard: the daemon's live log (technician), on the Show log
// tab. The same lines journald gets, read on every second from the last
// one shown, filtered by level, target and text on the server; a flood
// comes as a count of lines left out, not line by line. Pause holds the
// view; Download saves what the daemon keeps.
"use strict";

const dlog = { next: 0, paused: false, busy: false, shown: 0 };
const DLOG_MAX = 500;

function dlogQuery(extra) {
  const p = new URLSearchParams();
  for (const [k, id] of [["level", "dlog-level"], ["target", "dlog-target"], ["q", "dlog-q"]]) {
    const v = document.getElementById(id).value.trim();
    if (v) p.set(k, v);
  }
  for (const [k, v] of Object.entries(extra || {})) p.set(k, v);
  return p.toString();
}

function dlogLine(l) {
  const t = museumTime(l.t);
  return authEl("li", { class: `lv-${l.level}`, "data-target": l.target },
    authEl("span", { class: "muted" }, `${t} `), `${l.level} ${l.target}: ${l.text}`);
}

async function dlogPoll() {
  const on = document.body.dataset.tab === "log" && auth.can("technician");
  if (!on || dlog.paused || dlog.busy) return;
  dlog.busy = true;
  try {
    const r = await fetch(`/api/logs?${dlogQuery({ after: dlog.next })}`, { cache: "no-store", headers: auth.headers() });
    if (!r.ok) return;
    const page = await r.json();
    const list = document.getElementById("dlog");
    const atEnd = list.scrollTop + list.clientHeight >= list.scrollHeight - 4;
    const add = [];
    if (page.skipped > 0 || page.lost > 0) {
      const n = page.skipped + page.lost;
      add.push(authEl("li", { class: "skipped" }, `… ${n} more line${n === 1 ? "" : "s"} (a flood): Download has what the daemon keeps`));
    }
    add.push(...page.lines.map(dlogLine));
    list.append(...add);
    while (list.children.length > DLOG_MAX) list.firstChild.remove();
    if (atEnd) list.scrollTop = list.scrollHeight;
    dlog.next = page.next;
    document.getElementById("dlog-state").textContent = `${list.children.length} line(s) shown`;
  } catch (_) { /* the event stream shows the link */ } finally { dlog.busy = false; }
}

function dlogRestart() {
  dlog.next = 0;
  document.getElementById("dlog").replaceChildren();
  dlogPoll();
}

async function dlogDownload() {
  const r = await fetch(`/api/logs.txt?${dlogQuery()}`, { headers: auth.headers() });
  if (!r.ok) return;
  const a = authEl("a", { href: URL.createObjectURL(await r.blob()), download: "roomctl.log" });
  document.body.append(a);
  a.click();
  a.remove();
}

function dlogStart() {
  if (!document.getElementById("dlog")) return;
  for (const id of ["dlog-level", "dlog-target", "dlog-q"]) {
    document.getElementById(id).addEventListener("change", dlogRestart);
  }
  const pause = document.getElementById("dlog-pause");
  pause.addEventListener("click", () => {
    dlog.paused = !dlog.paused;
    pause.textContent = dlog.paused ? "Resume" : "Pause";
    document.getElementById("dlog-state").textContent = dlog.paused ? "paused" : "";
    if (!dlog.paused) dlogPoll();
  });
  document.getElementById("dlog-download").addEventListener("click", dlogDownload);
  setInterval(dlogPoll, 1000);
}
dlogStart();
