// loreweave's browser UI: plain ES modules against the HTTP API, no build step.
import { lorebookFiles } from "./lorebook.js";
import { memoryViews } from "./memory.js";

const $ = (selector) => document.querySelector(selector);
const state = { world: null, session: null, picks: 0, entries: [], entry: null, notesTimer: null, queueTimer: null };

const apiKey = $("#api-key");
apiKey.value = localStorage.getItem("loreweave-key") || "";
apiKey.addEventListener("change", () => { localStorage.setItem("loreweave-key", apiKey.value); refreshWorlds(); });

async function api(path, options = {}) {
  const headers = { "Content-Type": "application/json", ...(options.headers || {}) };
  if (apiKey.value) headers.Authorization = `Bearer ${apiKey.value}`;
  const response = await fetch(path, { ...options, headers });
  if (!response.ok) {
    let detail = response.statusText;
    try { detail = readable((await response.json()).detail) || detail; } catch { /* not JSON */ }
    showError(`${response.status}: ${detail}`);
    throw new Error(detail);
  }
  hideError();
  return response.status === 204 ? null : response.json();
}

// "1 entry", "4 entries"
function counted(n, one, many) { return `${n} ${n === 1 ? one : many}`; }

// a validation error as a person reads it: "title: Field required; content: …"
function readable(detail) {
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) return detail.map((d) => typeof d === "string" ? d : `${(d.loc || []).filter((p) => p !== "body").join(".") || "request"}: ${d.msg}`).join("; ");
  return detail ? JSON.stringify(detail) : "";
}
function showError(text) { const box = $("#error"); box.textContent = text; box.hidden = false; }
function hideError() { $("#error").hidden = true; }
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(child ?? ""));
  return node;
}
const list = (text) => text.split(",").map((part) => part.trim()).filter(Boolean);

// -- views ------------------------------------------------------------------------------------
document.querySelectorAll("nav button").forEach((button) => button.addEventListener("click", () => {
  document.querySelectorAll("nav button").forEach((b) => b.classList.toggle("active", b === button));
  document.querySelectorAll(".view").forEach((v) => { v.hidden = v.id !== `view-${button.dataset.view}`; });
  if (button.dataset.view === "queues") refreshQueues();
  if (button.dataset.view === "timeline") memory.refreshTimeline();
  if (button.dataset.view === "drift") memory.refreshDrift();
}));

// -- worlds -------------------------------------------------------------------------------------
async function refreshWorlds(select) {
  const picks = state.picks;
  const worlds = await api("/api/worlds");
  const box = $("#world-select");
  box.replaceChildren(...worlds.map((w) => el("option", { value: w.id }, w.name)));
  const kept = worlds.some((w) => w.id === state.world) ? state.world : null;
  if (state.picks !== picks) select = kept;  // a world picked meanwhile wins over this refresh
  await selectWorld(select || kept || worlds[0]?.id || null);
}
// The current world and session are set here only: another world never keeps the previous
// one's session, entry form or status lines (a turn typed next goes to this world's session).
async function selectWorld(id, switched = id !== state.world) {
  state.picks += 1;
  if (switched) {
    state.world = id; state.session = null;
    editEntry(null);
    $("#transcript-status").textContent = ""; $("#import-status").textContent = "";
  }
  if (state.world) $("#world-select").value = state.world;
  await refreshSessions(); await refreshEntries();  // the session first: its created entries are listed
}
$("#world-select").addEventListener("change", (event) => selectWorld(event.target.value, true));  // a person's switch
$("#new-world").addEventListener("submit", async (event) => {
  event.preventDefault();
  const world = await api("/api/worlds", { method: "POST", body: JSON.stringify({ name: event.target.name.value }) });
  event.target.reset();
  await refreshWorlds(world.id);
});

