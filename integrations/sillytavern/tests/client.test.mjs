import assert from 'node:assert/strict';
import { test } from 'node:test';

import { Client, baseUrl } from '../lib/client.js';

function fake(routes) {
    const seen = [];
    const fetcher = async (url, init) => {
        seen.push({ url, init });
        const path = url.replace('http://lw.test', '');
        const [status, body] = routes[`${init.method} ${path}`] || [404, { detail: 'not found' }];
        return { ok: status < 400, status, text: async () => JSON.stringify(body) };
    };
    return { fetcher, seen };
}

test('the URL may be the proxy\'s, with /v1 and slashes', () => {
    assert.equal(baseUrl(' http://lw.test/v1/ '), 'http://lw.test');
    assert.equal(baseUrl('http://lw.test'), 'http://lw.test');
});

test('every call carries the API key; a body is JSON', async () => {
    const { fetcher, seen } = fake({ 'POST /api/sessions/lookup': [200, { session_id: 's1', world_id: 'w', title: 't' }] });
    const found = await new Client('http://lw.test/', 'sk-1', fetcher).lookup([{ role: 'user', content: 'hi' }], false);
    assert.equal(found.session_id, 's1');
    assert.equal(seen[0].init.headers.Authorization, 'Bearer sk-1');
    assert.deepEqual(JSON.parse(seen[0].init.body), { messages: [{ role: 'user', content: 'hi' }], group: false });
});

test('no session following the chat is null, other errors say loreweave\'s message', async () => {
    const { fetcher } = fake({ 'GET /api/sessions/s1/notes': [401, { detail: 'a valid API key is required' }] });
    const lw = new Client('http://lw.test', '', fetcher);
    assert.equal(await lw.lookup([{ role: 'user', content: 'x' }]), null);
    await assert.rejects(lw.notes('s1'), { status: 401, message: 'a valid API key is required' });
});

test('the last turn, its changes, a verdict, an observer\'s view', async () => {
    const { fetcher, seen } = fake({
        'GET /api/sessions/s1/turns?limit=1': [200, [{ turn_index: 4 }]],
        'GET /api/sessions/s1/turns/4/changes': [200, { turn: 4, state: 'done', changes: [] }],
        'POST /api/sessions/s1/changes/c9/approve': [200, {}],
        'GET /api/sessions/s1/events?observer=Mira%20Vale': [200, { observer: 'Mira Vale', entities: [] }],
    });
    const lw = new Client('http://lw.test', 'k', fetcher);
    assert.equal(await lw.lastTurn('s1'), 4);
    assert.equal((await lw.changes('s1', 4)).state, 'done');
    await lw.decide('s1', 'c9', 'approve');
    assert.throws(() => lw.decide('s1', 'c9', 'delete'));
    assert.equal((await lw.events('s1', 'Mira Vale')).observer, 'Mira Vale');
    assert.equal(seen.length, 4);
    assert.equal(lw.uiLink('s1'), 'http://lw.test/#session=s1');
});
