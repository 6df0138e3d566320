// SillyTavern's chat as loreweave reads it. Pure.

/**
 * The chat's user and assistant messages as SillyTavern shows them (its own system messages,
 * hidden ones and notes left out): what a request to the proxy carries.
 * @param {object[]} chat SillyTavern's `getContext().chat`
 */
export function shownMessages(chat) {
    return (chat || [])
        .filter((m) => m && !m.is_system && typeof m.mes === 'string')
        .map((m) => (m.is_user
            ? { role: 'user', content: m.mes.trim() }
            : { role: 'assistant', content: m.mes.trim(), name: m.name || undefined }));
}

/** The note of the entry named `name` (its title, case-insensitively; a prefix will do). */
export function findNote(notes, name) {
    const wanted = String(name || '').trim().toLowerCase();
    if (!wanted) return null;
    const exact = notes.find((n) => n.title.toLowerCase() === wanted);
    return exact || notes.find((n) => n.title.toLowerCase().startsWith(wanted)) || null;
}

/** Who the current chat is played with: the character's name (1:1) or null (a group). */
export function currentCharacter(context) {
    if (context.groupId) return null;
    const character = context.characters && context.characters[context.characterId];
    return (character && character.name) || context.name2 || null;
}

/** The text `/lw-notes` prints: one note, or the list of notes. */
export function notesMessage(notes, name) {
    if (!notes.length) return 'loreweave has no notes for this chat yet.';
    if (name) {
        const note = findNote(notes, name);
        if (!note) return `loreweave has no note named "${name}" (notes: ${notes.map((n) => n.title).join(', ')}).`;
        return `**${note.title}** (loreweave, v${note.version})\n\n${note.note_content}`;
    }
    return notes.map((n) => `**${n.title}**: ${n.note_content}`).join('\n\n');
}
