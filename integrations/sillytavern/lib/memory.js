// What the panel shows for the chat being played, gathered from loreweave. Pure: the client
// and SillyTavern's context are given.
import { currentCharacter, shownMessages } from './chat.js';

/**
 * @param {import('./client.js').Client} client
 * @param {object} context SillyTavern's getContext() (chat, groupId, characters, characterId)
 * @returns {Promise<object>} the panel's state
 */
export async function gather(client, context) {
    const state = { connected: false, session: null, notes: null, changes: null, seen: null, link: '', error: '' };
    try {
        await client.health();
        state.connected = true;
        const messages = shownMessages(context.chat);
        if (!messages.some((m) => m.role === 'user')) return state; // nothing a session holds yet
        state.session = await client.lookup(messages, Boolean(context.groupId));
        if (!state.session) return state;
        const id = state.session.session_id;
        state.link = client.uiLink(id);
        state.notes = await client.notes(id);
        const turn = await client.lastTurn(id);
        if (turn !== null) state.changes = await optional(client.changes(id, turn));
        const observer = currentCharacter(context);
        if (observer) state.seen = await optional(client.events(id, observer));
    } catch (error) {
        state.error = error && error.message ? error.message : String(error);
    }
    return state;
}

// a part an older loreweave lacks (404), or an observer it does not know (400): left out
async function optional(promise) {
    try {
        return await promise;
    } catch (error) {
        if (error && (error.status === 404 || error.status === 400)) return null;
        throw error;
    }
}
