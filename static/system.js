// roomctl dashboard: the System card. Version, host, uptime, free space on
// the media and state disks, CPU temperature where the Pi reports it; and,
// for an admin, a restart of roomctl (never a reboot of the Pi), offered
// only when systemd runs it and will start it again. With
// `mqtt.connect: every_broker`, each broker's connection.
"use strict";

function systemBytes(n) {
  if (n == null) return "–";
  return n >= 2 ** 30 ? `${(n / 2 ** 30).toFixed(1)} GiB` : `${Math.round(n / 2 ** 20)} MiB`;
}

function systemUptime(s) {
  const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
  return d ? `${d} d ${h} h` : h ? `${h} h ${m} min` : `${m} min`;
}

async function refreshSystem() {
  try {
    const r = await fetch("/api/system", { cache: "no-store", headers: auth.headers() });
    if (!r.ok) return;
    const v = await r.json();
    const st = await fetch("/api/status", { cache: "no-store", headers: auth.headers() }).then(s => s.json()).catch(() => ({}));
    const brokers = ((st.stats || {}).mqtt || {}).brokers || [];
    const disk = d => `${systemBytes(d.free)} free of ${systemBytes(d.total)} (${d.path})`;
    const rows = [
      ["version", v.version], ["host", v.host || "–"], ["running for", systemUptime(v.uptime)],
      ["media disk", disk(v.media_disk)], ["state disk", disk(v.state_disk)],
      ["CPU", v.cpu_celsius != null ? `${v.cpu_celsius.toFixed(1)} °C` : "no temperature reported"],
      ...brokers.map((b, i) => [`broker ${i + 1}`,
        `${b.broker} · ${b.connection_state.toLowerCase()}${b.active ? " · active" : ""}${b.queue_size ? ` · ${b.queue_size} waiting` : ""}`]),
    ];
    document.getElementById("system").replaceChildren(...rows.flatMap(([k, val]) => [authEl("dt", {}, k), authEl("dd", { "data-row": k }, val)]));
    const b = document.getElementById("system-restart");
    b.disabled = !v.restart_possible;
    b.title = v.restart_possible ? b.title : "roomctl is not run by systemd here: nobody would start it again";
  } catch (_) { /* the event stream reports the link state */ }
}

document.getElementById("system-restart").addEventListener("click", async () => {
  if (!confirm("Restart roomctl? A running scene stops into its safe state; the room is back in a few seconds.")) return;
  const r = await fetch("/api/system/restart", { method: "POST", headers: auth.headers() });
  const body = await r.json().catch(() => ({}));
  const p = document.getElementById("system-result");
  p.hidden = false;
  p.textContent = r.ok ? "Restarting: the page reconnects by itself." : `Not restarted: ${body.error || r.status}`;
});
refreshSystem();
setInterval(refreshSystem, 30000);
