// roomctl scene studio (technician): a scene file's text in a code editor
// (CodeMirror, from npm) with the same diagnostics as `roomctl check`
// shown at their line while typing (checked on the server by the one
// loader), the state machine as a picture (drawn by the server), every
// state's cues on a time axis, saves that never lose work (a refused save
// keeps the text; a conflict is said), the history with diff and revert,
// a preview that runs the editor's text with nothing sent to the boards,
// and "run for real". The running (or previewed) state is highlighted live.
// The forms that change cues, states and transitions without typing are
// in studio-forms.js.
"use strict";

const studio = {
  cm: null,
  file: null,      // the open file's name
  version: null,   // the version it was opened or last saved at (null: new)
  dirty: false,
  view: null,      // the last check's answer
  history: [],
};

function studioEl(id) { return document.getElementById(id); }

async function studioFetch(path, options = {}) {
  const headers = Object.assign({}, auth.headers(), options.body ? { "Content-Type": "application/json" } : {});
  const r = await fetch(path, Object.assign({ cache: "no-store" }, options, { headers }));
  const body = await r.json().catch(() => ({}));
  if (r.status === 401 || r.status === 403) refreshMe();
  return { ok: r.ok, status: r.status, body };
}

function studioSay(text, kind = "info") {
  const p = studioEl("studio-status");
  p.textContent = text;
  p.className = kind;
  p.hidden = !text;
}

// ---- the file list -------------------------------------------------------

async function studioList(select) {
  const r = await studioFetch("/api/studio");
  if (!r.ok) return;
  studio.channels = r.body.channels || {};
  const files = studioEl("studio-file");
  files.replaceChildren(authEl("option", { value: "" }, "— open a scene —"),
    ...r.body.files.map(f => authEl("option", { value: f.file },
      f.loads ? `${f.file} (${f.scene})` : `${f.file} (does not load)`)));
  const tpl = studioEl("studio-template");
  if (!tpl.options.length) tpl.replaceChildren(...r.body.templates.map(t => authEl("option", { value: t.id }, t.title)));
  if (select) files.value = select;
}

async function studioOpen(file) {
  if (studio.dirty && !confirm(`Your changes to ${studio.file} are not saved. Open ${file} anyway?`)) {
    studioEl("studio-file").value = studio.file || "";
    return;
  }
  if (!file) return;
  const r = await studioFetch(`/api/studio/scenes/${encodeURIComponent(file)}`);
  if (!r.ok) { studioSay(r.body.error || `cannot open ${file}`, "error"); return; }
  studio.file = file;
  studio.version = r.body.version;
  studioCueClose();
  studioEl("studio-way-form").hidden = true;
  studio.cm.setOption("mode", file.endsWith(".json") ? { name: "javascript", json: true } : "yaml");
  // A file written with CRLF line ends is saved with them.
  studio.cm.setOption("lineSeparator", r.body.text.includes("\r\n") ? "\r\n" : null);
  studio.cm.setValue(r.body.text);
  studio.cm.clearHistory();
  studio.dirty = false;
  studio.viewText = studio.cm.getValue();
  studioShow(r.body);
  studioSay("");
  studioHistory();
}

// ---- channels and messages offered (Ctrl-Space) --------------------------

// What fits where the cursor is: a channel after `topic`, a message of
// the line's channel after `message`, else channels.
function studioHintList(line) {
  const channels = Object.keys(studio.channels || {});
  if (/message["']?\s*:/.test(line)) {
    const topic = (line.match(/topic["']?\s*:\s*["']?([^"',}\s]+)/) || [])[1];
    const known = topic && studio.channels[topic];
    if (known && known.length) return known;
  }
  return channels;
}

