// loreweave inside SillyTavern: the memory of the chat being played (its loreweave session,
// notes, what the last turn changed, what the current character knows), in the extensions
// panel and a floating drawer, and `/lw-notes [name]`. It talks only to loreweave's HTTP API;
// the logic is in ./lib (pure modules, tested by node), this file wires it to SillyTavern.
import { Client } from './lib/client.js';
import { notesMessage, shownMessages } from './lib/chat.js';
import { gather } from './lib/memory.js';
import { renderMemory } from './lib/render.js';

const NAME = 'loreweave';
const DEFAULTS = { url: 'http://127.0.0.1:8000', apiKey: '' };
const POLL_MS = 2000; // while the last turn's changes are still being worked out
const POLL_TIMES = 15;

const PANEL = `
<div id="loreweave_settings" class="loreweave-settings">
  <div class="inline-drawer">
    <div class="inline-drawer-toggle inline-drawer-header">
      <b>loreweave</b><span class="lw-dot lw-idle" data-lw-dot></span>
      <div class="inline-drawer-icon fa-solid fa-circle-chevron-down down"></div>
    </div>
    <div class="inline-drawer-content">
      <label for="lw_url">loreweave URL</label>
      <input id="lw_url" class="text_pole" type="text" placeholder="http://127.0.0.1:8000">
      <label for="lw_key">API key</label>
      <input id="lw_key" class="text_pole" type="password" autocomplete="off">
      <div class="lw-buttons">
        <button id="lw_refresh" class="menu_button" type="button">Refresh</button>
        <button id="lw_float" class="menu_button" type="button">Float</button>
      </div>
      <div class="lw-memory" data-lw-memory></div>
    </div>
  </div>
</div>`;
const DRAWER = `
<div id="loreweave_drawer" class="lw-drawer" hidden>
  <div class="lw-drawer-head"><b>loreweave</b>
    <button id="lw_close" class="menu_button" type="button" title="Close">&times;</button></div>
  <div class="lw-memory" data-lw-memory></div>
</div>`;

let state = null;
let generation = 0; // a newer refresh wins over one still running

const context = () => SillyTavern.getContext();

function settings() {
    const all = context().extensionSettings;
    all[NAME] = Object.assign({}, DEFAULTS, all[NAME] || {});
    return all[NAME];
}

function client() {
    const { url, apiKey } = settings();
    return new Client(url, apiKey, (...args) => fetch(...args));
}

function render() {
    if (!state) return;
    const html = renderMemory(state);
    document.querySelectorAll('[data-lw-memory]').forEach((el) => { el.innerHTML = html; });
    const level = state.error ? 'error' : !state.connected ? 'idle' : state.session ? 'ok' : 'waiting';
    document.querySelectorAll('[data-lw-dot]').forEach((el) => { el.className = `lw-dot lw-${level}`; });
}

async function refresh(polls = 0) {
    const mine = ++generation;
    const gathered = await gather(client(), context());
    if (mine !== generation) return;
    state = gathered;
    render();
    if (state.changes && state.changes.state === 'pending' && polls < POLL_TIMES) {
        setTimeout(() => { if (mine === generation) refresh(polls + 1); }, POLL_MS);
    }
}

async function decide(button, verdict) {
    if (!state || !state.session) return;
    button.disabled = true;
    try {
        await client().decide(state.session.session_id, button.dataset.change, verdict);
    } catch (error) {
        state.error = error.message;
        render();
        return;
    }
    await refresh();
}

async function notesCommand(_args, name) {
    const ctx = context();
    let text;
    try {
        const lw = client();
        const found = await lw.lookup(shownMessages(ctx.chat), Boolean(ctx.groupId));
        text = found ? notesMessage(await lw.notes(found.session_id), String(name || '').trim())
            : 'No loreweave session follows this chat yet.';
    } catch (error) {
        text = `loreweave: ${error.message}`;
    }
    ctx.sendSystemMessage('generic', text);
    return '';
}

async function registerCommand() {
    const ctx = context();
    const help = 'Prints loreweave\'s note of an entry (or every note) into the chat, e.g. <code>/lw-notes Seraphina</code>';
    let SlashCommand = ctx.SlashCommand;
    if (!SlashCommand) {
        try {
            ({ SlashCommand } = await import('/scripts/slash-commands/SlashCommand.js'));
        } catch {
            SlashCommand = null; // not where SillyTavern keeps it: the older registration below
        }
    }
    if (SlashCommand && ctx.SlashCommandParser && ctx.SlashCommandParser.addCommandObject) {
        ctx.SlashCommandParser.addCommandObject(SlashCommand.fromProps({
            name: 'lw-notes', callback: notesCommand, helpString: help, returns: 'nothing',
        }));
    } else {
        ctx.registerSlashCommand('lw-notes', notesCommand, [], help, true, true);
    }
}

function mount() {
    const host = document.getElementById('extensions_settings2') || document.getElementById('extensions_settings');
    host.insertAdjacentHTML('beforeend', PANEL);
    document.body.insertAdjacentHTML('beforeend', DRAWER);
    const s = settings();
    const url = document.getElementById('lw_url');
    const key = document.getElementById('lw_key');
    url.value = s.url;
    key.value = s.apiKey;
    const save = () => {
        s.url = url.value.trim();
        s.apiKey = key.value.trim();
        context().saveSettingsDebounced();
        refresh();
    };
    url.addEventListener('change', save);
    key.addEventListener('change', save);
    document.getElementById('lw_refresh').addEventListener('click', () => refresh());
    const drawer = document.getElementById('loreweave_drawer');
    document.getElementById('lw_float').addEventListener('click', () => { drawer.hidden = !drawer.hidden; });
    document.getElementById('lw_close').addEventListener('click', () => { drawer.hidden = true; });
    document.addEventListener('click', (event) => {
        const button = event.target.closest && event.target.closest('.lw-approve, .lw-reject');
        if (button) decide(button, button.classList.contains('lw-approve') ? 'approve' : 'reject');
    });
}

async function init() {
    mount();
    const { eventSource, eventTypes, event_types: legacy } = context();
    const types = eventTypes || legacy;
    eventSource.on(types.CHAT_CHANGED, () => refresh());
    eventSource.on(types.MESSAGE_RECEIVED, () => refresh());
    await registerCommand();
    await refresh();
}

init();
