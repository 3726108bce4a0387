// roomctl scene studio: edits without typing. A cue is changed, moved or
// deleted from a form opened by clicking it on the timeline; a cue, a
// state or a transition is added from a form; a transition is deleted by
// its ×. The server makes each edit in the text itself (the file's
// format, comments and key order stay) and the editor takes it as one
// change the author can undo; Save keeps it, as for typing.
"use strict";

const studioParts = {
  machine: [["enter", "on entering"], ["timeline", "on the timeline"], ["exit", "on leaving"]],
  simple: [["actions", "on the timeline"], ["stop", "when stopped"]],
};

function studioSimple() { return !!studio.view && studio.view.form === "simple"; }

function studioStates() { return ((studio.view && studio.view.timelines) || []).map(t => t.state); }

function studioFill(select, pairs, value) {
  select.replaceChildren(...pairs.map(([v, label]) => authEl("option", { value: v }, label)));
  if (value != null) select.value = value;
}

// The editor's text becomes `text`: only what differs is replaced, so
// one undo takes the edit back and the editor keeps its place.
function studioReplace(text) {
  const cm = studio.cm;
  const old = cm.getValue();
  if (old === text) return false;
  let a = 0;
  while (a < old.length && a < text.length && old[a] === text[a]) a++;
  let b = 0;
  while (b < old.length - a && b < text.length - a && old[old.length - 1 - b] === text[text.length - 1 - b]) b++;
  cm.replaceRange(text.slice(a, text.length - b), cm.posFromIndex(a), cm.posFromIndex(old.length - b));
  return true;
}

// Asks the server for the editor's text with `edit` made; says `done`.
async function studioEdit(edit, done) {
  if (!studio.file) return false;
  // A cue or transition is named by where the last check saw it: not in
  // a text changed since.
  if (edit.line != null && studio.viewText !== studio.cm.getValue()) {
    studioSay("The timeline is catching up with the text: try again in a moment.", "error");
    return false;
  }
  const r = await studioFetch("/api/studio/edit", {
    method: "POST", body: JSON.stringify({ text: studio.cm.getValue(), edit }),
  });
  if (!r.ok) { studioSay(`Not changed: ${r.body.error || r.status}`, "error"); return false; }
  studioReplace(r.body.text);
  studioSay(`${done} (not saved yet).`, "info");
  return true;
}

// ---- cues ------------------------------------------------------------------

function studioOfferMessages() {
  const list = (studio.channels || {})[studioEl("studio-cue-topic").value.trim()] || [];
  studioEl("studio-messages").replaceChildren(...list.map(m => authEl("option", { value: m })));
}

function studioOfferChannels() {
  studioEl("studio-channels").replaceChildren(...Object.keys(studio.channels || {}).map(c => authEl("option", { value: c })));
}

function studioTimedPart() {
  const part = studioEl("studio-cue-part").value;
  const timed = part === "timeline" || part === "actions";
  studioEl("studio-cue-at").disabled = !timed;
  studioEl("studio-cue-at").parentElement.classList.toggle("off", !timed);
  return timed;
}

// The cue form for `{state, lane, mark}` (a cue clicked on the timeline)
// or `{state}` (a new cue there).
function studioCueForm(what) {
  const simple = studioSimple();
  const m = what.mark;
  const part = !m ? (simple ? "actions" : "timeline")
    : m.part === "timeline" ? (simple ? "actions" : "timeline") : m.part;
  studio.cueEditing = m ? {
    line: m.line, col: m.col, state: what.state, part, at: m.at,
    action: what.lane.kind, topic: what.lane.channel, message: m.label,
  } : null;
  studioEl("studio-cue-title").textContent = m ? `Cue on line ${m.line}` : `New cue in ${simple ? "the list" : what.state}`;
  studioFill(studioEl("studio-cue-state"), studioStates().map(s => [s, s]), what.state);
  studioEl("studio-cue-state").parentElement.hidden = simple;
  studioFill(studioEl("studio-cue-part"), studioParts[simple ? "simple" : "machine"], part);
  studioEl("studio-cue-at").value = m ? String(m.at) : "0";
  studioEl("studio-cue-action").value = m ? what.lane.kind : "mqtt";
  studioEl("studio-cue-topic").value = m ? what.lane.channel : "";
  studioEl("studio-cue-message").value = m ? m.label : "";
  studioEl("studio-cue-delete").hidden = !m;
  studioTimedPart();
  studioOfferChannels();
  studioOfferMessages();
  studioEl("studio-way-form").hidden = true;
  const form = studioEl("studio-cue-form");
  form.hidden = false;
  form.scrollIntoView({ block: "nearest" });
  studioEl(m ? "studio-cue-message" : "studio-cue-topic").focus();
}

function studioCueClose() {
  studioEl("studio-cue-form").hidden = true;
  studio.cueEditing = null;
}

