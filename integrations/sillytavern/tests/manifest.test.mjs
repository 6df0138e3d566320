import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const here = join(dirname(fileURLToPath(import.meta.url)), '..');
const root = join(here, '..', '..');

// SillyTavern loads `/scripts/extensions/<folder>/<manifest.js>`: the folder copied on its own,
// or the repository cloned by "Install extension" (its root manifest)
for (const [name, folder] of [['the folder\'s', here], ['the repository\'s', root]]) {
    test(`${name} manifest names files that exist`, () => {
        const manifest = JSON.parse(readFileSync(join(folder, 'manifest.json'), 'utf8'));
        assert.equal(manifest.display_name, 'loreweave');
        for (const key of ['js', 'css']) assert.ok(existsSync(join(folder, manifest[key])), manifest[key]);
    });
}
