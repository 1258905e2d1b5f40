/* harness report: sortable tables and the sample browser. Plain JS, no libraries, no network.
   The data is JSON in <script type="application/json"> blocks (see harness/report_data.py for the packing);
   a block of contexts is parsed only when one of its contexts is shown, and only that context is drawn.
   Text is always inserted as text nodes, never as HTML. */
(function () {
  "use strict";

  // ------------------------------------------------------------------ sortable tables
  function sortKey(cell, numeric) {
    var raw = cell.getAttribute("data-sort");
    if (raw === null) raw = cell.textContent.trim();
    if (!numeric) return raw.toLowerCase();
    var v = parseFloat(raw);
    return isNaN(v) ? null : v;
  }

  function sortTable(table, th) {
    var col = Number(th.getAttribute("data-col"));
    var numeric = th.getAttribute("data-type") === "num";
    var dir = th.getAttribute("aria-sort") === "ascending" ? "descending" : "ascending";
    var sign = dir === "ascending" ? 1 : -1;
    Array.prototype.forEach.call(table.querySelectorAll("th[data-col]"), function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", dir);
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows).map(function (row, i) {
      return { row: row, key: sortKey(row.cells[col], numeric), i: i };
    });
    rows.sort(function (a, b) {
      if (a.key === null || b.key === null) {  // missing values always last
        if (a.key === b.key) return a.i - b.i;
        return a.key === null ? 1 : -1;
      }
      if (a.key < b.key) return -sign;
      if (a.key > b.key) return sign;
      return a.i - b.i;
    });
    rows.forEach(function (r) { body.appendChild(r.row); });
  }

  Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), function (table) {
    Array.prototype.forEach.call(table.querySelectorAll("th[data-col]"), function (th) {
      th.addEventListener("click", function () { sortTable(table, th); });
      th.addEventListener("keydown", function (e) { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sortTable(table, th); } });
    });
  });

  // ------------------------------------------------------------------ sample browser
  var metaNode = document.getElementById("report-meta");
  var grid = document.getElementById("s-grid");
  if (!metaNode || !grid) { document.body.setAttribute("data-ready", "1"); return; }
  var meta = JSON.parse(metaNode.textContent);
  var digit = {};
  for (var a = 0; a < meta.alphabet.length; a++) digit[meta.alphabet.charAt(a)] = a;
  var levels = meta.alphabet.length;
  var chunks = {};

  function chunk(i) {
    if (!(i in chunks)) chunks[i] = JSON.parse(document.getElementById("chunk-" + i).textContent);
    return chunks[i];
  }

  function unpackInts(text) {  // base-32 varints, low group first; digits 32..63 mean "more follows"
    var out = [], cur = 0, shift = 0;
    for (var i = 0; i < text.length; i++) {
      var d = digit[text.charAt(i)];
      if (d >= 32) { cur += (d - 32) * Math.pow(2, shift); shift += 5; }
      else { out.push(cur + d * Math.pow(2, shift)); cur = 0; shift = 0; }
    }
    return out;
  }

  function offsets(packed) {  // (gap, length) pairs, or "." + lengths when tokens tile the text → [start, end)
    if (!packed) return null;
    var out = [], pos = 0, i;
    if (packed.charAt(0) === ".") {
      var lengths = unpackInts(packed.slice(1));
      for (i = 0; i < lengths.length; i++) { out.push([pos, pos + lengths[i]]); pos += lengths[i]; }
      return out;
    }
    var flat = unpackInts(packed);
    for (i = 0; i + 1 < flat.length; i += 2) { var s = pos + flat[i]; pos = s + flat[i + 1]; out.push([s, pos]); }
    return out;
  }

  // a colour ramp for entropy (viridis anchors), one colour per quantisation level
  var anchors = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
  var ramp = [];
  for (var l = 0; l < levels; l++) {
    var t = l / (levels - 1) * (anchors.length - 1), k = Math.min(anchors.length - 2, Math.floor(t)), f = t - k;
    var c = anchors[k].map(function (v, j) { return Math.round(v + (anchors[k + 1][j] - v) * f); });
    ramp.push("rgb(" + c.join(",") + ")");
  }

  function units(text, offs, unit) {
    var out = [];
    if (unit === "tokens" && offs) {
      offs.forEach(function (o) { out.push({ s: o[0], e: o[1], k: text.slice(o[0], o[1]) }); });
      return out;
    }
    var re = /\S+/g, m;
    while ((m = re.exec(text)) !== null) out.push({ s: m.index, e: m.index + m[0].length, k: m[0] });
    return out;
  }

  function repeatRanges(list, n) {  // every n-gram that occurs more than once, all its occurrences
    var counts = new Map(), keys = [], ranges = [];
    for (var i = 0; i + n <= list.length; i++) {
      var key = "";
      for (var j = i; j < i + n; j++) key += list[j].k + "\u0001";
      keys.push(key);
      counts.set(key, (counts.get(key) || 0) + 1);
    }
    var covered = 0, last = -1;
    for (var q = 0; q < keys.length; q++) {
      if (counts.get(keys[q]) > 1) {
        ranges.push({ s: list[q].s, e: list[q + n - 1].e, c: "rep" });
        covered += (q + n - 1) - Math.max(q - 1, last);
        last = q + n - 1;
      }
    }
    return { ranges: ranges, covered: covered, total: list.length };
  }

  function paint(node, text, ranges) {  // split text at every range edge; each piece gets the classes covering it
    var edges = [0, text.length];
    ranges.forEach(function (r) { edges.push(r.s, r.e); });
    edges = Array.from(new Set(edges)).filter(function (x) { return x >= 0 && x <= text.length; }).sort(function (x, y) { return x - y; });
    var starts = {}, ends = {};
    ranges.forEach(function (r) {
      if (r.e <= r.s) return;
      (starts[r.s] = starts[r.s] || []).push(r.c);
      (ends[r.e] = ends[r.e] || []).push(r.c);
    });
    var active = {};
    for (var i = 0; i + 1 < edges.length; i++) {
      var at = edges[i];
      (ends[at] || []).forEach(function (c) { active[c] -= 1; });
      (starts[at] || []).forEach(function (c) { active[c] = (active[c] || 0) + 1; });
      var piece = text.slice(at, edges[i + 1]);
      var classes = Object.keys(active).filter(function (c) { return active[c] > 0; });
      if (!classes.length) { node.appendChild(document.createTextNode(piece)); continue; }
      var span = document.createElement("span");
      span.className = classes.sort().join(" ");
      span.textContent = piece;
      node.appendChild(span);
    }
  }

  function strip(sample, copied, blocked) {
    var node = document.createElement("div");
    node.className = "strip";
    var steps = sample.e;
    for (var i = 0; i < steps.length; i++) {
      var cell = document.createElement("span"), lv = digit[steps.charAt(i)];
      cell.style.background = ramp[lv];
      var title = "step " + i + " · entropy ≈ " + (lv / (levels - 1) * meta.entropyScale).toFixed(2) + " nats";
      var cls = [];
      if (copied[i]) { cls.push("copy"); title += " · copied"; }
      if (blocked[i]) { cls.push("blk"); title += " · blocked"; }
      if (cls.length) cell.className = cls.join(" ");
      cell.title = title;
      node.appendChild(cell);
    }
    return node;
  }

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  var dsSel = document.getElementById("s-dataset"), ctxSel = document.getElementById("s-context");
  var nInput = document.getElementById("s-n"), unitSel = document.getElementById("s-unit");
  var position = document.getElementById("s-position"), contextBox = document.getElementById("s-context-text");

  function card(title, text, offs, extra) {
    var node = el("div", "card" + (extra.reference ? " reference" : ""));
    node.setAttribute("data-cell", extra.cell);
    node.appendChild(el("h4", null, title));
    var badges = el("div", "badges");
    node.appendChild(badges);
    var n = Math.max(1, Number(nInput.value) || 4);
    var rep = repeatRanges(units(text, offs, unitSel.value), n);
    var ranges = rep.ranges.slice();
    (extra.badges || []).forEach(function (b) { badges.appendChild(el("span", "badge" + (b[1] ? " " + b[1] : ""), b[0])); });
    badges.appendChild(el("span", "badge", rep.total ? Math.round(100 * rep.covered / rep.total) + "% of " +
      (unitSel.value === "tokens" && offs ? "tokens" : "words") + " in repeated " + n + "-grams" : "empty"));
    if (offs) {
      (extra.copies || []).forEach(function (x) {
        if (x[0] < offs.length) ranges.push({ s: offs[x[0]][0], e: offs[Math.min(x[1], offs.length) - 1][1], c: "copy" });
      });
      (extra.blockedAt || []).forEach(function (i) { if (i < offs.length) ranges.push({ s: offs[i][0], e: offs[i][1], c: "blk" }); });
    }
    var body = el("div", "text");
    paint(body, text, ranges);
    node.appendChild(body);
    if (extra.strip) node.appendChild(extra.strip);
    return node;
  }

  function render() {
    var entries = meta.index[dsSel.value] || [];
    var at = Number(ctxSel.value) || 0, entry = entries[at];
    grid.textContent = "";
    contextBox.textContent = "";
    if (!entry) return;
    var slot = chunk(entry[2])[entry[3]];
    position.textContent = (at + 1) + " / " + entries.length;
    contextBox.appendChild(el("b", null, slot.p));
    contextBox.appendChild(document.createTextNode(slot.c));
    var frag = document.createDocumentFragment();
    frag.appendChild(card("human reference", slot.r, offsets(slot.ro), { reference: true, cell: "reference" }));
    var samples = slot.s.slice().sort(function (x, y) { return (x.k - y.k) || ((x.d || 0) - (y.d || 0)); });
    samples.forEach(function (s) {
      var name = meta.cells[s.k].split("__").join(" / ") + (s.d ? " · draw " + s.d : "");
      var badges = [[s.n + " tokens"]];
      var copied = {}, blocked = {}, copiedCount = 0;
      (s.x || []).forEach(function (x) { for (var i = x[0]; i < x[1]; i++) { if (!copied[i]) copiedCount++; copied[i] = true; } });
      var blockedAt = Array.isArray(s.b) ? s.b : [];
      blockedAt.forEach(function (i) { blocked[i] = true; });
      if (s.x) badges.push([copiedCount ? copiedCount + " tokens copied from training" : "nothing copied (" + meta.copyNgram + "-grams)", copiedCount ? "copied" : ""]);
      if (typeof s.b === "number") badges.push([s.b + " blocked steps", "blocked"]);
      else if (blockedAt.length) badges.push([blockedAt.length + " blocked steps", "blocked"]);
      if (s.z) badges.push(["stopped at EOS"]);
      if (!s.o && s.x && copiedCount) badges.push(["copies marked on the strip (token positions unknown)"]);
      frag.appendChild(card(name, s.t, offsets(s.o), {
        cell: meta.cells[s.k], badges: badges, copies: s.x, blockedAt: blockedAt,
        strip: s.e ? strip(s, copied, blocked) : null,
      }));
    });
    grid.appendChild(frag);
  }

  function fillContexts() {
    var entries = meta.index[dsSel.value] || [];
    var frag = document.createDocumentFragment();
    ctxSel.textContent = "";
    entries.forEach(function (e, i) { var o = el("option", null, e[0] + " — " + e[1]); o.value = String(i); frag.appendChild(o); });
    ctxSel.appendChild(frag);
    ctxSel.value = "0";
    render();
  }

  Object.keys(meta.index).forEach(function (name) { var o = el("option", null, name); o.value = name; dsSel.appendChild(o); });
  dsSel.addEventListener("change", fillContexts);
  ctxSel.addEventListener("change", render);
  nInput.addEventListener("input", render);
  unitSel.addEventListener("change", render);
  function step(delta) {
    var count = ctxSel.options.length;
    if (!count) return;
    ctxSel.value = String((Number(ctxSel.value) + delta + count) % count);
    render();
  }
  document.getElementById("s-prev").addEventListener("click", function () { step(-1); });
  document.getElementById("s-next").addEventListener("click", function () { step(1); });
  if (!meta.positioned) unitSel.querySelector('option[value="tokens"]').disabled = true;
  fillContexts();
  window.reportReadyMs = performance.now();
  document.body.setAttribute("data-ready", "1");
})();