function studioHint(cm) {
  const cur = cm.getCursor();
  const line = cm.getLine(cur.line);
  let start = cur.ch;
  while (start > 0 && /[^\s"',:{}\[\]]/.test(line.charAt(start - 1))) start--;
  const typed = line.slice(start, cur.ch);
  const list = studioHintList(line.slice(0, start)).filter(w => w.startsWith(typed));
  return { list, from: CodeMirror.Pos(cur.line, start), to: cur };
}

// ---- checking while typing -----------------------------------------------

// CodeMirror's lint addon calls this (debounced) with the editor's text.
async function studioLint(text, update) {
  if (!studio.file) { update([]); return; }
  const r = await studioFetch("/api/studio/check", { method: "POST", body: JSON.stringify({ file: studio.file, text }) });
  if (!r.ok) { update([]); studioSay(r.body.error || "the check failed", "error"); return; }
  studio.viewText = text;
  studioShow(r.body);
  update(studioMarks(r.body.diagnostics));
}

function studioMarks(diagnostics) {
  const cm = studio.cm;
  return diagnostics.map(d => {
    const line = Math.max(0, (d.line || 1) - 1);
    const text = cm.getLine(Math.min(line, cm.lineCount() - 1)) || "";
    const ch = Math.max(0, (d.col || 1) - 1);
    return {
      from: CodeMirror.Pos(line, ch),
      to: CodeMirror.Pos(line, Math.max(ch + 1, text.length)),
      message: d.message,
      severity: d.level,
    };
  });
}

function studioShow(view) {
  studio.view = view;
  const list = studioEl("studio-diagnostics");
  list.replaceChildren(...view.diagnostics.map(d => {
    const li = authEl("li", { class: d.level }, `${d.line}:${d.col}: ${d.level === "warning" ? "warning: " : ""}${d.message}`);
    li.addEventListener("click", () => { studio.cm.setCursor(CodeMirror.Pos(d.line - 1, d.col - 1)); studio.cm.focus(); });
    return li;
  }));
  studioEl("studio-ok").textContent = view.ok
    ? (view.diagnostics.length ? `loads, ${view.diagnostics.length} warning(s)` : "loads, no problems")
    : `${view.diagnostics.filter(d => d.level === "error").length} error(s): cannot be saved`;
  studioEl("studio-ok").className = view.ok ? "good" : "bad";
  // The last good picture stays while the text does not load.
  if (view.graph) studioEl("studio-graph").innerHTML = view.graph;
  if (view.timelines) studioTimelines(view.timelines);
  studioEl("studio-run").disabled = !view.scene || studio.dirty;
  studioHighlight();
}

// ---- the timeline --------------------------------------------------------

function studioTimelines(states) {
  const box = studioEl("studio-timeline");
  box.replaceChildren(...states.map(st => {
    const pct = t => `${Math.min(100, (t / st.span) * 100)}%`;
    const lanes = st.lanes.map(l => authEl("div", { class: `lane ${l.kind}` },
      authEl("span", { class: "lane-name" }, l.channel.split("/").slice(1).join("/") || l.channel),
      authEl("div", { class: "lane-track" }, ...l.marks.map(m => {
        const cue = authEl("span", {
          class: `cue ${m.part}`, title: `${m.at}s ${m.label} (line ${m.line})`,
          "data-line": String(m.line),
        }, m.label);
        cue.style.left = pct(m.at);
        if (m.len) { cue.style.width = pct(m.len); cue.classList.add("has-len"); }
        cue.addEventListener("click", () => {
          studio.cm.setCursor(CodeMirror.Pos(m.line - 1, Math.max(0, m.col - 1)));
          studioCueForm({ state: st.state, lane: l, mark: m });
        });
        return cue;
      }))));
    const marks = authEl("div", { class: "lane timeouts" }, authEl("span", { class: "lane-name" }, "timeouts"),
      authEl("div", { class: "lane-track" }, ...st.timeouts.map(m => {
        const t = authEl("span", { class: "timeout", title: m.label }, m.label);
        t.style.left = pct(m.at);
        return t;
      })));
    const add = authEl("button", { class: "quiet add-cue", type: "button", title: `A new cue in ${st.state}` }, "+ cue");
    add.addEventListener("click", () => studioCueForm({ state: st.state }));
    return authEl("div", { class: "state-timeline", "data-state": st.state },
      authEl("h4", {}, `${st.state} `, authEl("span", { class: "muted" }, `0 – ${Math.round(st.span * 10) / 10} s `), add),
      ...lanes, marks, studioWays(st.transitions || [], "ways out"));
  }));
  studioEl("studio-globals").replaceChildren(...(studio.view.globals && studio.view.globals.length
    ? [studioWays(studio.view.globals, "in every state")] : []));
  studioShapeBar();
  box.classList.toggle("stale", studio.viewText !== studio.cm.getValue());
}

// ---- saving, history, revert ---------------------------------------------

async function studioSave() {
  const text = studio.cm.getValue();
  const r = await studioFetch(`/api/studio/scenes/${encodeURIComponent(studio.file)}`, {
    method: "PUT", body: JSON.stringify({ text, base: studio.version }),
  });
  if (r.ok) {
    studio.version = r.body.version;
    studio.dirty = false;
    const w = r.body.warnings.length ? ` (${r.body.warnings.length} warning(s))` : "";
    studioSay(`Saved ${studio.file}${w}; ${r.body.reload.scenes.length} scene(s) loaded.`, "good");
    await studioList(studio.file);
    studioHistory();
    studio.cm.performLint();
    return;
  }
  // Refused: the text stays in the editor, the reason is said.
  if (r.body.diagnostics) {
    studioShow({ ok: false, diagnostics: r.body.diagnostics, graph: null, timelines: null, scene: null });
  }
  studioSay(`Not saved: ${r.body.error || r.status}`, "error");
}

async function studioCreate(ev) {
  ev.preventDefault();
  const name = studioEl("studio-new-name").value.trim();
  const template = studioEl("studio-template").value;
  const r = await studioFetch("/api/studio/new", { method: "POST", body: JSON.stringify({ name, template }) });
  if (!r.ok) { studioSay(`Not created: ${r.body.error || r.status}`, "error"); return; }
  studioEl("studio-new-name").value = "";
  await studioList(r.body.file);
  studio.dirty = false;
  await studioOpen(r.body.file);
  studioSay(`Created ${r.body.file} from the template.`, "good");
}

async function studioHistory() {
  const r = await studioFetch(`/api/studio/scenes/${encodeURIComponent(studio.file)}/history`);
  const sel = studioEl("studio-history");
  studio.history = r.ok ? r.body.history : [];
  sel.replaceChildren(...studio.history.map((h, i) => authEl("option", { value: h.id },
    `${museumTime(h.t_ms / 1000, true)} · ${h.author}${i === 0 && h.version === studio.version ? " (now)" : ""}`)));
  if (studio.history.length > 1) sel.selectedIndex = 1;
  studioEl("studio-revert").disabled = studio.history.length < 2;
  studioEl("studio-diff").disabled = studio.history.length < 1;
}

async function studioRevert() {
  const id = studioEl("studio-history").value;
  if (studio.dirty && !confirm("Your unsaved changes will be replaced. Revert anyway?")) return;
  const r = await studioFetch(`/api/studio/scenes/${encodeURIComponent(studio.file)}/revert`, {
    method: "POST", body: JSON.stringify({ id, base: studio.version }),
  });
  if (!r.ok) { studioSay(`Not reverted: ${r.body.error || r.status}`, "error"); return; }
  studio.dirty = false;
  await studioOpen(studio.file);
  studioSay(`Reverted ${studio.file} to the save of ${studioEl("studio-history").selectedOptions[0]?.textContent || id}.`, "good");
}

async function studioDiff() {
  const id = studioEl("studio-history").value;
  const r = await studioFetch(`/api/studio/scenes/${encodeURIComponent(studio.file)}/diff?from=${encodeURIComponent(id)}`);
  const pre = studioEl("studio-diff-text");
  pre.textContent = r.ok ? (r.body.diff || "no difference") : (r.body.error || "no diff");
  pre.hidden = false;
}

async function studioRun() {
  const name = studio.view && studio.view.scene;
  if (!name) return;
  const r = await studioFetch(`/api/scenes/${encodeURIComponent(name)}/start`, { method: "POST" });
  studioSay(r.ok ? `Started ${name} for real.` : `Not started: ${r.body.error || r.status}`, r.ok ? "good" : "error");
}

// ---- edits without typing ------------------------------------------------

async function studioRenameState(old) {
  const name = prompt(`Rename state ${old} to:`, old);
  if (!name || name === old) return;
  const r = await studioFetch("/api/studio/rename-state", {
    method: "POST", body: JSON.stringify({ text: studio.cm.getValue(), old, new: name }),
  });
  if (!r.ok) { studioSay(`Not renamed: ${r.body.error || r.status}`, "error"); return; }
  studioReplace(r.body.text);
  studioSay(`State ${old} is now ${name} (not saved yet).`, "info");
}

async function studioCopy(rename) {
  if (!studio.file) return;
  if (studio.dirty && !confirm("Your unsaved changes are not part of the copy. Go on?")) return;
  const name = prompt(rename ? `Rename ${studio.file}: new scene name` : `Copy of ${studio.file}: scene name`);
  if (!name) return;
  const path = `/api/studio/scenes/${encodeURIComponent(studio.file)}/${rename ? "rename" : "duplicate"}`;
  const r = await studioFetch(path, { method: "POST", body: JSON.stringify({ name, base: studio.version }) });
  if (!r.ok) { studioSay(`Not ${rename ? "renamed" : "copied"}: ${r.body.error || r.status}`, "error"); return; }
  studio.dirty = false;
  await studioList(r.body.file);
  await studioOpen(r.body.file);
  studioSay(`${rename ? "Renamed" : "Copied"} to ${r.body.file}.`, "good");
}

// ---- preview: the text run here, nothing sent ------------------------------

async function studioPreview() {
  const r = await studioFetch("/api/studio/preview", {
    method: "POST", body: JSON.stringify({ file: studio.file, text: studio.cm.getValue(), sounds: studioEl("studio-sounds").checked }),
  });
  if (!r.ok) {
    if (r.body.diagnostics) studioShow({ ok: false, diagnostics: r.body.diagnostics, graph: null, timelines: null, scene: null });
    studioSay(`No preview: ${r.body.error || r.status}`, "error");
    return;
  }
  studio.previewing = true;
  studioEl("studio-preview-panel").hidden = false;
  studioPreviewShow(r.body);
}

function studioPreviewShow(v) {
  studio.previewView = v;
  studioEl("studio-preview-state").textContent = v.running ? `in ${v.state}, ${v.elapsed.toFixed(1)} s` : "ended";
  const log = studioEl("studio-preview-log");
  log.replaceChildren(...v.lines.map(l => authEl("li", { class: l.kind }, `${l.t.toFixed(2)} s  ${l.text}`)));
  log.scrollTop = log.scrollHeight;
  const inputs = studioEl("studio-preview-inputs");
  const key = JSON.stringify(v.running ? v.messages : []);
  if (inputs.dataset.key !== key) {
    inputs.dataset.key = key;
    inputs.replaceChildren(...(v.running ? v.messages : []).map(([topic, message]) => {
      const payload = message == null ? "pressed" : message;
      const b = authEl("button", { class: "quiet", title: "As if a board had sent it" }, `give ${topic} = ${payload}`);
      b.addEventListener("click", () => studioFetch("/api/studio/preview/input", {
        method: "POST", body: JSON.stringify({ topic, payload }),
      }).then(r => r.ok && studioPreviewShow(r.body)));
      return b;
    }));
  }
  if (!v.running) studio.previewing = false;
}

async function studioPreviewStop() {
  await studioFetch("/api/studio/preview/stop", { method: "POST" });
}

// ---- live: the running state ---------------------------------------------

function studioHighlight() {
  const s = studio.running;
  const mine = s && studio.view && s.name === studio.view.scene;
  for (const g of document.querySelectorAll("#studio-graph [data-state]")) {
    g.classList.toggle("current", !!mine && g.getAttribute("data-state") === s.state);
  }
  for (const t of document.querySelectorAll("#studio-timeline .state-timeline")) {
    t.classList.toggle("current", !!mine && t.dataset.state === s.state);
  }
  const waits = studioEl("studio-waits");
  waits.textContent = mine
    ? `${s.state}: ` + (s.waiting_for || []).map(w => w.remaining != null ? `${w.what} → ${w.goto} in ${w.remaining.toFixed(1)} s` : `${w.what} → ${w.goto}`).join(" · ")
    : "";
}

async function studioPoll() {
  if (document.body.dataset.tab !== "studio" || !auth.can("technician")) return;
  try {
    if (studio.previewing) {
      const r = await studioFetch("/api/studio/preview");
      if (r.ok) {
        studioPreviewShow(r.body);
        studio.running = r.body.running ? { name: r.body.scene, state: r.body.state, waiting_for: r.body.waiting_for } : null;
      }
    } else {
      const s = await getJSON("/api/status");
      studio.running = s.scene || null;
    }
    studioHighlight();
  } catch (_) { /* the event stream shows the link */ }
}

function studioStart() {
  if (!window.CodeMirror || !studioEl("studio-editor")) return;
  studio.cm = CodeMirror(studioEl("studio-editor"), {
    lineNumbers: true, mode: "yaml", gutters: ["CodeMirror-lint-markers"],
    lint: { getAnnotations: studioLint, async: true, delay: 400 }, tabSize: 2, indentWithTabs: false,
    extraKeys: {
      "Ctrl-S": () => studioSave(), "Cmd-S": () => studioSave(),
      "Ctrl-Space": cm => cm.showHint({ hint: studioHint, completeSingle: false }),
    },
  });
  studio.cm.on("change", () => {
    studio.dirty = true;
    // What the timeline points at is the text it was drawn for: until the
    // check of the new text comes back it cannot be clicked.
    studioEl("studio-timeline").classList.add("stale");
    studioEl("studio-run").disabled = true;
  });
  studioEl("studio-file").addEventListener("change", e => studioOpen(e.target.value));
  studioEl("studio-save").addEventListener("click", studioSave);
  studioEl("studio-new").addEventListener("submit", studioCreate);
  studioEl("studio-revert").addEventListener("click", studioRevert);
  studioEl("studio-diff").addEventListener("click", studioDiff);
  studioEl("studio-run").addEventListener("click", studioRun);
  studioEl("studio-preview").addEventListener("click", studioPreview);
  studioEl("studio-duplicate").addEventListener("click", () => studioCopy(false));
  studioEl("studio-rename").addEventListener("click", () => studioCopy(true));
  studioEl("studio-graph").addEventListener("click", e => {
    // The box's label is drawn over it, outside its group: find the box
    // under the pointer.
    const hit = [...studioEl("studio-graph").querySelectorAll("[data-state]")].find(g => {
      const b = g.getBoundingClientRect();
      return e.clientX >= b.left && e.clientX <= b.right && e.clientY >= b.top && e.clientY <= b.bottom;
    });
    if (hit) studioRenameState(hit.getAttribute("data-state"));
  });
  studioEl("studio-preview-stop").addEventListener("click", studioPreviewStop);
  window.addEventListener("beforeunload", e => { if (studio.dirty) e.preventDefault(); });
  setInterval(studioPoll, 500);
  document.querySelector('#tabs button[data-show="studio"]').addEventListener("click", () => {
    studioList(studio.file);
    setTimeout(() => studio.cm.refresh(), 0);
  });
  if (document.body.dataset.tab === "studio") studioList();
}
studioStart();
