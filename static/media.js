// roomctl dashboard: the Media tab (technician). Every sound and clip with
// its length, format, size and the scenes that use it; what the scenes
// name that is missing; uploads by drag and drop or the file picker,
// several at once, each with its progress and the server's verdict (a
// file that does not play is refused with the reason; an existing name
// is replaced only when confirmed); play here or on the Pi; delete (to
// the trash; refused while a scene uses the file).
"use strict";

const media = { files: [] };

function mediaEl(id) { return document.getElementById(id); }

async function mediaCall(method, path) {
  const r = await fetch(path, { method, cache: "no-store", headers: auth.headers() });
  const body = await r.json().catch(() => ({}));
  return { ok: r.ok, status: r.status, body };
}

function mediaSize(n) {
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(1)} GiB`;
  return n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MiB` : `${Math.max(1, Math.round(n / 1024))} KiB`;
}

function mediaSay(text, kind) {
  const li = authEl("li", { class: kind }, text);
  mediaEl("media-uploads").prepend(li);
  return li;
}

async function mediaRefresh() {
  const r = await mediaCall("GET", "/api/media");
  if (!r.ok) return;
  media.files = r.body.files;
  const free = r.body.free_bytes != null ? `, ${mediaSize(r.body.free_bytes)} free` : "";
  const n = media.files.length;
  mediaEl("media-summary").textContent = `${n} file${n === 1 ? "" : "s"}${free}; uploads up to ${mediaSize(r.body.max_upload)}`;
  const missing = mediaEl("media-missing");
  missing.replaceChildren(...r.body.missing.map(m => authEl("li", { "data-missing": m.name },
    `${m.name} is missing: ${m.used_by.join(", ")} play${m.used_by.length === 1 ? "s" : ""} it`)));
  missing.hidden = !r.body.missing.length;
  mediaEl("media-files").querySelector("tbody").replaceChildren(...media.files.map(f => {
    const here = authEl("button", { class: "quiet", type: "button", title: "Play it in this browser" }, "▶ here");
    here.addEventListener("click", () => mediaPlayHere(f));
    const pi = authEl("button", { class: "quiet", type: "button", title: "Play it on the Pi's speakers or screen" }, "▶ on the Pi");
    pi.addEventListener("click", () => mediaPlayOnPi(f));
    const del = authEl("button", { class: "quiet", type: "button", title: f.used_by.length ? `Used by ${f.used_by.join(", ")}` : "To the trash" }, "Delete");
    del.addEventListener("click", () => mediaDelete(f));
    return authEl("tr", { "data-file": f.name, class: f.used_by.length ? "" : "unused" },
      authEl("td", { class: "media-name" }, f.name, authEl("div", { class: "muted" }, `${f.kind} · ${mediaSize(f.size)}`)),
      authEl("td", {}, f.duration != null ? `${f.duration.toFixed(1)} s` : "–"),
      authEl("td", {}, f.format || "–"),
      authEl("td", { class: "used" }, f.used_by.length ? f.used_by.join(", ") : "unused"),
      authEl("td", { class: "actions" }, here, pi, del));
  }));
  mediaEl("media-none").hidden = media.files.length > 0;
}

// One file up, with its progress: PUT with the file as the body.
function mediaPut(file, replace) {
  return new Promise(resolve => {
    const li = mediaSay(`${file.name}: uploading…`, "info");
    const bar = authEl("progress", { max: "100", value: "0" });
    li.append(bar);
    const x = new XMLHttpRequest();
    x.open("PUT", `/api/media/${encodeURIComponent(file.name)}${replace ? "?replace=true" : ""}`);
    for (const [k, v] of Object.entries(auth.headers())) x.setRequestHeader(k, v);
    x.upload.onprogress = e => { if (e.lengthComputable) bar.value = String(Math.round(100 * e.loaded / e.total)); };
    x.onload = () => {
      let body = {};
      try { body = JSON.parse(x.responseText); } catch (_) { /* not JSON */ }
      bar.remove();
      const ok = x.status === 201;
      li.className = ok ? "good" : "bad";
      li.textContent = ok
        ? `${file.name}: kept (${body.duration != null ? body.duration.toFixed(1) + " s" : "length unknown"})`
        : `${file.name}: not kept: ${body.error || x.status}`;
      li.dataset.result = ok ? "kept" : "refused";
      li.dataset.file = file.name;
      resolve({ status: x.status, body });
    };
    x.onerror = () => { li.className = "bad"; li.textContent = `${file.name}: the upload broke off`; resolve({ status: 0, body: {} }); };
    x.send(file);
  });
}

async function mediaUpload(files) {
  for (const file of files) {
    let replace = false;
    if (media.files.some(f => f.name === file.name)) {
      if (!confirm(`There is a file ${file.name} already. Replace it? (The old one goes to the trash.)`)) continue;
      replace = true;
    }
    const r = await mediaPut(file, replace);
    // Someone else kept that name meanwhile: ask, then replace.
    if (r.status === 409 && !replace && /already/.test(r.body.error || "")
        && confirm(`${r.body.error} Replace it?`)) {
      await mediaPut(file, true);
    }
  }
  await mediaRefresh();
}

async function mediaPlayHere(f) {
  const r = await fetch(`/api/media/${encodeURIComponent(f.name)}/file`, { headers: auth.headers() });
  if (!r.ok) { mediaSay(`${f.name}: cannot be fetched (${r.status})`, "bad"); return; }
  const url = URL.createObjectURL(await r.blob());
  const player = authEl(f.kind === "video" ? "video" : "audio", { controls: "", src: url, "data-file": f.name });
  mediaEl("media-player").replaceChildren(authEl("div", { class: "muted" }, f.name), player);
  player.play().catch(() => {});
}

async function mediaPlayOnPi(f) {
  const r = await mediaCall("POST", `/api/media/${encodeURIComponent(f.name)}/play`);
  mediaSay(r.ok ? `${f.name}: playing on the Pi` : `${f.name}: not played: ${r.body.error || r.status}`, r.ok ? "good" : "bad");
}

async function mediaDelete(f) {
  if (!confirm(`Delete ${f.name}? It goes to the trash.`)) return;
  const r = await mediaCall("DELETE", `/api/media/${encodeURIComponent(f.name)}`);
  mediaSay(r.ok ? `${f.name}: moved to the trash` : `${f.name}: not deleted: ${r.body.error || r.status}`, r.ok ? "good" : "bad");
  if (r.ok) mediaRefresh();
}

function mediaStart() {
  const drop = mediaEl("media-drop");
  if (!drop) return;
  mediaEl("media-pick").addEventListener("change", e => { mediaUpload([...e.target.files]); e.target.value = ""; });
  drop.addEventListener("dragover", e => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", e => {
    e.preventDefault();
    drop.classList.remove("over");
    mediaUpload([...e.dataTransfer.files]);
  });
  document.querySelector('#tabs button[data-show="media"]').addEventListener("click", mediaRefresh);
  if (document.body.dataset.tab === "media") mediaRefresh();
}
mediaStart();
