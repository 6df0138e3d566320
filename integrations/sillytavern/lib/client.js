// loreweave's HTTP API, as the extension uses it. Pure: the fetch function is given, so node's
// tests run it against a fake and the browser against the real service.

export class LoreweaveError extends Error {
    constructor(status, message) {
        super(message);
        this.status = status;
    }
}

export function baseUrl(url) {
    const trimmed = String(url || '').trim().replace(/\/+$/, '');
    return trimmed.replace(/\/v1$/, ''); // the proxy's URL as SillyTavern has it works too
}

export class Client {
    /**
     * @param {string} url loreweave's URL (with or without /v1)
     * @param {string} apiKey the API key SillyTavern's connection to the proxy uses
     * @param {typeof fetch} fetcher
     */
    constructor(url, apiKey, fetcher) {
        this.base = baseUrl(url);
        this.apiKey = String(apiKey || '').trim();
        this.fetch = fetcher;
    }

    async call(method, path, body) {
        const headers = { Accept: 'application/json' };
        if (this.apiKey) headers.Authorization = `Bearer ${this.apiKey}`;
        if (body !== undefined) headers['Content-Type'] = 'application/json';
        const response = await this.fetch(`${this.base}${path}`, {
            method,
            headers,
            body: body === undefined ? undefined : JSON.stringify(body),
        });
        const text = await response.text();
        const data = text ? JSON.parse(text) : null;
        if (!response.ok) {
            const detail = data && (data.detail || (data.error && data.error.message));
            throw new LoreweaveError(response.status, typeof detail === 'string' ? detail : `HTTP ${response.status}`);
        }
        return data;
    }

    health() {
        return this.call('GET', '/healthz');
    }

    /** The session following the chat shown (null: none yet). */
    async lookup(messages, group) {
        try {
            return await this.call('POST', '/api/sessions/lookup', { messages, group: Boolean(group) });
        } catch (error) {
            if (error instanceof LoreweaveError && error.status === 404) return null;
            throw error;
        }
    }

    notes(session) {
        return this.call('GET', `/api/sessions/${session}/notes`);
    }

    async lastTurn(session) {
        const turns = await this.call('GET', `/api/sessions/${session}/turns?limit=1`);
        return turns.length ? turns[turns.length - 1].turn_index : null;
    }

    changes(session, turn) {
        return this.call('GET', `/api/sessions/${session}/turns/${turn}/changes`);
    }

    decide(session, change, verdict) {
        if (verdict !== 'approve' && verdict !== 'reject') throw new Error(`no such verdict: ${verdict}`);
        return this.call('POST', `/api/sessions/${session}/changes/${change}/${verdict}`, {});
    }

    events(session, observer) {
        const query = observer ? `?observer=${encodeURIComponent(observer)}` : '';
        return this.call('GET', `/api/sessions/${session}/events${query}`);
    }

    uiLink(session) {
        return `${this.base}/#session=${session}`;
    }
}