// -- lore manager ---------------------------------------------------------------------------------
async function refreshEntries() {
  if (!state.world) { $("#entry-list").replaceChildren(el("li", { class: "empty" }, "No world yet: create one above, then add or import its lore.")); return; }
  const params = new URLSearchParams();
  const text = $("#entry-search").value.trim();
  if (text) params.set("text", text);
  if ($("#entry-type").value) params.set("type", $("#entry-type").value);
  if (state.session) params.set("session_id", state.session);
  const asked = [state.world, state.session];
  const entries = await api(`/api/worlds/${state.world}/lore-entries?${params}`);
  if (asked[0] !== state.world || asked[1] !== state.session) return;  // another world's, late
  state.entries = entries;
  const types = [...new Set(state.entries.map((e) => e.entity_type))].sort();
  const current = $("#entry-type").value;
  $("#entry-type").replaceChildren(el("option", { value: "" }, "all types"), ...types.map((t) => el("option", { value: t }, t)));
  $("#entry-type").value = current;
  if (!state.entries.length) { $("#entry-list").replaceChildren(el("li", { class: "empty", "data-testid": "entries-empty" }, text ? "No entry matches." : "No lore yet: write an entry, or import a World Info file or a character card.")); return; }
  const sorted = [...state.entries].sort(SORTS[$("#entry-sort").value] || SORTS.title);
  $("#entry-list").replaceChildren(...sorted.map((entry) => el("li", { onclick: () => editEntry(entry), "data-testid": "entry" },
    entry.title, el("span", { class: "badge" }, entry.entity_type),
    entry.is_dynamically_generated ? el("span", { class: "badge dynamic" }, entry.origin_session_id ? "created in session" : "generated") : "",
    entry.constant ? el("span", { class: "badge" }, "constant") : "", entry.enabled ? "" : el("span", { class: "badge" }, "disabled"),
    el("div", { class: "muted", "data-testid": "entry-scan" }, `keys: ${[entry.title, ...(entry.aliases || [])].join(", ")}`,
      (entry.secondary_keys || []).length ? ` · also: ${entry.secondary_keys.join(", ")}` : "",
      ...PLACEMENT.filter((name) => entry.placement?.[name] !== undefined).map((name) => ` · ${name} ${entry.placement[name]}`)),
    el("div", { class: "muted" }, preview(entry.content)))));
}
$("#entry-search").addEventListener("input", () => refreshEntries());
$("#entry-sort").addEventListener("change", () => refreshEntries());
// a preview ends at a word, not in the middle of one
const preview = (text) => text.length <= 120 ? text : `${text.slice(0, 120).replace(/\s+\S*$/, "")}…`;
const SORTS = {
  title: (a, b) => a.title.localeCompare(b.title),
  type: (a, b) => a.entity_type.localeCompare(b.entity_type) || a.title.localeCompare(b.title),
  order: (a, b) => (a.placement?.order ?? 1e9) - (b.placement?.order ?? 1e9) || a.title.localeCompare(b.title),
  enabled: (a, b) => Number(b.enabled) - Number(a.enabled) || a.title.localeCompare(b.title),
};
$("#entry-type").addEventListener("change", () => refreshEntries());

