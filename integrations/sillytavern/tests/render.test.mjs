import assert from 'node:assert/strict';
import { test } from 'node:test';

import { gather } from '../lib/memory.js';
import { escape, renderMemory, statusOf } from '../lib/render.js';

test('text from loreweave is escaped', () => {
    assert.equal(escape('<b>"x" & \'y\'</b>'), '&lt;b&gt;&quot;x&quot; &amp; &#39;y&#39;&lt;/b&gt;');
    const html = renderMemory({ connected: true, session: { session_id: 's', title: '<i>' }, notes: [{ title: 'A', version: 1, note_content: '<script>' }] });
    assert.ok(!html.includes('<script>') && html.includes('&lt;script&gt;') && html.includes('&lt;i&gt;'));
});

test('the status dot: unreachable, no session yet, following', () => {
    assert.equal(statusOf({ error: 'HTTP 401' }).level, 'error');
    assert.equal(statusOf({ connected: false }).level, 'idle');
    assert.equal(statusOf({ connected: true }).level, 'waiting');
    assert.equal(statusOf({ connected: true, session: {} }).level, 'ok');
});

test('a proposed change has approve and reject; a done one none', () => {
    const changes = {
        turn: 2, state: 'done', changes: [
            { id: 'c1', kind: 'note_update', title: 'Mira', after: 'Mira lit the lamp.', status: 'proposed', known_by: ['Kai'] },
            { id: 'c2', kind: 'note_update', title: 'Kai', after: 'Kai slept.', status: 'applied', known_by: [] },
        ],
    };
    const html = renderMemory({ connected: true, session: { session_id: 's' }, changes });
    assert.equal((html.match(/lw-approve/g) || []).length, 1);
    assert.ok(html.includes('data-change="c1"') && html.includes('known by Kai') && html.includes('Turn 2 changed'));
});

class FakeClient {
    constructor(answers) { this.answers = answers; this.calls = []; }
    async health() { return this.answers.health(); }
    async lookup(messages, group) { this.calls.push(['lookup', messages.length, group]); return this.answers.session; }
    async notes() { return [{ title: 'Seraphina', version: 2, note_content: 'n' }]; }
    async lastTurn() { return 1; }
    async changes() { const e = new Error('gone'); e.status = 404; throw e; }
    async events(_s, observer) { return { observer, entities: [] }; }
    uiLink(s) { return `http://lw/#session=${s}`; }
}

const context = {
    chat: [{ is_user: false, is_system: false, mes: 'Hi', name: 'Seraphina' }, { is_user: true, is_system: false, mes: 'Yo' }],
    characters: [{ name: 'Seraphina' }], characterId: 0,
};

test('gathering: the session, its notes, the view as the character; a part loreweave lacks left out', async () => {
    const lw = new FakeClient({ health: async () => ({}), session: { session_id: 's1', title: 'chat' } });
    const state = await gather(lw, context);
    assert.equal(state.error, '');
    assert.equal(state.link, 'http://lw/#session=s1');
    assert.equal(state.notes.length, 1);
    assert.equal(state.changes, null);
    assert.equal(state.seen.observer, 'Seraphina');
    assert.deepEqual(lw.calls, [['lookup', 2, false]]);
});

test('gathering: unreachable is an error; a chat without a player message asks nothing', async () => {
    const down = new FakeClient({ health: async () => { throw new Error('Failed to fetch'); } });
    assert.equal((await gather(down, context)).error, 'Failed to fetch');
    const up = new FakeClient({ health: async () => ({}), session: null });
    const state = await gather(up, { chat: [{ is_user: false, mes: 'Hi' }] });
    assert.equal(state.connected, true);
    assert.deepEqual(up.calls, []);
});
