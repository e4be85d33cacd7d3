// nst serve's page: the form (the CLI's options and defaults), the gallery, compare.
"use strict";
(function () {
  const $ = nst.$;
  const SHOWN = ["size", "iterations", "optimizer", "style-weight", "content-weight", "tv-weight", "style-layers",
                 "keep-colors", "scales", "init"];
  let picked = [];
  let comparing = false;                          // Compare is off while one is scored (a second was refused)
  let maxUploadMB = Infinity;                     // nst serve --max-upload-mb, from the options
  let settingOptions = {};                        // a setting's {option: "--style-weight", default}, from the server

  async function loadOptions() {
    // the form's fields; if the server does not give them, the page says why and Start stays off
    let data;
    try { data = await nst.getJSON("/api/options"); }
    catch (err) { $("start-error").textContent = `the options did not load: ${err.message}`; $("go").disabled = true; return; }
    maxUploadMB = data.max_upload_mb ?? Infinity;
    settingOptions = data.settings || {};
    shown.clear();                                // the cards drawn meanwhile drawn again, with the names
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
    $("start-error").textContent = tooLarge();
    if ($("start-error").textContent) return;
    $("go").disabled = true;
    try {
      const r = await nst.post("/api/runs", formData());
      location.href = r.live;
    } catch (err) { $("start-error").textContent = err.message; $("go").disabled = false; }
  }

  function tooLarge() {
    // the first picked file over --max-upload-mb, in the server's words, before a byte is sent (the
    // server refused it only once that much had gone up, or the connection dropped meanwhile)
    for (const part of ["content", "style"])
      for (const f of $(part).files)
        if (f.size > maxUploadMB * 2 ** 20) return `${part} '${f.name}': larger than the ${maxUploadMB} MiB an upload may be`;
    return "";
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

  const PICTURED = ["done", "stopped"];
  // what a card without a picture says in its place (it was a blank box)
  const NO_PICTURE = {queued: "queued: it starts when a worker is free", running: "its first picture is on its way"};
  const nameOf = (row) => row.output.replace(/\.png$/, "");

  function card(row) {
    // a run's card, empty: fill() writes the row into it, now and whenever the row changes
    const div = Object.assign(document.createElement("div"), {className: "run"});
    div.dataset.name = nameOf(row);
    const details = document.createElement("details");
    details.append(Object.assign(document.createElement("summary"), {textContent: "settings and terms"}),
                   Object.assign(document.createElement("dl"), {className: "pairs terms"}),
                   Object.assign(document.createElement("dl"), {className: "pairs settings"}));
    const refused = Object.assign(document.createElement("div"), {className: "error card-error"});
    refused.setAttribute("role", "alert");
    const frame = Object.assign(document.createElement("div"), {className: "frame"});
    const img = Object.assign(document.createElement("img"), {alt: div.dataset.name});
    const placeholder = Object.assign(document.createElement("span"), {className: "placeholder"});
    img.addEventListener("error", async () => {
      img.classList.add("broken");                                      // no broken-image icon
      // a picture the server refuses (a file put at its name that is not the run's picture, the
      // rule Download PNG says) has its one-line reason where the picture would be, not a blank box
      const src = img.getAttribute("src"), r = src && await fetch(src, {credentials: "same-origin"}).catch(() => null);
      const why = r && !r.ok && await nst.refusal(r);
      if (why && img.getAttribute("src") === src) { img.dataset.why = why; showWhy(placeholder, why); }
    });
    frame.append(img, placeholder);
    div.append(frame, document.createElement("div"), details,
               Object.assign(document.createElement("div"), {className: "actions"}), refused);
    return div;
  }

  function fill(div, row) {
    // the row written into its card in place: the same elements stay (focus, an open <details>)
    const name = div.dataset.name, [frame, info, details, actions] = div.children, [img, placeholder] = frame.children;
    div.dataset.status = row.status;
    // its picture, small (the PNG was megabytes a card): a finished run's made once by the server, a
    // running run's latest (its worker's thumbnail, versioned by its iteration); before it has one, a
    // queued or running run's content photo under what it waits for. Download PNG has it whole
    const path = `/runs/${encodeURIComponent(name)}/`, photo = path + "photo";
    const src = PICTURED.includes(row.status) ? path + "thumb?v=" + encodeURIComponent(row.finished || "")
      : row.status === "running" && row.thumb != null ? path + "thumb?v=" + row.thumb
      : row.status in NO_PICTURE ? photo : null;
    if (img.getAttribute("src") !== src) {
      img.classList.remove("broken");
      delete img.dataset.why;
      src ? img.setAttribute("src", src) : img.removeAttribute("src");
    }
    placeholder.hidden = !!src && src !== photo;
    placeholder.classList.toggle("caption", src === photo);
    placeholder.classList.remove("refused");
    placeholder.textContent = NO_PICTURE[row.status] || "no picture";
    if (img.dataset.why) showWhy(placeholder, img.dataset.why);         // the refusal stays while its src does
    const names = row.names || {content: (row.content || "").split("/").pop(), style: (row.style || []).map((s) => s.split("/").pop())};
    const title = Object.assign(document.createElement("b"), {textContent: name});
    const shown = row.status === "running" && row.paused ? "paused" : row.status;    // as its live page says
    const state = Object.assign(document.createElement("span"), {className: "state " + shown, textContent: shown});
    // --iterations auto: a scale may end early, the total is at most (as the live page says it)
    const most = setting(row, "iterations") === "auto" ? "at most " : "";
    if (row.status === "running" && row.total) state.textContent += ` ${row.iterations || 0} / ${most}${row.total}`;
    if (row.status === "stopped" && row.iterations) state.textContent += ` at ${row.iterations}`;   // how far: Resume?
    info.replaceChildren(title, " ", state, document.createElement("br"),
                `${names.content} × ${(names.style || []).join(" + ")}`, document.createElement("br"),
                `${setting(row, "size")} px, ${setting(row, "iterations")} it/scale, ${setting(row, "optimizer")}, ` +
                `β ${setting(row, "style_weight")}` + (row.seconds ? `, ${Number(row.seconds).toFixed(1)} s` : ""));
    if (row.error) info.append(Object.assign(document.createElement("div"), {className: "error", textContent: row.error}));
    // the run's warnings, as the server's terminal says them (an upscaled content, a slow --tile)
    for (const w of row.warnings || []) info.append(Object.assign(document.createElement("div"), {className: "note warning", textContent: w}));
    // where and why L-BFGS ended a scale before its iteration count (as the terminal and the live page say)
    if (row.stopped_early) info.append(Object.assign(document.createElement("div"), {className: "note early", textContent: row.stopped_early}));
    const [terms, settings] = described(row);
    for (const [dl, lines] of [[details.querySelector("dl.terms"), terms], [details.querySelector("dl.settings"), settings]])
      dl.replaceChildren(...lines.flatMap(([term, value, dim]) => [
        Object.assign(document.createElement("dt"), {textContent: term}),
        Object.assign(document.createElement("dd"), {textContent: value, className: dim ? "default" : ""})]));
    const wanted = [...(PICTURED.includes(row.status) ? ["download", "pick"] : []), ...(row.live ? ["live"] : []), "again",
                    ...(["stopped", "cancelled", "failed"].includes(row.status) ? ["resume"] : [])];
    place(actions, wanted.map((kind) => actions.querySelector(`[data-action="${kind}"]`) || action(kind, name, row)));
  }

  function showWhy(placeholder, why) {
    // the server's reason for not serving a card's picture, in the picture's place
    placeholder.hidden = false;
    placeholder.classList.remove("caption");
    placeholder.classList.add("refused");
    placeholder.textContent = why;
  }

  function described(row) {
    // a card's [terms, settings] as [term, value, is the default] lines: the final terms (4 digits,
    // as Compare shows them), iterations, finish and source; then each setting under its option's
    // name as `nst transfer` spells it, greyed where it is the default (null: the option not given)
    const shownValue = (v) => v === null || v === undefined ? "default" : Array.isArray(v) ? v.join(", ") : String(v);
    const terms = Object.entries(row.terms || {}).map(([t, v]) => [t === "total" ? "J" : `J_${t}`, Number(v).toPrecision(4)]);
    terms.push(["iterations", shownValue(row.iterations)], ["finished", (row.finished || "–").replace("T", " ")],
               ["source", row.source || "nst batch"]);
    const settings = Object.entries(row.settings || {}).map(([field, value]) => {
      const known = settingOptions[field];
      return [known ? known.option : field, shownValue(value), !!known && JSON.stringify(value) === JSON.stringify(known.default)];
    });
    return [terms, settings];
  }

  function action(kind, name, row) {
    // one of a card's actions, made once: its link, tick or button depends on the run's name only
    const path = `/runs/${encodeURIComponent(name)}/`, api = `/api/runs/${encodeURIComponent(name)}/`;
    let el;
    if (kind === "download") {
      el = Object.assign(document.createElement("a"), {textContent: "Download PNG", className: "download", href: path + "image"});
      el.setAttribute("download", row.output);
      el.addEventListener("click", (e) => { e.preventDefault(); download(el, row.output); });
    } else if (kind === "pick") {
      el = Object.assign(document.createElement("label"), {textContent: " compare"});
      const box = Object.assign(document.createElement("input"), {type: "checkbox", className: "pick"});
      box.dataset.name = name;
      box.addEventListener("change", () => { picked = box.checked ? [...picked, name].slice(-2) : picked.filter((p) => p !== name);
                                             syncPicks(); });
      el.prepend(box);
    } else if (kind === "live") {
      el = Object.assign(document.createElement("a"), {textContent: "Live", className: "live", href: path + "live"});
    } else {
      el = kind === "again" ? button("Run again", "again", api + "again") : button("Resume", "resume", api + "resume");
    }
    el.dataset.action = kind;
    return el;
  }

  async function download(link, name) {
    // the run's picture saved as `name`; a refusal (a file put at its name that is not the picture
    // the run made: the server serves only that) said on the card, not saved as the PNG
    const shown = link.closest(".run").querySelector(".card-error");
    shown.textContent = "";
    try {
      const r = await fetch(link.href, {credentials: "same-origin"});
      if (!r.ok) throw new Error(await nst.refusal(r));
      const url = URL.createObjectURL(await r.blob());
      Object.assign(document.createElement("a"), {href: url, download: name}).click();
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
    } catch (err) { shown.textContent = `Download PNG: ${err.message}`; }
  }

  function place(parent, children) {
    // parent's children made `children`, in order: the ones kept are moved only where out of place
    // (moveBefore keeps a focused one focused), the others removed
    children.forEach((el, i) => {
      const here = parent.children[i] || null;
      if (el === here) return;
      if (el.isConnected && parent.moveBefore) parent.moveBefore(el, here); else parent.insertBefore(el, here);
    });
    while (parent.children.length > children.length) parent.lastElementChild.remove();
  }

  function button(text, cls, path) {
    const b = Object.assign(document.createElement("button"), {type: "button", textContent: text, className: cls});
    b.addEventListener("click", async () => {      // a refusal shown on the card whose button it was
      if (b.disabled) return;                       // off while it posts: a double click started two runs
      const shown = b.closest(".run").querySelector(".card-error");
      shown.textContent = "";
      b.disabled = true;
      try { const r = await nst.post(path); location.href = r.live; }
      catch (err) { shown.textContent = `${text}: ${err.message}`; b.disabled = false; }
    });
    return b;
  }

  function syncPicks() {
    for (const box of document.querySelectorAll("input.pick")) box.checked = picked.includes(box.dataset.name);
    $("compare").disabled = comparing || picked.length !== 2;
  }

  const shown = new Map();                        // run name -> its row as last drawn (JSON)
  async function refresh() {
    // the gallery's cards updated in place: a new run's added, a changed one's filled again, a gone
    // one's removed (focus, an open card, the scroll stay); a server that does not answer is said
    // so in the queue's place, not shown as its last count
    let data;
    try { data = await nst.getJSON("/api/runs"); }
    catch (err) { $("queue").textContent = err.message; $("queue").className = "state disconnected"; return; }
    $("queue").className = "state";
    // "1 of 8 running or queued" read as eight runs: the count, then the limit (nst serve --queue)
    $("queue").textContent = `${data.queue.active} running or queued (at most ${data.queue.max})`;
    const cards = new Map([...$("runs").children].map((el) => [el.dataset.name, el]));
    const drawn = data.runs.map((row) => {
      const name = nameOf(row), text = JSON.stringify(row), el = cards.get(name) || card(row);
      if (shown.get(name) !== text) { fill(el, row); shown.set(name, text); }
      return el;
    });
    place($("runs"), drawn);
    $("no-runs").hidden = data.runs.length > 0;                     // an empty gallery says how to fill it
    const names = new Set(data.runs.map(nameOf));
    for (const name of shown.keys()) if (!names.has(name)) shown.delete(name);
    const pictured = new Set(data.runs.filter((row) => PICTURED.includes(row.status)).map(nameOf));
    picked = picked.filter((name) => pictured.has(name));           // a tick only on a picture
    syncPicks();
  }

  async function compare() {
    if (comparing) return;
    comparing = true; syncPicks();
    for (const id of ["compare-error", "compare-note", "compare-warnings"]) $(id).textContent = "";
    const fd = new FormData(); fd.append("a", picked[0]); fd.append("b", picked[1]);
    try {
      const r = await nst.post("/api/compare", fd);
      const t = $("compare-table"); t.replaceChildren();
      // the pictures named A and B once, in the head: the best column repeating their long names
      // made the table wider than a phone
      const head = t.insertRow(), letters = ["A", "B"];
      for (const h of ["term", ...r.names.map((n, i) => `${letters[i]}: ${nameOf({output: n})}`), "best"])
        head.insertCell().textContent = h;
      for (const term of Object.keys(r.scores[0])) {
        const row = t.insertRow(); row.insertCell().textContent = term;
        // best: every picture tied for the lowest at the 4 digits shown (nst.compare.best_of)
        r.scores.forEach((s, i) => { const c = row.insertCell(); c.textContent = s[term].toPrecision(4); if (r.best[term].includes(i)) c.className = "best"; });
        row.insertCell().textContent = r.best[term].map((i) => letters[i]).join(", ");
      }
      $("compare-note").textContent = r.note || "";                // pictures of two sizes: scored at one
      // the comparison's warnings (auto's failed GPU self-check), a line each, as the server's terminal says them
      $("compare-warnings").textContent = (r.warnings || []).join("\n");
    } catch (err) { $("compare-error").textContent = err.message; }
    comparing = false; syncPicks();
  }

  dropInto($("drop-content"), $("content"));
  dropInto($("drop-style"), $("style"));
  $("start").addEventListener("submit", start);
  window.addEventListener("pageshow", (e) => {      // Back to the form: the buttons that had posted usable again
    if (e.persisted) for (const b of document.querySelectorAll("#go, .run button")) b.disabled = false;
  });
  $("compare").addEventListener("click", compare);
  loadOptions();
  // the gallery polled one request at a time: requests never pile up on a slow server, nor an older
  // answer overtakes a newer one
  (async function poll() { await refresh(); setTimeout(poll, 2000); })();
})();
