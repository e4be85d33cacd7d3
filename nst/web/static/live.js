// The live page of one run: a websocket brings the status, every iteration's terms and the latest
// image; Pause/Resume and Stop post to the run's controls.
"use strict";
(function () {
  const $ = nst.$;
  const run = location.pathname.match(/^\/runs\/([^/]+)\/live$/);
  const base = run ? `/runs/${run[1]}/` : "/";              // nst serve: one of its runs; --web: the run
  const live = nst.live = {points: [], info: {}, status: {}, plotted: 0, images: 0};
  let ws = null, drawPending = false, retry = null, heard = 0, lostSince = null;
  const RETRY_MS = [1000, 2000, 4000, 8000, 15000];         // then every 15 s
  const GIVE_UP_MS = 120000;                                // no answer this long: the run's process is gone
  const PING_MS = 15000;                                    // a page silent this long asks; unanswered twice: dead
  live.retries = 0;

  function connect() {
    ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}${base}ws`);
    ws.onopen = () => { live.retries = 0; lostSince = null; live.points = []; heard = Date.now(); askPanels(); };
    ws.onmessage = (e) => { heard = Date.now(); receive(JSON.parse(e.data)); };
    ws.onclose = () => {                                   // an ended run's last state stays; else: dropped
      if (!ended()) return reconnectLater();
      showState(live.status.state); disable();
    };
  }

  function reconnectLater() {
    // the connection dropped (the server restarted, the laptop slept, a proxy timed out): tried
    // again after a wait that grows, the page saying so meanwhile; unanswered for GIVE_UP_MS, the
    // page stops trying (each try is an error in the console) and offers Try again
    if (lostSince === null) lostSince = Date.now();
    disable();
    if (Date.now() - lostSince >= GIVE_UP_MS) return giveUp();
    showState("reconnecting…", "disconnected");
    retry = setTimeout(reconnect, RETRY_MS[Math.min(live.retries, RETRY_MS.length - 1)]);
    live.retries += 1;
  }

  function giveUp() {
    showState("not answering", "disconnected");
    $("error").textContent = `no answer for ${GIVE_UP_MS / 60000} minutes: the run's process has ended, or its server is unreachable`;
    $("retry").hidden = false;
  }

  function tryAgain() {
    // Try again, or the network back: a try at once, then the waits and the 2 minutes afresh
    clearTimeout(retry);
    $("retry").hidden = true; $("error").textContent = "";
    lostSince = null; live.retries = 0;
    showState("reconnecting…", "disconnected");
    reconnect();
  }

  $("retry").addEventListener("click", tryAgain);

  async function reconnect() {
    // the page's own address asked first: a server that answers but no longer has the run says so
    retry = null;
    let r;
    try { r = await fetch(location.pathname + location.search, {headers: {Accept: "application/json"}}); }
    catch (err) { return reconnectLater(); }
    if (r.status !== 404) return connect();
    const why = await r.json().catch(() => ({}));
    showState("gone", "disconnected");
    $("error").textContent = why.error || "the server no longer has this run";
  }

  setInterval(() => {
    // a connection that died without a close (a laptop's sleep, a dropped network) never says so:
    // the server answers a ping with a message; none for two pings, and another connection is opened
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    if (Date.now() - heard > 2 * PING_MS + 5000) {
      const dead = ws;
      dead.onclose = dead.onmessage = null;
      dead.close();
      return reconnectLater();
    }
    if (Date.now() - heard >= PING_MS) ws.send(JSON.stringify({ping: 1}));
  }, PING_MS / 3);

  // the network back: a page waiting to try again, or one that gave up, tries at once
  window.addEventListener("online", () => { if (retry || !$("retry").hidden) tryAgain(); });

  function showState(text, cls) { $("state").textContent = text; $("state").className = "state " + (cls || text); }

  const ended = () => ["done", "stopped", "failed", "cancelled"].includes(live.status.state);

  function disable() { $("pause").disabled = $("stop").disabled = true; }

  function receive(msg) {
    if (msg.info) {
      live.info = msg.info;
      $("title").textContent = msg.info.title || "";
      if (msg.info.title) document.title = `${msg.info.title} · nst`;        // two runs' tabs told apart
      const sel = $("gram-layer");
      if (!sel.options.length && msg.info.style_layers) {   // Ĝ ticked before the run said its layers: asked now
        for (const l of msg.info.style_layers) sel.add(new Option(l, l));
        askPanels();
      }
    }
    live.points.push(...msg.points);
    live.status = msg.status;
    if (msg.image) { $("image").src = "data:image/jpeg;base64," + msg.image; live.images += 1; }
    // nst serve, once the run has ended: its saved picture (a page opened after the end had no image)
    if (run && ["done", "stopped"].includes(msg.status.state)) $("image").src = base + "image?inline=1";
    if (msg.panels) showPanels(msg.panels);
    showStatus(msg.status);
    noteEndedPanels();
    drawSoon();
  }

  function drawSoon() { if (!drawPending) { drawPending = true; requestAnimationFrame(draw); } }
  window.addEventListener("resize", drawSoon);              // the curves drawn again at their new width

  function showStatus(s) {
    // --iterations auto: a scale ends once J's progress no longer pays (nst.run.schedule), so the
    // total and the ETA are at most; a run done made all it was to make (it said 80 / 114)
    const most = live.info.iterations === "auto" && !ended() ? "at most " : "";
    const total = s.state === "done" && s.it ? s.it : live.info.total || s.total || "?";
    $("it").textContent = s.it !== undefined ? `${s.it} / ${most}${total}` : "–";
    $("scale").textContent = s.scale !== undefined && live.info.sizes
      ? `${s.scale + 1} / ${live.info.sizes.length} (${live.info.sizes[s.scale]} px)` : "–";
    $("rate").textContent = s.s_per_it ? s.s_per_it.toFixed(3) : "–";
    // an ended run has no ETA; a paused one says so (its ETA, without the pause, comes back on Resume)
    const eta = nst.seconds(s.eta_s);
    $("eta").textContent = ended() ? "–" : s.paused ? "paused" : eta === "–" ? eta : most + eta;
    $("peak").textContent = nst.bytes(s.peak_bytes);
    $("viewers").textContent = s.viewers !== undefined ? `${s.viewers} page${s.viewers === 1 ? "" : "s"}` : "–";
    showState(s.stopping && !ended() ? "stopping" : s.paused && !ended() ? "paused" : s.state);
    const active = !ended() && !s.stopping && ws && ws.readyState === WebSocket.OPEN;
    $("pause").disabled = $("stop").disabled = !active;
    if (s.state === "queued" && !s.paused) $("pause").disabled = true;      // nothing to pause yet: Stop cancels it
    $("pause").textContent = s.paused ? "Resume" : "Pause";
    if (s.error || ended()) $("error").textContent = s.error || "";        // why a run failed, in its words
    // done without an iteration: the optimiser found nothing to improve (as the terminal says); else
    // where and why L-BFGS ended a scale before its iteration count (the terminal's reason), if it did
    $("note").textContent = s.state === "done" && s.it === 0
      ? "the optimiser stopped at its start (nothing to improve): the picture is the starting image"
      : s.stopped_early || "";
    $("warnings").textContent = (live.info.warnings || []).join("\n");   // nst serve: the run's, as its terminal says them
    const t = $("terms");
    t.replaceChildren();
    for (const [k, v] of Object.entries(s.terms || {})) {
      const row = t.insertRow(); row.insertCell().textContent = k; row.insertCell().textContent = v.toPrecision(4);
    }
  }

  function marks() {
    // where each scale starts, from the points (an L-BFGS scale may end early)
    const out = [];
    let last = -1;
    for (const p of live.points) if (p.scale !== last && p.scale !== null) {
      last = p.scale; out.push({x: p.it, label: `${(live.info.sizes || [])[p.scale] || "?"} px`});
    }
    return out;
  }

  function draw() {
    drawPending = false;
    // the x axis: the run's planned iterations; once it has ended, the iterations it made (a stopped
    // run's curves are not squeezed into a corner); under --iterations auto, until then, a cap (showStatus)
    const xs = live.points.map((p) => p.it), m = marks();
    const xmax = live.xmax = ended() && xs.length ? xs[xs.length - 1] : live.info.total || xs.length;
    const xlabel = live.info.iterations === "auto" && !ended() && live.info.total ? `at most ${xmax}` : String(xmax);
    const terms = Object.keys((live.points[0] || {}).terms || {});
    live.plotted = nst.plot($("terms-plot"), terms.map((k) => ({name: k, xs, ys: live.points.map((p) => p.terms[k])})),
                            {xmax, xlabel, marks: m});
    const layers = live.info.style_layers || [];
    nst.plot($("layers-plot"), layers.map((k) => ({name: k, xs, ys: live.points.map((p) => (p.layers || {})[k])})),
             {xmax, xlabel, marks: m});
  }

  function showPanels(p) {
    if (p.gram) { $("gram-x").src = "data:image/png;base64," + p.gram.x; $("gram-s").src = "data:image/png;base64," + p.gram.s; }
    if (p.grad) $("grad").src = "data:image/png;base64," + p.grad;
    if (p.features) showFeatures(p.features);
  }

  function showFeatures(f) {
    // the maps, or why there are none (a tiled run: nst.web.panels.TILED)
    $("features").hidden = !!f.note;
    if (f.image) $("features").src = "data:image/png;base64," + f.image;
    $("features-layer").textContent = f.note || `a(X) at ${f.layer}, the strongest channels`;
  }

  function askPanels() {
    const wanted = {gram: $("show-gram").checked ? $("gram-layer").value : null,
                    grad: $("show-grad").checked, features: $("show-features").checked};
    $("gram-panel").hidden = !wanted.gram; $("grad-panel").hidden = !wanted.grad; $("features-panel").hidden = !wanted.features;
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({panels: wanted}));
    noteEndedPanels();
  }

  function noteEndedPanels() {
    // an ended run computes no panel: one ticked that never got its picture says why it stays empty
    const empty = [["show-gram", "gram-x"], ["show-grad", "grad"], ["show-features", "features"]]
      .some(([box, img]) => $(box).checked && !$(img).getAttribute("src"));
    $("study-note").hidden = !(ended() && empty);
  }

  for (const id of ["show-gram", "gram-layer", "show-grad", "show-features"]) $(id).addEventListener("change", askPanels);
  function act(action) {
    // a control posted; the server's refusal (or no answer) shown, Stop usable again
    $("error").textContent = "";
    nst.post(base + "control/" + action).catch((err) => {
      $("error").textContent = `${action}: ${err.message}`;
      if (!ended()) $("stop").disabled = false;
    });
  }

  $("pause").addEventListener("click", () => act(live.status.paused ? "resume" : "pause"));
  $("stop").addEventListener("click", () => { $("stop").disabled = true; act("stop"); });
  if (!run) $("home").removeAttribute("href");
  connect();
})();
