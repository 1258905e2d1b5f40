"""The one HTML page of ``harness annotate``: inline CSS and JS, no network beyond its own server's /api.

The texts are put into the page with ``textContent`` (never as HTML), so a continuation cannot inject markup;
the server's Content-Security-Policy allows only this page's own nonce-tagged script and style.
"""

from __future__ import annotations

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>harness annotate</title>
<style nonce="__NONCE__">
  body { font: 16px/1.5 system-ui, sans-serif; margin: 0 auto; max-width: 78rem; padding: 1rem 1.5rem; color: #222; }
  header { display: flex; justify-content: space-between; align-items: baseline; gap: 1rem; }
  h1 { font-size: 1.1rem; margin: 0; }
  #progress { font-variant-numeric: tabular-nums; }
  .box { white-space: pre-wrap; border: 1px solid #ccc; border-radius: 6px; padding: .75rem 1rem; }
  #context { background: #f4f4f4; color: #444; margin: .5rem 0 1rem; }
  .pair { display: grid; grid-template-columns: 1fr 1fr; gap: 1rem; }
  .label { font-weight: 600; margin-bottom: .25rem; }
  .controls { display: flex; gap: .75rem; margin: 1rem 0; flex-wrap: wrap; }
  button { font: inherit; padding: .45rem 1.1rem; border-radius: 6px; border: 1px solid #888; background: #fff; cursor: pointer; }
  button:disabled { opacity: .45; cursor: default; }
  kbd { font: 12px monospace; border: 1px solid #aaa; border-bottom-width: 2px; border-radius: 3px; padding: 0 .3rem; }
  #message { min-height: 1.5rem; color: #a00; }
  #done { display: none; font-size: 1.1rem; }
  .hint { color: #666; font-size: .9rem; }
</style>
</head>
<body data-state="loading" data-judged="0" data-total="0">
<header>
  <h1>Which continuation of the context is better?</h1>
  <div id="progress">loading…</div>
</header>
<p class="hint">Judge fluency, coherence with the context, interest, and repetition. The order of A and B is random.
  Keys: <kbd>1</kbd>/<kbd>a</kbd> A is better · <kbd>2</kbd>/<kbd>b</kbd> B is better ·
  <kbd>3</kbd>/<kbd>t</kbd> equally good · <kbd>u</kbd>/<kbd>Backspace</kbd> undo the last judgement.</p>
<div id="item">
  <div class="label">Context</div>
  <div id="context" class="box"></div>
  <div class="pair">
    <div><div class="label">A</div><div id="left" class="box"></div></div>
    <div><div class="label">B</div><div id="right" class="box"></div></div>
  </div>
</div>
<div id="done">All items are judged. Thank you! You can close this page (or undo the last judgement).</div>
<div class="controls">
  <button id="btn-a" data-verdict="a">A is better <kbd>1</kbd></button>
  <button id="btn-b" data-verdict="b">B is better <kbd>2</kbd></button>
  <button id="btn-tie" data-verdict="tie">Equally good <kbd>3</kbd></button>
  <button id="btn-undo">Undo <kbd>u</kbd></button>
</div>
<div id="message" role="status"></div>
<script nonce="__NONCE__">
"use strict";
const token = new URLSearchParams(location.search).get("token") || "";
let current = null;
let busy = false;
const $ = (id) => document.getElementById(id);

async function call(path, body) {
  const init = body === undefined ? {} :
    {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)};
  const response = await fetch(path + "?token=" + encodeURIComponent(token), init);
  const data = await response.json();
  if (!response.ok) { throw new Error(data.error || ("HTTP " + response.status)); }
  return data;
}

function render(state) {
  current = state.item;
  document.body.dataset.judged = String(state.judged);
  document.body.dataset.total = String(state.total);
  document.body.dataset.item = current ? current.id : "";
  $("progress").textContent = state.judged + " of " + state.total + " judged";
  $("item").style.display = current ? "" : "none";
  $("done").style.display = current ? "none" : "block";
  if (current) {
    $("context").textContent = current.context;
    $("left").textContent = current.left;
    $("right").textContent = current.right;
  }
  for (const id of ["btn-a", "btn-b", "btn-tie"]) { $(id).disabled = !current; }
  $("btn-undo").disabled = !state.can_undo;
  document.body.dataset.state = current ? "ready" : "done";
}

async function act(path, body) {
  if (busy) { return; }
  busy = true;
  document.body.dataset.state = "busy";
  $("message").textContent = "";
  try {
    render(await call(path, body));
  } catch (error) {
    $("message").textContent = error.message;
    try { render(await call("/api/state")); } catch (ignored) { document.body.dataset.state = "error"; }
  } finally {
    busy = false;
  }
}

function judge(verdict) { if (current) { act("/api/judge", {item: current.id, verdict: verdict}); } }
function undo() { act("/api/undo", {}); }

for (const id of ["btn-a", "btn-b", "btn-tie"]) {
  $(id).addEventListener("click", (event) => judge(event.currentTarget.dataset.verdict));
}
$("btn-undo").addEventListener("click", undo);
document.addEventListener("keydown", (event) => {
  if (event.ctrlKey || event.metaKey || event.altKey || event.repeat) { return; }
  const key = event.key.toLowerCase();
  const verdict = {"1": "a", "a": "a", "2": "b", "b": "b", "3": "tie", "t": "tie"}[key];
  if (verdict) { event.preventDefault(); judge(verdict); }
  else if (key === "u" || key === "backspace") { event.preventDefault(); undo(); }
});
act("/api/state");
</script>
</body>
</html>
"""


def render_page(nonce: str) -> str:
    """The page with this response's CSP nonce on its script and style."""
    return _PAGE.replace("__NONCE__", nonce)
