// The panel's HTML from the state the extension holds. Pure: strings in, a string out.

export function escape(text) {
    return String(text ?? '').replace(/[&<>"']/g, (c) => ({
        '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
    })[c]);
}

/** The status dot: connected (green), no session yet (amber), unreachable or refused (red). */
export function statusOf(state) {
    if (state.error) return { level: 'error', text: state.error };
    if (!state.connected) return { level: 'idle', text: 'not connected' };
    if (!state.session) return { level: 'waiting', text: 'connected; no loreweave session follows this chat yet' };
    return { level: 'ok', text: 'connected' };
}

function sessionSection(state) {
    const s = state.session;
    if (!s) return '';
    return `<div class="lw-session">Session <b>${escape(s.title || s.session_id)}</b>
        <a class="lw-link" href="${escape(state.link)}" target="_blank" rel="noopener">open in loreweave</a></div>`;
}

function notesSection(notes) {
    if (!notes) return '';
    const items = notes.map((n) => `<li class="lw-note"><b>${escape(n.title)}</b>
        <span class="lw-version">v${escape(n.version)}</span><div>${escape(n.note_content)}</div></li>`);
    return `<h4>Notes</h4>${items.length ? `<ul class="lw-notes">${items.join('')}</ul>` : '<p class="lw-empty">No notes yet.</p>'}`;
}

function changeItem(change) {
    const text = change.after ?? change.reason ?? '';
    const known = change.known_by && change.known_by.length ? ` <span class="lw-known">known by ${escape(change.known_by.join(', '))}</span>` : '';
    const buttons = change.status === 'proposed'
        ? `<button class="menu_button lw-approve" data-change="${escape(change.id)}">Approve</button>
           <button class="menu_button lw-reject" data-change="${escape(change.id)}">Reject</button>` : '';
    return `<li class="lw-change lw-${escape(change.status)}"><b>${escape(change.title)}</b>
        <span class="lw-kind">${escape(change.kind)} · ${escape(change.status)}</span>${known}
        <div>${escape(text)}</div>${buttons}</li>`;
}

function changesSection(changes) {
    if (!changes) return '';
    const head = `<h4>Turn ${escape(changes.turn)} changed${changes.state === 'pending' ? ' <span class="lw-pending">(still being worked out)</span>' : ''}</h4>`;
    const items = changes.changes.map(changeItem);
    return head + (items.length ? `<ul class="lw-changes">${items.join('')}</ul>` : '<p class="lw-empty">Nothing.</p>');
}

function seenSection(seen) {
    if (!seen) return '';
    const items = seen.entities.map((e) => `<li><b>${escape(e.title)}</b><ul>${e.events
        .map((ev) => `<li>${escape(ev.update_summary)}</li>`).join('')}</ul></li>`);
    return `<h4>Seen as ${escape(seen.observer || 'the narrator')}</h4>${items.length ? `<ul class="lw-seen">${items.join('')}</ul>` : '<p class="lw-empty">Knows nothing yet.</p>'}`;
}

/** The memory part of the panel (the connection settings are static: index.js). */
export function renderMemory(state) {
    const status = statusOf(state);
    return `<div class="lw-status"><span class="lw-dot lw-${status.level}" title="${escape(status.text)}"></span>
        <span class="lw-status-text">${escape(status.text)}</span></div>
        ${sessionSection(state)}${notesSection(state.notes)}${changesSection(state.changes)}${seenSection(state.seen)}`;
}
