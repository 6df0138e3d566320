"""Import and export of other tools' lorebook formats: SillyTavern World Info, and the
``character_book`` of Character Card V2/V3 (JSON, or PNG cards with a ``chara``/``ccv3`` chunk)."""
