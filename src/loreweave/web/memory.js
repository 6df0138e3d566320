// Seeing and steering the memory (DESIGN §1.7): each turn's changes as a compact diff, review
// (approve, edit, reject), the timeline (turns across, entities down, notes as of a turn, seen
// as a character) and a world's canon drift.  Plain DOM against the HTTP API; app.js wires it.

export function memoryViews({ $, api, el, state, diff, refreshNotes }) {
  const base = () => `/api/sessions/${state.session}`;

  // -- a turn's changes, under the turn ---------------------------------------------------------
  const changesOf = (index) => api(`${base()}/turns/${index}/changes`);

  function changeRow(change, after) {
    const cls = `change ${change.status}`;
    const name = change.title || (change.kind === "entry" ? "a new entity" : "");
    const what = change.kind === "rejected" ? el("span", {}, `ignored: ${change.reason || ""}`)
      : change.status === "failed" || change.status === "rejected" ? el("span", {}, el("strong", {}, name), ` ${change.status}: ${change.after || ""}${change.reason ? ` (${change.reason})` : ""}`)
      : change.kind === "entry" ? el("span", {}, "new: ", el("strong", {}, name), ` — ${change.after}`)
      : el("span", {}, el("strong", {}, `${change.title}: `), ...diff(change.before || "", change.after || ""));
    const row = el("div", { class: cls, "data-testid": "change", "data-status": change.status }, what);
    if (change.status === "proposed") row.append(el("span", { class: "buttons" }, ...reviewButtons(change, row, after)));
    return row;
  }

  function reviewButtons(change, row, after) {
    const decide = async (action, body) => {
      await api(`${base()}/changes/${change.id}/${action}`, { method: "POST", ...(body ? { body: JSON.stringify(body) } : {}) });
      await after();
    };
    const button = (label, testid, onclick, cls = "secondary") => el("button", { class: `${cls} small`, "data-testid": testid, onclick }, label);
    return [
      button("Approve", "approve", () => decide("approve"), ""),
      button("Edit", "edit-change", () => {
        const text = el("textarea", { rows: "3", "data-testid": "change-text" }); text.value = change.after || "";
        row.replaceChildren(el("strong", {}, `${change.title}: `), text,
          button("Approve this text", "approve-edited", () => decide("approve", { after: text.value }), ""),
          button("Cancel", "edit-cancel", () => after()));
        state.editing = true;
      }),
      button("Reject", "reject", () => decide("reject")),
    ];
  }

  // the changes of the turns shown, and the badge counting what waits for a person
  async function turnChanges(turns) {
    const found = await Promise.all(turns.slice(-20).map((t) => changesOf(t.turn_index).catch(() => null)));
    const byTurn = new Map(found.filter(Boolean).map((c) => [c.turn, c]));
    const waiting = found.filter(Boolean).flatMap((c) => c.changes).filter((c) => c.status === "proposed");
    const badge = $("#review-badge");
    badge.hidden = !waiting.length;
    badge.textContent = `${new Set(waiting.map((c) => c.id)).size} waiting for review`;
    return byTurn;
  }

  function changesBlock(turnChanges, after) {
    if (!turnChanges || !turnChanges.changes.length) return "";
    return el("div", { class: "changes", "data-testid": `diffs-${turnChanges.turn}` },
      ...turnChanges.changes.map((c) => changeRow(c, after)),
      turnChanges.changes.some((c) => c.status === "proposed") ? el("button", { class: "small", "data-testid": `approve-turn-${turnChanges.turn}`, onclick: async () => {
        await api(`${base()}/turns/${turnChanges.turn}/changes/approve`, { method: "POST" }); await after();
      } }, "Approve all of this turn") : "");
  }

  // -- review mode -------------------------------------------------------------------------------
  let toggled = 0;  // a person's clicks: an answer read before the last one is stale
  let saving = 0;  // clicks not saved yet: an answer read meanwhile may predate them too
  async function refreshReview() {
    if (!state.session) return;
    const asked = toggled;
    const session = await api(base());
    if (asked === toggled && !saving) $("#review-manual").checked = session.review === "manual";
  }
  $("#review-manual").addEventListener("change", async (event) => {
    toggled += 1;
    saving += 1;
    try {
      await api(base(), { method: "PATCH", body: JSON.stringify({ review: event.target.checked ? "manual" : "auto" }) });
    } finally {
      saving -= 1;
      toggled += 1;
    }
    refreshNotes();
  });

  // -- timeline ----------------------------------------------------------------------------------
  async function refreshTimeline() {
    if (!state.session || $("#view-timeline").hidden) return;
    const turns = await api(`${base()}/turns`);
    const slider = $("#timeline-slider");
    const last = Math.max(turns.length - 1, 0);
    const wasLast = slider.value === slider.max;
    slider.max = String(last);
    if (wasLast || Number(slider.value) > last) slider.value = String(last);
    const all = await Promise.all(turns.map((t) => changesOf(t.turn_index)));
    const entities = [...new Set(all.flatMap((c) => c.changes.filter((x) => x.title).map((x) => x.title)))].sort();
    const cell = (turn, title) => {
      const mine = all[turn].changes.filter((c) => c.title === title);
      if (!mine.length) return el("td", {});
      const mark = { applied: mine.some((c) => c.kind === "entry") ? "new" : "changed", proposed: "proposed", rejected: "rejected", failed: "failed" }[mine[0].status];
      return el("td", { class: `cell ${mine[0].status}`, title: mine.map((c) => c.after || c.reason || "").join("\n") }, mark);
    };
    $("#timeline-grid").replaceChildren(
      el("thead", {}, el("tr", {}, el("th", {}, "entity"), ...turns.map((t) => el("th", {}, `turn ${t.turn_index + 1}`)))),
      el("tbody", {}, ...entities.map((title) => el("tr", {}, el("th", {}, title), ...turns.map((t) => cell(t.turn_index, title))))));
    await refreshAsOf();
  }

  async function refreshAsOf() {
    const turn = Number($("#timeline-slider").value);
    $("#timeline-turn").textContent = `after turn ${turn + 1}`;
    const params = new URLSearchParams({ as_of_turn: String(turn) });
    const observer = $("#timeline-observer").value;
    if (observer) params.set("observer", observer);
    const notes = await api(`${base()}/notes?${params}`);
    const events = state.events?.observers || [];
    const box = $("#timeline-observer"), kept = box.value;
    box.replaceChildren(el("option", { value: "" }, "the narrator (everything)"), ...events.map((o) => el("option", { value: o.id }, o.name)));
    box.value = kept;
    $("#timeline-notes").replaceChildren(...(notes.length ? notes.map((n) => el("li", { "data-testid": "asof-note" },
      el("strong", {}, n.title), el("div", { class: "note" }, n.note_content),
      el("div", { class: "muted" }, n.events.map((e) => `turn ${e.turn_index + 1}${e.known_by.length ? ` (known by ${e.known_by.join(", ")})` : ""}`).join(" · "))))
      : [el("li", { class: "empty" }, "Nothing known yet at this turn.")]));
  }
  $("#timeline-slider").addEventListener("input", () => refreshAsOf());
  $("#timeline-observer").addEventListener("change", () => refreshAsOf());

  // -- drift -------------------------------------------------------------------------------------
  async function refreshDrift() {
    if (!state.world || $("#view-drift").hidden) return;
    const drift = await api(`/api/worlds/${state.world}/drift`);
    $("#drift").replaceChildren(...(drift.length ? drift.map((d) => el("li", { "data-testid": "drift" },
      el("strong", {}, d.title), el("div", { class: "muted" }, `lore: ${d.lore}`),
      ...d.sessions.map((s) => driftNote(d, s))))
      : [el("li", { class: "empty" }, "No session's note departs from its lore.")]));
  }

  function driftNote(entry, note) {
    const text = el("textarea", { rows: "4", "data-testid": "canon-text" });
    text.value = `${entry.lore}\n${note.note_content}`;
    const url = `/api/sessions/${note.session_id}/notes/${entry.lore_entry_id}/canon`;
    return el("div", { class: "card" },
      el("div", {}, `${note.session_title || "session"} · ${note.size} characters · turns ${note.turns.map((t) => t + 1).join(", ")}`),
      el("div", { class: "note" }, note.note_content), text,
      el("div", { class: "buttons" },
        el("button", { class: "secondary small", "data-testid": "canon-propose", onclick: async () => {
          text.value = (await api(`${url}?propose=true`, { method: "POST", body: "{}" })).proposal;
        } }, "Propose a merge"),
        el("button", { class: "small", "data-testid": "canon-write", onclick: async () => {
          await api(url, { method: "POST", body: JSON.stringify({ content: text.value }) });
          await refreshDrift();
        } }, "Write into the lore")));
  }

  return { turnChanges, changesBlock, refreshReview, refreshTimeline, refreshDrift };
}