// where SillyTavern puts the entry in its prompt: kept for export
const PLACEMENT = ["order", "position", "depth", "probability"];
function editEntry(entry) {
  state.entry = entry;
  const form = $("#entry-form");
  $("#entry-form-title").textContent = entry ? `Edit ${entry.title}` : "New lore entry";
  form.title.value = entry?.title || "";
  form.entity_type.value = entry?.entity_type || "Character";
  form.content.value = entry?.content || "";
  form.tags.value = (entry?.tags || []).join(", ");
  form.aliases.value = (entry?.aliases || []).join(", ");
  form.secondary_keys.value = (entry?.secondary_keys || []).join(", ");
  form.key_logic.value = entry?.key_logic || "and_any";
  form.constant.checked = Boolean(entry?.constant);
  form.enabled.checked = entry ? entry.enabled : true;
  for (const name of PLACEMENT) form[name].value = entry?.placement?.[name] ?? "";
  $("#entry-promote").hidden = !entry?.origin_session_id;
  $("#entry-delete").hidden = !entry;
}
$("#entry-new").addEventListener("click", () => editEntry(null));
$("#entry-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  const body = { title: form.title.value, entity_type: form.entity_type.value || "Other", content: form.content.value, tags: list(form.tags.value), aliases: list(form.aliases.value),
    secondary_keys: list(form.secondary_keys.value), key_logic: form.key_logic.value, constant: form.constant.checked, enabled: form.enabled.checked,
    placement: Object.fromEntries(PLACEMENT.filter((name) => form[name].value !== "").map((name) => [name, Number(form[name].value)])) };
  const saved = state.entry
    ? await api(`/api/lore-entries/${state.entry.id}`, { method: "PATCH", body: JSON.stringify(body) })
    : await api(`/api/worlds/${state.world}/lore-entries`, { method: "POST", body: JSON.stringify(body) });
  editEntry(saved);
  await refreshEntries();
});
$("#entry-promote").addEventListener("click", async () => { editEntry(await api(`/api/lore-entries/${state.entry.id}/promote`, { method: "POST" })); refreshEntries(); });
$("#entry-delete").addEventListener("click", async () => {
  if (!confirm(`Delete ${state.entry.title}?`)) return;
  await api(`/api/lore-entries/${state.entry.id}`, { method: "DELETE" });
  editEntry(null); refreshEntries();
});

lorebookFiles({ $, el, state, apiKey, counted, readable, showError, hideError, refreshEntries });

// -- sessions ------------------------------------------------------------------------------------
async function refreshSessions() {
  const world = state.world;
  const sessions = world ? await api(`/api/worlds/${world}/sessions`) : [];
  if (world !== state.world) return;  // another world's answer, come late
  // the sides of branches no request shows any more, and archived sessions, listed apart
  const side = (s) => (s.archived_at ? "archived" : s.abandoned_for ? "abandoned" : "active");
  const option = (s, i) => el("option", { value: s.id }, s.title || `Session ${i + 1}`);
  const groups = [["active", "Sessions"], ["abandoned", "Abandoned sides of branches (archive or delete them)"], ["archived", "Archived"]]
    .map(([kind, label]) => [label, sessions.map((s, i) => [s, i]).filter(([s]) => side(s) === kind)])
    .filter(([, listed]) => listed.length)
    .map(([label, listed]) => el("optgroup", { label }, ...listed.map(([s, i]) => option(s, i))));
  $("#session-select").replaceChildren(...groups);
  if (!sessions.some((s) => s.id === state.session)) state.session = (sessions.find((s) => side(s) === "active") || sessions[0])?.id || null;
  if (state.session) $("#session-select").value = state.session;
  await refreshTurns(); await refreshNotes(); await memory.refreshReview();
}
$("#session-select").addEventListener("change", (event) => { state.session = event.target.value; refreshTurns(); refreshNotes(); refreshEntries(); memory.refreshReview(); });
$("#new-session").addEventListener("click", async () => {
  const session = await api(`/api/worlds/${state.world}/sessions`, { method: "POST", body: JSON.stringify({ title: `Session ${stamp(new Date())}` }) });
  state.session = session.id; await refreshSessions();
});