async function studioCueApply(ev) {
  ev.preventDefault();
  const simple = studioSimple();
  const state = simple ? null : studioEl("studio-cue-state").value;
  const part = studioEl("studio-cue-part").value;
  const timed = studioTimedPart();
  const at = Number(studioEl("studio-cue-at").value || 0);
  const action = studioEl("studio-cue-action").value;
  const topic = studioEl("studio-cue-topic").value.trim();
  const message = studioEl("studio-cue-message").value.trim();
  const old = studio.cueEditing;
  let ok = true;
  if (!old) {
    // A timed list says a board's cue by its topic alone.
    const cue = { message, action: simple && action === "mqtt" ? null : action, topic: topic || null };
    if (timed) cue.at = at;
    ok = await studioEdit({ op: "add_cue", state, part, cue }, `A cue added${state ? ` to ${state}` : ""}`);
  } else {
    const change = {};
    if (timed && at !== old.at) change.at = at;
    if (action !== old.action) change.action = action;
    if (topic !== old.topic) change.topic = topic;
    if (message !== old.message) change.message = message;
    const moved = (!simple && state !== old.state) || part !== old.part;
    if (moved) {
      if (timed) change.at = at;
      ok = await studioEdit({ op: "move_cue", line: old.line, col: old.col, state, part, change },
        `The cue moved${state ? ` to ${state}` : ""}`);
    } else if (Object.keys(change).length) {
      ok = await studioEdit({ op: "set_cue", line: old.line, col: old.col, change }, "The cue changed");
    }
  }
  if (ok) studioCueClose();
}

async function studioCueDelete() {
  const old = studio.cueEditing;
  if (!old) return;
  if (await studioEdit({ op: "delete_cue", line: old.line, col: old.col }, `The cue ${old.message} deleted`)) studioCueClose();
}

// ---- states and transitions -------------------------------------------------

async function studioAddState() {
  const name = prompt("Name of the new state:");
  if (!name) return;
  await studioEdit({ op: "add_state", name: name.trim() }, `State ${name.trim()} added: give it cues and a way in`);
}

function studioWayForm() {
  const states = studioStates().filter(s => s !== "END");
  studioFill(studioEl("studio-way-from"), [...states.map(s => [s, s]), ["", "every state (global)"]], states[0]);
  studioFill(studioEl("studio-way-goto"), [...states.map(s => [s, s]), ["END", "END (the scene ends)"]], "END");
  studioWayType();
  studioCueClose();
  const form = studioEl("studio-way-form");
  form.hidden = false;
  form.scrollIntoView({ block: "nearest" });
}

// Only the fields the chosen kind of transition takes are shown.
function studioWayType() {
  const type = studioEl("studio-way-type").value;
  for (const l of studioEl("studio-way-form").querySelectorAll("label[data-for]")) {
    l.hidden = !l.dataset.for.split(" ").includes(type);
  }
}

async function studioWayApply(ev) {
  ev.preventDefault();
  const type = studioEl("studio-way-type").value;
  const transition = { type, goto: studioEl("studio-way-goto").value };
  if (type === "timeout") transition.delay = Number(studioEl("studio-way-delay").value);
  if (type === "audioEnd" || type === "videoEnd") transition.target = studioEl("studio-way-target").value.trim();
  if (type === "mqttMessage") {
    transition.topic = studioEl("studio-way-topic").value.trim();
    transition.message = studioEl("studio-way-message").value.trim();
  }
  const from = studioEl("studio-way-from").value;
  const ok = await studioEdit({ op: "add_transition", state: from || null, transition },
    `A transition added ${from ? `from ${from}` : "to every state"}`);
  if (ok) studioEl("studio-way-form").hidden = true;
}

// A row of transitions, each with its × to delete it.
function studioWays(ways, title) {
  return authEl("div", { class: "lane ways" }, authEl("span", { class: "lane-name" }, title),
    authEl("div", { class: "way-list" }, ...ways.map(w => {
      const x = authEl("button", { class: "quiet way-delete", type: "button", title: `Delete ${w.label}`, "aria-label": `delete ${w.label}` }, "×");
      x.addEventListener("click", async () => {
        if (confirm(`Delete the transition ${w.label}?`)) {
          await studioEdit({ op: "delete_transition", line: w.line, col: w.col }, `Transition ${w.label} deleted`);
        }
      });
      return authEl("span", { class: "way", "data-line": String(w.line) }, w.label, x);
    })));
}

// What the bar offers fits the scene's form: a timed list has one state.
function studioShapeBar() {
  const simple = studioSimple();
  studioEl("studio-add-state").hidden = simple;
  studioEl("studio-add-way").hidden = simple;
}

function studioFormsStart() {
  if (!studioEl("studio-cue-form")) return;
  studioEl("studio-cue-form").addEventListener("submit", studioCueApply);
  studioEl("studio-cue-part").addEventListener("change", studioTimedPart);
  studioEl("studio-cue-topic").addEventListener("input", studioOfferMessages);
  studioEl("studio-cue-delete").addEventListener("click", studioCueDelete);
  studioEl("studio-cue-cancel").addEventListener("click", studioCueClose);
  studioEl("studio-add-cue").addEventListener("click", () => {
    const states = studioStates();
    const current = studio.cueEditing && studio.cueEditing.state;
    if (states.length) studioCueForm({ state: current || states[0] });
  });
  studioEl("studio-add-state").addEventListener("click", studioAddState);
  studioEl("studio-add-way").addEventListener("click", studioWayForm);
  studioEl("studio-way-type").addEventListener("change", studioWayType);
  studioEl("studio-way-form").addEventListener("submit", studioWayApply);
  studioEl("studio-way-cancel").addEventListener("click", () => { studioEl("studio-way-form").hidden = true; });
}
studioFormsStart();
