// roomctl dashboard: who is logged in, what they may see, and the Users tab
// (admin). Loaded before app.js, which asks `auth` for its request headers.
// What a role may not do is hidden, not only disabled: the body carries a
// `can-<role>` class for every role the caller has, and the style sheet
// hides `.needs-<role>` without it.
"use strict";

const ROLES = ["viewer", "operator", "technician", "admin"];

const auth = {
  me: null,
  // A token from the login page's "use an API token" (web.token, say).
  headers() {
    const t = localStorage.getItem("roomctl-token");
    return t ? { Authorization: `Bearer ${t}` } : {};
  },
  can(role) {
    const r = this.me && this.me.role;
    return r != null && ROLES.indexOf(r) >= ROLES.indexOf(role);
  },
};

function authEl(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k.startsWith("data-") || k.startsWith("aria-")) e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

function renderMe() {
  const me = auth.me;
  const body = document.body;
  for (const r of ROLES) body.classList.toggle(`can-${r}`, auth.can(r));
  body.classList.toggle("can-panic", auth.can("operator") || (me && me.open_stop));
  const who = document.getElementById("who");
  const known = me && me.kind !== "anonymous";
  who.textContent = !me ? "" : known
    ? `${me.kind === "token" ? "token " : ""}${me.name} · ${me.role}`
    : me.open ? "" : `${auth.dropped ? auth.dropped + " · " : ""}not logged in${me.role ? " · " + me.role : ""}`;
  document.getElementById("login-link").hidden = !me || known || me.open;
  document.getElementById("logout").hidden = !known;
  document.getElementById("open-badge").hidden = !(me && me.open);
  // A tab the role cannot see (left open by someone else): back to All.
  const tab = body.dataset.tab;
  if ((tab === "users" && !auth.can("admin")) || (tab === "control" && !auth.can("operator")) || (tab === "studio" && !auth.can("technician"))) showTab("all");
  // Nothing to read without a login (web.anonymous: none): to the login page.
  if (me && !me.role) location.href = "/login";
  if (auth.can("admin")) refreshUsers();
}

async function refreshMe() {
  try {
    const r = await fetch("/api/me", { cache: "no-store", headers: auth.headers() });
    if (r.ok) auth.me = await r.json();
    // A stored token that is refused (revoked, mistyped) is dropped, or
    // every request would fail with it; the page says so once.
    if (auth.me && auth.me.refused && localStorage.getItem("roomctl-token")) {
      localStorage.removeItem("roomctl-token");
      auth.dropped = auth.me.refused;
    }
  } catch (_) { /* the event stream reports the link state */ }
  renderMe();
}

async function logout() {
  localStorage.removeItem("roomctl-token");
  await fetch("/api/logout", { method: "POST" }).catch(() => {});
  await refreshMe();
}

// ---- the Users tab -------------------------------------------------------

async function usersCall(method, path, payload) {
  const headers = { ...auth.headers() };
  if (payload !== undefined) headers["Content-Type"] = "application/json";
  const r = await fetch(path, { method, headers, body: payload === undefined ? undefined : JSON.stringify(payload) });
  const body = await r.json().catch(() => ({}));
  const out = document.getElementById("users-result");
  if (!r.ok) {
    out.textContent = body.error || `${r.status} ${r.statusText}`;
    out.className = "error";
    throw new Error(out.textContent);
  }
  out.textContent = "";
  out.className = "info";
  return body;
}

function roleSelect(value, onChange) {
  const s = authEl("select", { "aria-label": "role" }, ...ROLES.map((r) => authEl("option", { value: r, selected: r === value }, r)));
  if (onChange) s.addEventListener("change", () => onChange(s.value));
  return s;
}

function say(text) {
  const out = document.getElementById("users-result");
  out.textContent = text;
  out.className = "info";
}

async function refreshUsers() {
  let v;
  try {
    const r = await fetch("/api/users", { cache: "no-store", headers: auth.headers() });
    if (!r.ok) return;
    v = await r.json();
  } catch (_) { return; }
  const enc = encodeURIComponent;
  document.getElementById("users").querySelector("tbody").replaceChildren(...v.users.map((u) => {
    const pw = authEl("button", { class: "quiet" }, "New password");
    pw.addEventListener("click", async () => {
      const p = prompt(`New password for ${u.name} (at least 8 characters)`);
      if (p) { await usersCall("POST", `/api/users/${enc(u.name)}/password`, { password: p }); say(`Password of ${u.name} changed; their sessions ended.`); }
    });
    const rm = authEl("button", { class: "quiet" }, "Remove");
    rm.addEventListener("click", async () => {
      if (confirm(`Remove ${u.name}?`)) { await usersCall("DELETE", `/api/users/${enc(u.name)}`); say(`${u.name} removed.`); refreshUsers(); }
    });
    const role = roleSelect(u.role, async (r) => {
      try { await usersCall("POST", `/api/users/${enc(u.name)}/role`, { role: r }); say(`${u.name} is now ${r}.`); } catch (_) { /* said */ }
      refreshUsers();
    });
    return authEl("tr", { "data-user": u.name }, authEl("td", {}, u.name), authEl("td", {}, role),
      authEl("td", { class: "muted col-desc" }, u.changed || ""), authEl("td", { class: "sends" }, pw, rm));
  }));
  document.getElementById("tokens").querySelector("tbody").replaceChildren(...v.tokens.map((t) => {
    const rm = authEl("button", { class: "quiet" }, "Revoke");
    rm.addEventListener("click", async () => {
      if (confirm(`Revoke token ${t.name}? Whatever uses it stops working.`)) {
        await usersCall("DELETE", `/api/tokens/${enc(t.name)}`); say(`Token ${t.name} revoked.`); refreshUsers();
      }
    });
    return authEl("tr", { "data-token": t.name }, authEl("td", {}, t.name), authEl("td", {}, t.role),
      authEl("td", { class: "muted col-desc" }, t.created || ""), authEl("td", {}, rm));
  }));
  document.getElementById("users-file").textContent = v.file;
}

document.getElementById("add-user").addEventListener("submit", async (e) => {
  e.preventDefault();
  const f = e.target;
  try {
    await usersCall("POST", "/api/users", { name: f.name.value.trim(), role: f.role.value, password: f.password.value });
    say(`${f.name.value.trim()} added as ${f.role.value}.`);
    f.reset();
    refreshUsers();
  } catch (_) { /* said */ }
});

document.getElementById("add-token").addEventListener("submit", async (e) => {
  e.preventDefault();
  const f = e.target;
  try {
    const t = await usersCall("POST", "/api/tokens", { name: f.name.value.trim(), role: f.role.value });
    document.getElementById("new-token").hidden = false;
    document.getElementById("new-token-value").textContent = t.token;
    say(`Token ${t.name} made: copy it now, it is not shown again.`);
    f.reset();
    refreshUsers();
  } catch (_) { /* said */ }
});

document.getElementById("logout").addEventListener("click", logout);
for (const s of document.querySelectorAll("select[data-roles]")) {
  s.replaceChildren(...ROLES.map((r) => authEl("option", { value: r, selected: r === s.dataset.roles }, r)));
}
refreshMe();
// A role or password changed elsewhere ends the session: notice it.
setInterval(refreshMe, 15000);
