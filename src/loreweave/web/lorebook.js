// A world's lorebook as files: import one (World Info, a character card or book), saying how far
// its embedding is while the import's one request is pending, and export one in any format.
// Plain DOM against the HTTP API; app.js wires it.

export function lorebookFiles({ $, el, state, apiKey, counted, readable, showError, hideError, refreshEntries }) {
  // "embedding 64 of 1000 entries", read while the import's one request is pending (404: not
  // embedding yet); nothing once the import is over (``watch.on`` false)
  async function importProgress(watch, name) {
    const response = await fetch(`/api/worlds/${watch.world}/imports/${watch.token}`, { headers: watch.auth }).catch(() => null);
    const body = response?.ok ? await response.json().catch(() => null) : null;
    if (!body || !watch.on || state.world !== watch.world) return;
    $("#import-status").textContent = body.done < body.total
      ? `Importing ${name}: embedding ${body.done} of ${counted(body.total, "entry", "entries")}…`
      : `Importing ${name}: saving ${counted(body.total, "entry", "entries")}…`;
  }
  $("#import-file").addEventListener("change", async (event) => {
    const file = event.target.files[0];
    if (!file || !state.world) return;
    const headers = { "Content-Type": file.type || "application/octet-stream" };
    if (apiKey.value) headers.Authorization = `Bearer ${apiKey.value}`;
    $("#import-status").textContent = `Importing ${file.name}: reading its entries…`;
    $("#import-file").disabled = true;
    // the import is one request; meanwhile its progress is read under a token of our choosing
    const watch = { on: true, world: state.world, token: Date.now().toString(36) + Math.random().toString(36).slice(2, 10), auth: headers.Authorization ? { Authorization: headers.Authorization } : {} };
    const timer = setInterval(() => importProgress(watch, file.name), 400);
    const response = await fetch(`/api/worlds/${watch.world}/import?progress=${watch.token}`, { method: "POST", headers, body: file }).finally(() => { watch.on = false; clearInterval(timer); $("#import-file").disabled = false; });
    const body = await response.json().catch(() => ({}));
    event.target.value = "";
    if (!response.ok) { showError(`${file.name}: ${readable(body.detail) || response.statusText}`); return; }
    hideError();
    const skipped = body.skipped.length ? ` Skipped: ${body.skipped.join("; ")}.` : "";
    const kept = [body.updated ? `${body.updated} updated` : "", body.merged ? `${body.merged} already in the world, merged` : ""].filter(Boolean).join(", ");
    $("#import-status").textContent = `Imported ${counted(body.imported, "entry", "entries")} from ${file.name} (${body.kind})${kept ? `; ${kept}` : ""}.${skipped}`;
    await refreshEntries();
  });
  $("#export").addEventListener("click", async () => {
    if (!state.world) return;
    const format = $("#export-format").value;
    const name = $("#world-select").selectedOptions[0]?.textContent || "lorebook";
    // the file as the server names it (its format in the name); a card PNG: the imported card's
    // own image, with the world's lore inside
    const query = format === "card-png" ? "format=card&png=true" : `format=${format}`;
    const headers = apiKey.value ? { Authorization: `Bearer ${apiKey.value}` } : {};
    const response = await fetch(`/api/worlds/${state.world}/export?${query}`, { headers });
    if (!response.ok) { showError(`${response.status}: ${readable((await response.json().catch(() => ({}))).detail) || response.statusText}`); return; }
    const blob = await response.blob();
    const file = /filename="([^"]+)"/.exec(response.headers.get("Content-Disposition") || "")?.[1] || `${name}.json`;
    const link = el("a", { href: URL.createObjectURL(blob), download: file, "data-testid": "download" });
    document.body.append(link); link.click(); link.remove();
    $("#import-status").textContent = `Exported ${name} as ${$("#export-format").selectedOptions[0].textContent}.`;
  });
}
