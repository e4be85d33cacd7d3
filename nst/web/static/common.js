// nst's pages: a small canvas plotter (log-scale curves) and helpers. No library, no build step.
"use strict";
const nst = window.nst = window.nst || {};
nst.COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"];

nst.$ = (id) => document.getElementById(id);

nst.request = async function (path, init) {
  // a request's JSON answer; an Error with the server's one line (or "not answering") otherwise
  let r;
  try { r = await fetch(path, {credentials: "same-origin", ...init}); }
  catch (err) { throw new Error("the server is not answering"); }
  if (!r.ok) throw new Error(await nst.refusal(r));
  const text = await r.text();
  try { return JSON.parse(text); } catch (e) { throw new Error(text.trim() || `${r.status} ${r.statusText}`); }
};

nst.refusal = async function (r) {
  // a refused answer's one line: the server's JSON {error}, else its text, else its status
  const text = await r.text();
  let data = null;
  try { data = JSON.parse(text); } catch (e) { data = null; }
  return (data && data.error) || text.trim() || `${r.status} ${r.statusText}`;
};

nst.post = (path, body) => nst.request(path, {method: "POST", body: body});
nst.getJSON = (path) => nst.request(path);

nst.seconds = function (s) {
  if (s === undefined || s === null || !isFinite(s)) return "–";
  s = Math.round(s);
  return s >= 3600 ? `${Math.floor(s / 3600)}h${String(Math.floor(s / 60) % 60).padStart(2, "0")}m`
                   : `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
};

nst.bytes = (b) => b ? (b / 2 ** 20).toFixed(0) + " MiB" : "–";

// plot(canvas, series [{name, xs, ys}], {xmax, xlabel, marks: [{x, label}]}): y on a log scale
// (xlabel: the x axis's end label, xmax unless said),
// values ≤ 0 skipped; -> the number of points drawn. Drawn at the size the canvas is shown (CSS
// pixels × the screen's density): a fixed 760 px canvas shrunk to a phone's width made its 11 px
// labels 4 px. The legend and the scales' labels sit above the plot's frame, never over a curve
nst.plot = function (canvas, series, opts) {
  const dpr = window.devicePixelRatio || 1;
  const W = canvas.clientWidth || canvas.width / dpr, H = canvas.clientHeight || canvas.height / dpr;    // 0: not laid out
  if (canvas.width !== Math.round(W * dpr)) canvas.width = Math.round(W * dpr);
  if (canvas.height !== Math.round(H * dpr)) canvas.height = Math.round(H * dpr);
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  const left = 56, right = 8, bottom = 22, LINE = 14;
  ctx.clearRect(0, 0, W, H);
  ctx.font = "11px sans-serif";
  const legend = nst.legend(ctx, series.map((s) => s.name), left, W - right, 4);
  const top = legend.bottom + (opts.marks && opts.marks.length ? LINE : 0) + 4;
  let lo = Infinity, hi = -Infinity, drawn = 0;
  for (const s of series) for (const y of s.ys) if (y > 0) { lo = Math.min(lo, y); hi = Math.max(hi, y); }
  const xmax = Math.max(opts.xmax || 1, 1);
  const X = (x) => left + (W - left - right) * (x - 1) / Math.max(xmax - 1, 1);
  ctx.strokeStyle = "#999"; ctx.strokeRect(left, top, W - left - right, H - top - bottom);
  if (!(hi > 0)) return 0;
  let l0 = Math.floor(Math.log10(lo)), l1 = Math.ceil(Math.log10(hi));
  if (l1 === l0) l1 += 1;
  const Y = (y) => top + (H - top - bottom) * (l1 - Math.log10(y)) / (l1 - l0);
  ctx.fillStyle = "#555"; ctx.textAlign = "right"; ctx.textBaseline = "middle";
  const step = Math.max(1, Math.ceil((l1 - l0) / 6));
  for (let e = l0; e <= l1; e += step) {
    ctx.fillText(`1e${e}`, left - 4, Y(10 ** e));
    ctx.strokeStyle = "#eee"; ctx.beginPath(); ctx.moveTo(left, Y(10 ** e)); ctx.lineTo(W - right, Y(10 ** e)); ctx.stroke();
  }
  ctx.textAlign = "center"; ctx.textBaseline = "top";
  ctx.fillText("1", X(1), H - bottom + 4);
  ctx.textAlign = "right"; ctx.fillText(opts.xlabel || String(xmax), X(xmax), H - bottom + 4);   // inside the canvas
  for (const m of opts.marks || []) {                    // where each scale starts, its size above the frame
    ctx.strokeStyle = "#aaa"; ctx.setLineDash([4, 3]);
    ctx.beginPath(); ctx.moveTo(X(m.x), top - 3); ctx.lineTo(X(m.x), H - bottom); ctx.stroke();
    ctx.setLineDash([]); ctx.fillStyle = "#777"; ctx.textAlign = "left"; ctx.textBaseline = "top";
    ctx.fillText(m.label, X(m.x) + 3, top - LINE);
  }
  series.forEach((s, k) => {
    ctx.strokeStyle = nst.COLOURS[k % nst.COLOURS.length]; ctx.lineWidth = 1.5; ctx.beginPath();
    let pen = false;
    s.xs.forEach((x, i) => {
      const y = s.ys[i];
      if (!(y > 0)) { pen = false; return; }
      pen ? ctx.lineTo(X(x), Y(y)) : ctx.moveTo(X(x), Y(y)); pen = true; drawn += 1;
    });
    ctx.stroke(); ctx.lineWidth = 1;
  });
  return drawn;
};

// legend(ctx, names, x0, x1, y0): each name after a short line of its colour, in rows from (x0, y0)
// wrapped at x1; -> {bottom: the y under its last row}
nst.legend = function (ctx, names, x0, x1, y0) {
  const LINE = 14, SWATCH = 14, GAP = 12;
  let x = x0, y = y0;
  ctx.textAlign = "left"; ctx.textBaseline = "top";
  names.forEach((name, k) => {
    const width = SWATCH + 4 + ctx.measureText(name).width;
    if (x > x0 && x + width > x1) { x = x0; y += LINE; }
    ctx.strokeStyle = ctx.fillStyle = nst.COLOURS[k % nst.COLOURS.length]; ctx.lineWidth = 2;
    ctx.beginPath(); ctx.moveTo(x, y + 6); ctx.lineTo(x + SWATCH, y + 6); ctx.stroke(); ctx.lineWidth = 1;
    ctx.fillText(name, x + SWATCH + 4, y);
    x += width + GAP;
  });
  return {bottom: names.length ? y + LINE : y0};
};
