import assert from 'node:assert/strict';
import { test } from 'node:test';

import { currentCharacter, findNote, notesMessage, shownMessages } from '../lib/chat.js';

const chat = [
    { name: 'SillyTavern System', is_system: true, is_user: false, mes: 'welcome' },
    { name: 'Seraphina', is_user: false, is_system: false, mes: ' Hello, traveller. ' },
    { name: 'Kenta', is_user: true, is_system: false, mes: 'Where am I?' },
];

test('the chat as shown: no system messages, trimmed, replies named', () => {
    assert.deepEqual(shownMessages(chat), [
        { role: 'assistant', content: 'Hello, traveller.', name: 'Seraphina' },
        { role: 'user', content: 'Where am I?' },
    ]);
    assert.deepEqual(shownMessages(undefined), []);
});

const notes = [
    { title: 'Seraphina', version: 3, note_content: 'Guards the glade.' },
    { title: 'Eldoria', version: 1, note_content: 'A forest.' },
];

test('a note by its title, any case, or a prefix', () => {
    assert.equal(findNote(notes, 'seraphina').version, 3);
    assert.equal(findNote(notes, 'Eld').title, 'Eldoria');
    assert.equal(findNote(notes, 'Kai'), null);
    assert.equal(findNote(notes, ''), null);
});

test('/lw-notes prints one note, all of them, or says what there is', () => {
    assert.match(notesMessage(notes, 'Seraphina'), /^\*\*Seraphina\*\* \(loreweave, v3\)\n\nGuards the glade\.$/);
    assert.match(notesMessage(notes, ''), /Seraphina.*\n\n.*Eldoria/s);
    assert.match(notesMessage(notes, 'Kai'), /no note named "Kai" \(notes: Seraphina, Eldoria\)/);
    assert.match(notesMessage([], ''), /no notes/);
});

test('the current character: a 1:1 chat\'s, none in a group', () => {
    assert.equal(currentCharacter({ characters: [{ name: 'Seraphina' }], characterId: 0 }), 'Seraphina');
    assert.equal(currentCharacter({ groupId: 'g1', characters: [] }), null);
});
