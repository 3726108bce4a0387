// roomctl dashboard: statistics over the last days, from /api/stats (the
// show log, counted per museum day on the controller). Charts are drawn
// by uPlot (from npm, pinned by web/package-lock.json); the tables below
// them list every device and scene with the range's totals.
"use strict";

const stats = { data: null, charts: [], busy: false };
// Lines a chart can tell apart; the devices with the most commands get them.
const STATS_SERIES = 8;
const STATS_WHOLE = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000];
const STATS_COLORS = ["#4c8dff", "#2fbf71", "#e0a526", "#e5484d", "#b37feb", "#36cfc9", "#f759ab", "#a0d911"];

function statsDay(d) {
  const [y, m, day] = d.split("-").map(Number);
  return Date.UTC(y, m - 1, day) / 1000;
}

function statsNum(v, unit) {
  return v == null ? "–" : `${Math.round(v * 10) / 10}${unit}`;
}

function statsDuration(s) {
  if (!s) return "–";
  if (s < 60) return `${Math.round(s)} s`;
  if (s < 3600) return `${Math.round(s / 60)} min`;
  return `${Math.round(s / 360) / 10} h`;
}

// One chart: `series` is [{label, values, color, dash, bars}], one value a day.
function statsChart(id, days, series, unit) {
  const fig = document.getElementById(id);
  for (const old of fig.querySelectorAll(".uplot, .chart-empty")) old.remove();
  if (!series.length) {
    fig.append(authEl("p", { class: "muted chart-empty" }, "nothing counted in these days"));
    return null;
  }
  const width = Math.max(220, (fig.clientWidth || 300) - 8);
  const opts = {
    width,
    height: 200,
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"),
    scales: { x: { time: true }, y: { range: (u, lo, hi) => [0, Math.max(hi, 1) * 1.1] } },
    axes: [
      { stroke: "#8b93a1", grid: { stroke: "#2a303a" }, ticks: { stroke: "#2a303a" } },
      { stroke: "#8b93a1", grid: { stroke: "#2a303a" }, ticks: { stroke: "#2a303a" },
        // Wide enough for the longest label; counts in whole numbers.
        size: (u, vals) => 14 + 7 * Math.max(3, ...(vals || []).map((v) => `${v}${unit}`.length)),
        incrs: unit === " ms" ? undefined : STATS_WHOLE,
        values: (u, vals) => vals.map((v) => `${v}${unit}`) },
    ],
    legend: { live: true },
    series: [{ value: (u, ts) => (ts == null ? "–" : new Date(ts * 1000).toISOString().slice(0, 10)) }].concat(series.map((s) => ({
      label: s.label,
      stroke: s.color,
      fill: s.bars ? `${s.color}99` : undefined,
      width: 2,
      dash: s.dash,
      points: { show: true, size: 5 },
      paths: s.bars ? uPlot.paths.bars({ size: [s.bars, 60] }) : undefined,
      value: (u, v) => statsNum(v, unit),
    }))),
  };
  const chart = new uPlot(opts, [days.map(statsDay), ...series.map((s) => s.values)], fig);
  chart.root.dataset.series = String(series.length);
  return chart;
}

function statsTop(devices) {
  return devices.slice().sort((a, b) => b.total.commands - a.total.commands || a.device.localeCompare(b.device)).slice(0, STATS_SERIES);
}