// a session's title: "Session 2026-12-04 20:44:07", the same in every locale (to the second:
// two sessions started within a minute are told apart)
const two = (n) => String(n).padStart(2, "0");
const stamp = (d) => `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())} ${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
const title = (id) => state.entries.find((e) => e.id === id)?.title || id.slice(0, 8);

// what undoing turns changed, in words
function describeRevert(what, report) {
  const parts = report.notes.map((n) => n.note === null ? `${n.title}'s note removed` : `${n.title}'s note back to its text before turn ${report.from_turn}`);
  parts.push(...report.entries_removed.map((e) => `${e.title} deleted`));
  parts.push(...report.entries_kept.map((e) => `${e.title} kept (${e.reason})`));
  if (report.turns_to_analyse.length) parts.push(`turns ${report.turns_to_analyse.join(", ")} analysed again`);
  $("#transcript-status").textContent = `${what}: ${parts.join("; ") || "no memory had changed yet"}.`;
}
async function changeTurn(what, request) {
  const result = await api(...request);
  describeRevert(what, result.reverted || result);
  state.editing = false;
  await refreshTurns(); await refreshNotes(); await refreshEntries();
}

function turnActions(turn, isLast) {
  const base = `/api/sessions/${state.session}/turns/${turn.turn_index}`;
  const button = (label, testid, onclick, cls = "secondary") => el("button", { class: `${cls} small`, "data-testid": `${testid}-${turn.turn_index}`, onclick }, label);
  const actions = [
    button("Edit", "edit", () => editTurn(turn)),
    button("Delete from here", "delete", () => {
      if (confirm(`Delete turn ${turn.turn_index} and every later turn, with their memory changes?`)) changeTurn(`Deleted from turn ${turn.turn_index}`, [base, { method: "DELETE" }]);
    }),
    button("Fork here", "fork", async () => {
      const forked = await api(`/api/sessions/${state.session}/fork`, { method: "POST", body: JSON.stringify({ at_turn: turn.turn_index }) });
      state.session = forked.id;
      $("#transcript-status").textContent = `Forked at turn ${turn.turn_index}: "${forked.title}" has the memory as it was then.`;
      await refreshSessions(); await refreshEntries();
    }),
  ];
  if (isLast) actions.splice(1, 0, button("Regenerate", "regenerate", () => changeTurn(`Regenerated turn ${turn.turn_index}`, [`${base}/regenerate`, { method: "POST" }])));
  if (turn.alternatives.length) {
    const picker = el("select", { "data-testid": `alternatives-${turn.turn_index}`, onchange: (event) => {
      if (event.target.value !== "") changeTurn(`Reply ${Number(event.target.value) + 1} chosen for turn ${turn.turn_index}`, [base, { method: "PATCH", body: JSON.stringify({ alternative: Number(event.target.value) }) }]);
    } }, el("option", { value: "" }, `${turn.alternatives.length + 1} replies: this one`),
      ...turn.alternatives.map((text, i) => el("option", { value: String(i) }, `earlier reply ${i + 1}: ${text.slice(0, 40)}`)));
    actions.push(picker);
  }
  return el("div", { class: "buttons turn-actions" }, ...actions);
}

function editTurn(turn) {
  state.editing = true;
  const item = document.querySelector(`[data-turn="${turn.turn_index}"]`);
  const user = el("textarea", { "data-testid": "edit-user", rows: "2" }); user.value = turn.user_message;
  const reply = el("textarea", { "data-testid": "edit-reply", rows: "3" }); reply.value = turn.assistant_message;
  const save = el("button", { "data-testid": "edit-save", onclick: () => {
    const body = {};
    if (user.value.trim() !== turn.user_message) body.user_message = user.value;
    if (reply.value.trim() !== turn.assistant_message) body.assistant_message = reply.value;
    if (!Object.keys(body).length) { state.editing = false; refreshTurns(); return; }
    changeTurn(`Edited turn ${turn.turn_index}`, [`/api/sessions/${state.session}/turns/${turn.turn_index}`, { method: "PATCH", body: JSON.stringify(body) }]);
  } }, "Save and re-analyse");
  const cancel = el("button", { class: "secondary", onclick: () => { state.editing = false; refreshTurns(); } }, "Cancel");
  item.replaceChildren(el("label", {}, "You", user), el("label", {}, "Reply", reply), el("div", { class: "buttons" }, save, cancel));
}

function turnItem(turn, isLast, changes, diffs) {
  const used = turn.used_entry_ids.map((id) => el("span", { class: "badge" }, title(id)));
  const errors = turn.processing_errors ? el("div", { class: "muted" }, `rejected: ${turn.processing_errors}`) : "";
  const caused = changes.length ? el("div", { class: "muted", "data-testid": `changes-${turn.turn_index}` }, "memory changes: ", ...changes.map((c) => el("span", { class: "badge" }, c))) : "";
  return el("li", { "data-testid": "turn", "data-turn": String(turn.turn_index) },
    turn.user_message ? el("div", { class: "user" }, `You: ${turn.user_message}`) : "",
    el("div", { class: "reply" }, turn.speaker ? el("strong", { "data-testid": "speaker" }, `${turn.speaker}: `) : "", turn.assistant_message),
    el("div", { class: "muted", "data-testid": `memory-${turn.turn_index}` }, `memory: ${turn.processing_status === "done" && !changes.length ? "done, nothing changed" : turn.processing_status} · entities used: `, ...used), caused, errors,
    memory.changesBlock(diffs, afterReview), inspector(turn), turnActions(turn, isLast));
}
// what went into the turn's prompt, and why each entry was chosen
const WHY = { constant: "always in the prompt (constant)", keyword: "named in the message (a key)", vector: "related in meaning", bm25: "shares words with the message" };
function inspector(turn) {
  const lore = turn.prompt_lore || {};
  if (!lore.entries) return "";
  const tokens = lore.entries.reduce((sum, e) => sum + e.tokens, 0);
  return el("details", { class: "inspector", "data-testid": `inspect-${turn.turn_index}` },
    el("summary", {}, `Prompt inspector: ${counted(lore.entries.length, "entry", "entries")}, ${tokens} tokens of lore`),
    el("ul", {}, ...lore.entries.map((e) => el("li", { "data-testid": "inspected" }, el("strong", {}, e.title), ` — ${WHY[e.why] || e.why} · ${e.tokens} tokens`))),
    el("pre", {}, lore.text));
}
async function refreshTurns() {
  if (!state.session) { $("#turns").replaceChildren(); return; }
  if (state.editing) return;
  const [turns, updates, creations] = await Promise.all([
    api(`/api/sessions/${state.session}/turns`),
    api(`/api/dual-queue/note-updates/${state.session}`),
    api(`/api/dual-queue/entity-creations/${state.session}`),
  ]);
  if (state.streaming) return;  // its reply is streaming into the list: refreshed after
  const diffs = await memory.turnChanges(turns);
  if (state.editing || state.streaming) return;  // a change being edited; a reply streaming in
  // an entry waiting for review is in no list: its proposed change names it
  const waiting = new Map([...diffs.values()].flatMap((d) => d.changes).filter((c) => c.kind === "entry" && c.status === "proposed").map((c) => [c.entry_id, c.title]));
  const name = (id) => waiting.get(id) || title(id);
  const ids = [...updates.map((u) => u.lore_entry_id), ...creations.map((c) => c.created_lore_entry_id)];
  if (ids.some((id) => id && !waiting.has(id) && !state.entries.some((e) => e.id === id))) await refreshEntries();  // entities the session just created
  const changes = new Map();
  const add = (turn, text) => changes.set(turn, [...(changes.get(turn) || []), text]);
  for (const u of updates) add(u.turn_index, `${name(u.lore_entry_id)} ${u.status === "done" ? "noted" : u.status}`);
  for (const c of creations) add(c.turn_index, c.outcome === "created" ? `created ${name(c.created_lore_entry_id)}` : c.outcome === "merged" ? `merged into ${name(c.created_lore_entry_id)}` : c.outcome === "rejected" ? `not created: ${c.error_message || "not grounded in the story"}` : `creation ${c.status}`);
  const open = new Set([...document.querySelectorAll("details.inspector[open]")].map((d) => d.dataset.testid));
  if (!turns.length) { $("#turns").replaceChildren(el("li", { class: "empty" }, "No turns yet: write what happens below.")); return; }
  $("#turns").replaceChildren(...turns.map((t, i) => turnItem(t, i === turns.length - 1, changes.get(t.turn_index) || [], diffs.get(t.turn_index))));
  for (const d of document.querySelectorAll("details.inspector")) if (open.has(d.dataset.testid)) d.open = true;
}
$("#turn-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  if (!state.session) { showError("create a session first"); return; }
  const message = event.target.message.value;
  event.target.reset();
  state.streaming = true;
  const reply = el("div", { class: "reply" });
  const sent = el("li", {}, el("div", { class: "user" }, `You: ${message}`), reply);
  $("#turns").querySelector("li.empty")?.remove();  // "No turns yet" goes with the first turn
  $("#turns").append(sent);
  sent.scrollIntoView({ block: "end" });
  const headers = { "Content-Type": "application/json" };
  if (apiKey.value) headers.Authorization = `Bearer ${apiKey.value}`;
  const response = await fetch(`/api/sessions/${state.session}/turns?stream=true`, { method: "POST", headers, body: JSON.stringify({ message }) });
  if (!response.ok) {
    state.streaming = false;
    const body = await response.json().catch(() => ({}));
    showError(`${response.status}: ${readable(body.detail) || response.statusText}`);
    return;
  }
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut); buffer = buffer.slice(cut + 2);
      const kind = block.match(/^event: (\w+)/m)?.[1];
      const data = JSON.parse(block.match(/^data: (.*)$/m)?.[1] || "{}");
      if (kind === "delta") reply.textContent += data.text;
    }
  }
  state.streaming = false;
  await refreshTurns();
  $("#turns").lastElementChild?.scrollIntoView({ block: "end" });  // the new turn, in view
});

// after a person's review decision: the turns' changes and the notes as they are now
async function afterReview() { state.editing = false; await refreshTurns(); await refreshNotes(); }

// -- notes, history, rollback ----------------------------------------------------------------------
// who knows what (DESIGN §1.6): an event's witnesses in words
const witnesses = (event) => event.known_by.length ? `known by ${event.known_by.join(", ")}` : "public";
const eventItem = (event) => el("li", { "data-testid": "known-event" },
  el("span", { class: "muted" }, `turn ${event.turn_index}: `), event.update_summary,
  el("span", { class: event.known_by.length ? "badge secret" : "badge" }, witnesses(event)));
async function refreshObservers(events) {
  const box = $("#observer-select"), kept = box.value;
  box.replaceChildren(el("option", { value: "" }, "the narrator (everything)"),
    ...events.observers.map((o) => el("option", { value: o.id }, o.name)));
  box.value = events.observers.some((o) => o.id === kept) ? kept : "";
}
$("#observer-select").addEventListener("change", () => refreshNotes());
async function refreshNotes() {
  if (!state.session) { $("#notes").replaceChildren(); return; }
  const session = state.session;
  const everything = await api(`/api/sessions/${session}/events`);
  if (session !== state.session) return;
  state.events = everything;
  await refreshObservers(everything);
  const observer = $("#observer-select").value;
  if (observer) {  // a character's view: what it witnessed or was told, event by event
    const view = await api(`/api/sessions/${session}/events?observer=${encodeURIComponent(observer)}`);
    if (session !== state.session) return;
    $("#notes").replaceChildren(...(view.entities.length ? view.entities.map((k) => el("li", { "data-testid": "known" },
      el("strong", {}, k.title), el("ol", {}, ...k.events.map(eventItem))))
      : [el("li", { class: "empty" }, `${view.observer} knows nothing of this story yet.`)]));
    return;
  }
  const notes = await api(`/api/sessions/${session}/notes`);
  if (!notes.length) { $("#notes").replaceChildren(el("li", { class: "empty" }, "No notes yet: they appear as the story changes the world.")); return; }
  $("#notes").replaceChildren(...notes.map((note) => el("li", { onclick: () => showHistory(note), "data-testid": "note" },
    el("strong", {}, note.title), el("span", { class: "badge" }, `v${note.version}`),
    el("div", { class: "note" }, note.note_content),
    ...(note.missing_events || []).map((m) => el("div", { class: "missing", "data-testid": "missing-event" },
      `missing an event of turn ${m.turn_index} (failed; retry it in Queues): ${m.update_summary}`)))));
}
function diff(before, after) {
  const a = before.split(/\s+/).filter(Boolean), b = after.split(/\s+/).filter(Boolean);
  const table = Array.from({ length: a.length + 1 }, () => new Array(b.length + 1).fill(0));
  for (let i = a.length - 1; i >= 0; i--) for (let j = b.length - 1; j >= 0; j--)
    table[i][j] = a[i] === b[j] ? table[i + 1][j + 1] + 1 : Math.max(table[i + 1][j], table[i][j + 1]);
  const out = []; let i = 0, j = 0;
  while (i < a.length || j < b.length) {
    if (out.length) out.push(document.createTextNode(" "));  // words stay words
    if (i < a.length && j < b.length && a[i] === b[j]) { out.push(document.createTextNode(a[i])); i++; j++; }
    else if (j < b.length && (i >= a.length || table[i][j + 1] >= table[i + 1][j])) out.push(el("ins", {}, b[j++]));
    else out.push(el("del", {}, a[i++]));
  }
  return out;
}
async function showHistory(note) {
  const revisions = await api(`/api/sessions/${state.session}/notes/${note.lore_entry_id}/revisions`);
  const versions = [...revisions.map((r) => ({ version: r.version, text: r.note_content, reason: r.reason })), { version: note.version, text: note.note_content, reason: "current" }];
  $("#history-title").textContent = `History of ${note.title}`;
  $("#history-list").replaceChildren(...versions.map((v, index) => el("li", { "data-testid": "revision" },
    el("strong", {}, `v${v.version}`), el("span", { class: "muted" }, ` ${v.reason} `),
    v.reason === "current" ? "" : el("button", { class: "secondary", "data-testid": `rollback-${v.version}`, onclick: async () => {
      await api(`/api/sessions/${state.session}/notes/${note.lore_entry_id}/rollback`, { method: "POST", body: JSON.stringify({ version: v.version }) });
      await refreshNotes();
      const fresh = (await api(`/api/sessions/${state.session}/notes`)).find((n) => n.lore_entry_id === note.lore_entry_id);
      showHistory(fresh);
    } }, "Roll back to this"),
    el("div", { class: "note" }, ...(index === 0 ? [v.text] : diff(versions[index - 1].text, v.text))))));
  const events = (state.events?.entities || []).find((k) => k.lore_entry_id === note.lore_entry_id)?.events || [];
  $("#history-events").replaceChildren(...events.map(eventItem));
  $("#history").hidden = false;
}
$("#history-close").addEventListener("click", () => { $("#history").hidden = true; });

// -- queues --------------------------------------------------------------------------------------
async function refreshQueues() {
  if ($("#view-queues").hidden) return;
  const status = await api("/api/dual-queue/status");
  const card = (name, label) => {
    const q = status[name];
    const rows = Object.entries(q.counts).flatMap(([k, v]) => [el("dt", {}, k), el("dd", { "data-testid": `${name}-${k}` }, String(v))]);
    if (q.pending_played_now != null) rows.push(el("dt", {}, "pending, sessions played now"), el("dd", { "data-testid": `${name}-played-now` }, String(q.pending_played_now)));
    rows.push(el("dt", {}, "done last minute"), el("dd", {}, String(q.done_last_minute)));
    const latency = q.mean_latency_last_minute_seconds;
    rows.push(el("dt", {}, "mean latency (last minute)"), el("dd", {}, latency == null ? "—" : `${latency.toFixed(1)} s`));
    rows.push(el("dt", {}, "oldest pending"), el("dd", {}, q.oldest_pending_seconds == null ? "—" : `${q.oldest_pending_seconds.toFixed(1)} s`));
    return el("div", { class: "card" }, el("h3", {}, label), el("dl", {}, ...rows));
  };
  $("#queue-cards").replaceChildren(card("analysis", "Analysis"), card("note_updates", "Note updates"), card("entity_creations", "Entity creations"));
  const p = status.priority;
  const labels = { analysis: "analyses", note_updates: "note rewrites", entity_creations: "creations" };
  $("#priority").textContent = `Next free LLM call (${p.calls_in_flight} in flight): sessions with a turn in the last ${p.live_seconds} s first, then ${p.queue_order.map((q) => labels[q]).join(", then ")}, oldest first.`;
  const alerts = await api("/api/dual-queue/alerts");
  $("#alerts").replaceChildren(...alerts.map((a) => el("div", { class: "alert", "data-testid": "alert" },
    el("strong", {}, a.key), ` — ${a.summary} `, el("span", { class: "muted" }, `since ${new Date(a.since).toLocaleTimeString()}`))));
  await refreshCharts();
  // failed jobs block the later work of their key (an entity, or a session's analyses) until a
  // person retries or skips them
  const segment = { analysis: "analysis", note_update: "note-update", entity_creation: "entity-creation" };
  const failed = [...status.analysis.failed, ...status.note_updates.failed, ...status.entity_creations.failed];
  const act = (action, job) => el("button", {
    class: action === "skip" ? "secondary" : "", "data-testid": `${action}-${job.id}`,
    onclick: async () => { await api(`/api/dual-queue/${action}-${segment[job.kind]}/${job.id}`, { method: "POST" }); refreshQueues(); },
  }, action === "skip" ? "Skip" : "Retry");
  $("#failed tbody").replaceChildren(...failed.map((job) => el("tr", {},
    el("td", {}, `${job.kind.replace("_", " ")} (turn ${job.turn_index})`), el("td", {}, job.summary || ""), el("td", {}, job.error_message || ""),
    el("td", {}, act("retry", job), " ", act("skip", job)))));
}

// the last hour of each queue, charted with uPlot (served with the app)
const QUEUE_COLORS = { analysis: "#6941c6", note_updates: "#067647", entity_creations: "#b54708" };
state.charts = {};
async function refreshCharts() {
  const history = await api("/api/dual-queue/history?minutes=60");
  const xs = history.minutes.map((m) => new Date(m).getTime() / 1000);
  for (const [metric, id] of [["done", "#chart-done"], ["latency", "#chart-latency"], ["backlog", "#chart-backlog"]]) {
    const data = [xs, ...Object.keys(QUEUE_COLORS).map((q) => history[q][metric])];
    if (state.charts[metric]) { state.charts[metric].setData(data); continue; }
    const width = Math.max(240, $(id).clientWidth || 360);
    state.charts[metric] = new uPlot({
      width, height: 160, legend: { show: true },
      series: [{}, ...Object.entries(QUEUE_COLORS).map(([q, color]) => ({ label: q.replace("_", " "), stroke: color, width: 2, spanGaps: false }))],
      axes: [{ values: "{H}:{mm}", space: 60 }, { size: 44 }],
    }, data, $(id));
  }
}

const memory = memoryViews({ $, api, el, state, diff, refreshNotes });

state.notesTimer = setInterval(() => {
  if (!$("#view-timeline").hidden && !state.streaming) memory.refreshTimeline();
  if ($("#view-session").hidden) return;
  refreshNotes();
  if (!state.streaming) refreshTurns();
}, 1500);
state.queueTimer = setInterval(refreshQueues, 2000);
refreshWorlds().catch(() => {});
// say so when the LLM is the offline placeholder: otherwise a turn seems to do nothing
fetch("/healthz").then((r) => r.json()).then((health) => {
  $("#offline").hidden = !health.placeholder;
  if (health.placeholder && health.llm_chosen) $("#offline-why").textContent = "the scripted provider is set, with no LOREWEAVE_SCRIPTED_CASSETTE: it plays the bundled placeholder cassette";
}).catch(() => {});
