// nst serve's page: the form (the CLI's options and defaults), the gallery, compare.
"use strict";
(function () {
  const $ = nst.$;
  const SHOWN = ["size", "iterations", "optimizer", "style-weight", "content-weight", "tv-weight", "style-layers",
                 "keep-colors", "scales", "init"];
  let picked = [];

  async function loadOptions() {
    // the form's fields; if the server does not give them, the page says why and Start stays off
    let data;
    try { data = await nst.getJSON("/api/options"); }
    catch (err) { $("start-error").textContent = `the options did not load: ${err.message}`; $("go").disabled = true; return; }
    const box = $("fields"), more = document.createElement("details");
    more.className = "wide"; more.append(Object.assign(document.createElement("summary"), {textContent: "more options"}));
    const grid = Object.assign(document.createElement("div"), {className: "start"});
    more.append(grid);
    for (const o of data.options) {
      const label = document.createElement("label");
      label.title = o.help;
      label.append(`--${o.name}`);
      let input;
      if (o.choices) {
        input = document.createElement("select");
        if (o.default === null) input.add(new Option("(off)", ""));
        for (const c of o.choices) input.add(new Option(c, c));
        input.value = o.default === null ? "" : o.default;
      } else {
        input = document.createElement("input");
        input.value = o.default === null ? "" : Array.isArray(o.default) ? o.default.join(",") : o.default;
        input.placeholder = o.default === null ? "(default)" : "";
      }
      input.name = o.name; input.id = "opt-" + o.name; input.dataset.initial = input.value;
      label.append(input);
      (SHOWN.includes(o.name) ? box : grid).append(label);
    }
    box.append(more);
  }

  function formData() {
    const fd = new FormData();
    for (const f of $("content").files) fd.append("content", f, f.name);
    for (const f of $("style").files) fd.append("style", f, f.name);
    for (const el of $("fields").querySelectorAll("input, select"))
      if (el.value !== el.dataset.initial) fd.append(el.name, el.value);     // only what was changed
    return fd;
  }

  async function start(e) {
    // one run per click: Start is off while the uploads go (a second click would start a second run)
    e.preventDefault();
    if ($("go").disabled) return;
    $("start-error").textContent = "";
    $("go").disabled = true;
    try {
      const r = await nst.post("/api/runs", formData());
      location.href = r.live;
    } catch (err) { $("start-error").textContent = err.message; $("go").disabled = false; }
  }

  function dropInto(zone, input) {
    zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
    zone.addEventListener("dragleave", () => zone.classList.remove("over"));
    zone.addEventListener("drop", (e) => {
      e.preventDefault(); zone.classList.remove("over");
      const dt = new DataTransfer();
      for (const f of e.dataTransfer.files) { dt.items.add(f); if (!input.multiple) break; }
      input.files = dt.files;
    });
  }

  function setting(row, k) { const v = (row.settings || {})[k]; return Array.isArray(v) ? v.join(",") : v; }

  function card(row) {
    const name = row.output.replace(/\.png$/, "");
    const div = document.createElement("div");
    div.className = "run"; div.dataset.name = name; div.dataset.status = row.status;
    const img = document.createElement("img");
    img.alt = name;
    if (["done", "stopped"].includes(row.status)) img.src = `/runs/${encodeURIComponent(name)}/image?inline=1&v=${encodeURIComponent(row.finished || "")}`;
    const names = row.names || {content: (row.content || "").split("/").pop(), style: (row.style || []).map((s) => s.split("/").pop())};
    const info = document.createElement("div");
    const title = Object.assign(document.createElement("b"), {textContent: name});
    const state = Object.assign(document.createElement("span"), {className: "state " + row.status, textContent: row.status});
    info.append(title, " ", state, document.createElement("br"),
                `${names.content} × ${(names.style || []).join(" + ")}`, document.createElement("br"),
                `${setting(row, "size")} px, ${setting(row, "iterations")} it/scale, ${setting(row, "optimizer")}, ` +
                `β ${setting(row, "style_weight")}` + (row.seconds ? `, ${Number(row.seconds).toFixed(1)} s` : ""));
    if (row.error) info.append(Object.assign(document.createElement("div"), {className: "error", textContent: row.error}));
    const details = document.createElement("details");
    details.append(Object.assign(document.createElement("summary"), {textContent: "settings and terms"}),
                   Object.assign(document.createElement("pre"), {textContent: JSON.stringify({terms: row.terms, settings: row.settings,
                     iterations: row.iterations, finished: row.finished, source: row.source || "nst batch"}, null, 1)}));
    const actions = Object.assign(document.createElement("div"), {className: "actions"});
    if (["done", "stopped"].includes(row.status)) {
      const a = Object.assign(document.createElement("a"), {textContent: "Download PNG", className: "download",
        href: `/runs/${encodeURIComponent(name)}/image`});
      a.setAttribute("download", row.output);
      const tick = Object.assign(document.createElement("label"), {textContent: " compare"});
      const box = Object.assign(document.createElement("input"), {type: "checkbox", className: "pick"});
      box.checked = picked.includes(name);
      box.dataset.name = name;
      box.addEventListener("change", () => { picked = box.checked ? [...picked, name].slice(-2) : picked.filter((p) => p !== name);
                                             syncPicks(); });
      tick.prepend(box);
      actions.append(a, tick);
    }
    if (row.live) actions.append(Object.assign(document.createElement("a"), {textContent: "Live", className: "live",
      href: `/runs/${encodeURIComponent(name)}/live`}));
    actions.append(button("Run again", "again", `/api/runs/${encodeURIComponent(name)}/again`));
    if (["stopped", "cancelled", "failed"].includes(row.status))
      actions.append(button("Resume", "resume", `/api/runs/${encodeURIComponent(name)}/resume`));
    const refused = Object.assign(document.createElement("div"), {className: "error card-error"});
    refused.setAttribute("role", "alert");
    div.append(img, info, details, actions, refused);
    return div;
  }

  function button(text, cls, path) {
    const b = Object.assign(document.createElement("button"), {type: "button", textContent: text, className: cls});
    b.addEventListener("click", async () => {      // a refusal shown on the card whose button it was
      const shown = b.closest(".run").querySelector(".card-error");
      shown.textContent = "";
      try { const r = await nst.post(path); location.href = r.live; }
      catch (err) { shown.textContent = `${text}: ${err.message}`; }
    });
    return b;
  }

  function syncPicks() {
    for (const box of document.querySelectorAll("input.pick")) box.checked = picked.includes(box.dataset.name);
    $("compare").disabled = picked.length !== 2;
  }

  let shown = "";
  async function refresh() {
    // the gallery is drawn again only when a run changed (an open card stays open meanwhile); a
    // server that does not answer is said so in the queue's place, not shown as its last count
    let data;
    try { data = await nst.getJSON("/api/runs"); }
    catch (err) { $("queue").textContent = err.message; $("queue").className = "state disconnected"; return; }
    $("queue").className = "state";
    $("queue").textContent = `${data.queue.active} of ${data.queue.max} running or queued`;
    const text = JSON.stringify(data.runs);
    if (text !== shown) { shown = text; $("runs").replaceChildren(...data.runs.map(card)); }
    syncPicks();
  }

  async function compare() {
    $("compare-error").textContent = "";
    const fd = new FormData(); fd.append("a", picked[0]); fd.append("b", picked[1]);
    try {
      const r = await nst.post("/api/compare", fd);
      const t = $("compare-table"); t.replaceChildren();
      const head = t.insertRow();
      for (const h of ["term", ...r.names, "best"]) head.insertCell().textContent = h;
      for (const term of Object.keys(r.scores[0])) {
        const row = t.insertRow(); row.insertCell().textContent = term;
        r.scores.forEach((s, i) => { const c = row.insertCell(); c.textContent = s[term].toPrecision(4); if (r.best[term] === i) c.className = "best"; });
        row.insertCell().textContent = r.names[r.best[term]];
      }
    } catch (err) { $("compare-error").textContent = err.message; }
  }

  dropInto($("drop-content"), $("content"));
  dropInto($("drop-style"), $("style"));
  $("start").addEventListener("submit", start);
  window.addEventListener("pageshow", (e) => { if (e.persisted) $("go").disabled = false; });    // Back to the form
  $("compare").addEventListener("click", compare);
  loadOptions();
  refresh();
  setInterval(refresh, 2000);
})();