function statsRender(s) {
  for (const c of stats.charts) if (c) c.destroy();
  const top = statsTop(s.devices.filter((d) => d.total.commands > 0));
  const color = (i) => STATS_COLORS[i % STATS_COLORS.length];
  const latency = [];
  top.forEach((d, i) => {
    if (d.total.confirmed === 0) return;
    latency.push({ label: `${d.device} median`, values: d.days.map((x) => x.median_ms), color: color(i) });
    latency.push({ label: `${d.device} p95`, values: d.days.map((x) => x.p95_ms), color: color(i), dash: [6, 4] });
  });
  const failures = top.filter((d) => d.total.timeouts + d.total.errors > 0).map((d) => ({
    label: d.device, values: d.days.map((x) => x.timeouts + x.errors), color: color(top.indexOf(d)),
  }));
  const sum = (f) => s.days.map((_, i) => s.scenes.reduce((a, sc) => a + f(sc.days[i]), 0));
  const shows = s.scenes.length ? [
    { label: "started", values: sum((d) => d.started), color: "#4c8dff", bars: 0.7 },
    { label: "completed", values: sum((d) => d.completed), color: "#2fbf71", bars: 0.4 },
    { label: "stopped", values: sum((d) => d.stopped), color: "#e0a526" },
    { label: "failed", values: sum((d) => d.failed), color: "#e5484d" },
  ] : [];
  const offline = s.devices.filter((d) => d.total.offline_s > 0).slice(0, STATS_SERIES).map((d, i) => ({
    label: d.device, values: d.days.map((x) => Math.round(x.offline_s / 6) / 10), color: color(i),
  }));
  stats.charts = [
    statsChart("chart-latency", s.days, latency, " ms"),
    statsChart("chart-failures", s.days, failures, ""),
    statsChart("chart-shows", s.days, shows, ""),
    statsChart("chart-offline", s.days, offline, " min"),
  ];
  const shown = s.devices.filter((d) => d.total.commands > 0).length;
  const more = document.getElementById("stats-more");
  more.hidden = shown <= STATS_SERIES;
  more.textContent = `The charts show the ${STATS_SERIES} devices with the most commands of ${shown}; the table lists all.`;
  const td = (v, cls) => authEl("td", cls ? { class: cls } : {}, String(v));
  document.querySelector("#stats-devices tbody").replaceChildren(...s.devices.map((d) => {
    const t = d.total;
    return authEl("tr", { "data-device": d.device }, td(d.device, "name"), td(t.commands), td(t.confirmed),
      td(t.timeouts, t.timeouts ? "bad" : ""), td(t.errors, t.errors ? "bad" : ""), td(statsNum(t.median_ms, " ms")),
      td(statsNum(t.p95_ms, " ms")), td(statsDuration(t.offline_s)));
  }));
  document.querySelector("#stats-scenes tbody").replaceChildren(...s.scenes.map((sc) => {
    const t = sc.total;
    return authEl("tr", { "data-scene": sc.scene }, td(sc.scene, "name"), td(t.started), td(t.completed), td(t.stopped), td(t.failed, t.failed ? "bad" : ""));
  }));
  const c = s.connection.reduce((a, d) => ({ failovers: a.failovers + d.failovers, losses: a.losses + d.losses }), { failovers: 0, losses: 0 });
  document.getElementById("stats-connection").textContent =
    `Broker: ${c.failovers} failover(s), ${c.losses} connection loss(es) in these days.`;
  document.getElementById("stats-state").textContent = `${s.days[0]} to ${s.days[s.days.length - 1]} (${s.zone})`;
}

async function statsLoad() {
  if (document.body.dataset.tab !== "log" && document.body.dataset.tab !== undefined) return;
  if (stats.busy) return;
  stats.busy = true;
  const n = Number(document.getElementById("stats-days").value) || 7;
  // The controller counts the museum's days, not the tablet's.
  const q = `?days=${n}`;
  document.getElementById("stats-csv").href = `/api/stats.csv${q}`;
  const err = document.getElementById("stats-error");
  try {
    const r = await fetch(`/api/stats${q}`, { cache: "no-store", headers: auth.headers() });
    if (r.status === 404 || r.status === 401 || r.status === 403) return;
    if (!r.ok) {
      err.textContent = `Statistics: ${await r.text()}`;
      err.hidden = false;
      return;
    }
    err.hidden = true;
    stats.data = await r.json();
    statsRender(stats.data);
  } catch (_) { /* the event stream shows the link */ } finally { stats.busy = false; }
}

function statsStart() {
  if (!document.getElementById("stats-card")) return;
  document.getElementById("stats-days").addEventListener("change", statsLoad);
  for (const b of document.querySelectorAll("#tabs button")) b.addEventListener("click", () => setTimeout(statsLoad, 0));
  // A chart follows its card's width (a turned tablet, a scroll bar that
  // came with the charts themselves).
  const fit = new ResizeObserver((entries) => {
    for (const e of entries) {
      const chart = stats.charts.find((c) => c && c.root.parentElement === e.target);
      const width = Math.max(220, e.target.clientWidth - 8);
      if (chart && Math.abs(chart.width - width) > 2) chart.setSize({ width, height: 200 });
    }
  });
  for (const f of document.querySelectorAll("#stats-card .chart")) fit.observe(f);
  statsLoad();
  // New shows and commands are counted at each scene's end.
  setInterval(statsLoad, 60000);
}
statsStart();
