/**
 * The dashboard page served at `/dashboard`: uPlot charts (served by ingress from the
 * `uplot` package at `/dashboard/uplot.js`, no CDN) over `/v1/stats/series`, a hotspots
 * table and cache savings. It asks for an API key first and says why; the key stays in
 * the tab's sessionStorage and is only sent to this server.
 */
export const DASHBOARD_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Agent runtime — dashboard</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/dashboard/uplot.css">
<style>
body{font:14px system-ui,sans-serif;margin:1.2rem 2rem;color:#222;background:#fafafa}
h1{font-size:1.3rem;margin:0 0 .6rem}h2{font-size:1rem;margin:1.4rem 0 .4rem}
#controls{display:flex;flex-wrap:wrap;gap:1rem;align-items:center}
#prompt{border:1px solid #cbd5e1;background:#fff;border-radius:6px;padding:1rem;max-width:46rem}
#prompt p{margin:.2rem 0 .7rem}#key{width:26rem}
.cards{display:flex;flex-wrap:wrap;gap:.8rem;margin-top:1rem}
.card{border:1px solid #ddd;background:#fff;border-radius:6px;padding:.5rem .9rem;min-width:7rem}.card b{display:block;font-size:1.3rem}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(560px,1fr));gap:1rem;margin-top:1rem}
.chart{background:#fff;border:1px solid #ddd;border-radius:6px;padding:.5rem;min-height:300px}
.chart h3{font-size:.9rem;margin:.1rem 0 .3rem}.empty{color:#888;padding:2rem 0;text-align:center}
table{border-collapse:collapse;background:#fff;width:100%}td,th{border-bottom:1px solid #e5e5e5;padding:.3rem .6rem;text-align:right}
td.t,th.t{text-align:left}#status{color:#555;margin-left:auto}.error{color:#b91c1c}
[hidden]{display:none!important}
</style></head><body>
<h1>Agent runtime — latency, spend, errors and hotspots</h1>
<form id="prompt" hidden>
<p><b>This dashboard needs an API key.</b> It reads per-minute usage rollups from <code>/v1/stats/series</code>
on this server, which answers only to a key with the <code>runs</code> scope: a tenant's key shows that tenant,
an admin key shows every tenant and lets you pick one.</p>
<p>The key stays in this browser tab (sessionStorage) and is sent only to this server.</p>
<label>API key <input id="key" type="password" autocomplete="off" placeholder="paste a key (Bearer token)"></label>
<button type="submit">Show dashboard</button> <span id="prompt-error" class="error"></span>
</form>
<div id="main" hidden>
<div id="controls">
<label>range <select id="range"><option>15m</option><option selected>1h</option><option>6h</option><option>24h</option><option>7d</option><option>30d</option></select></label>
<label id="tenant-pick" hidden>tenant <select id="tenant"><option value="*">all tenants</option></select></label>
<label>spend by <select id="group"><option>model</option><option>agent</option><option>tenant</option></select></label>
<button id="forget" type="button">forget key</button>
<span id="status"></span>
</div>
<div class="cards" id="cards"></div>
<div class="grid" id="charts"></div>
<h2>Hotspots — slowest and most expensive</h2>
<table><thead><tr><th class="t">kind</th><th class="t">name</th><th>calls</th><th>p95 ms</th><th>error %</th><th>cost USD</th></tr></thead><tbody id="hotspots"></tbody></table>
<h2>Cache savings</h2>
<table><thead><tr><th class="t">cache</th><th>hits</th><th>calls</th><th>hit %</th><th>prompt tokens cached</th><th>saved USD (est.)</th></tr></thead><tbody id="caches"></tbody></table>
</div>
<script src="/dashboard/uplot.js"></script>
<script src="/dashboard/app.js"></script>
</body></html>`;

/** The page's script (served at `/dashboard/app.js`). */
export const DASHBOARD_SCRIPT = `"use strict";
(function () {
  var $ = function (id) { return document.getElementById(id); };
  var state = { charts: {}, updates: 0, lastError: null, ready: false };
  window.__dashboard = state;
  var COLORS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#db2777", "#4b5563", "#65a30d"];
  var CHARTS = [
    ["latency-service", "Latency by service (ms): p50, p95, p99", function (d) { return d.latency.by_service; }],
    ["latency-agent", "Turn latency by agent at ingress (ms): p50, p95, p99", function (d) { return d.latency.by_agent; }],
    ["tokens", "Tokens per step", function (d, g) { return d.tokens[g]; }],
    ["cost", "Cost per step (USD)", function (d, g) { return d.cost_usd[g]; }],
    ["errors", "Error rate (%) by service and code, refusals included", function (d) { return d.error_rate; }],
    ["throughput", "Throughput (calls per minute) by service", function (d) { return d.throughput; }],
    ["queue", "Queue depth by lane (deepest per step)", function (d) { return d.queue; }],
    ["shed", "Requests shed by service (429, 503, overloaded)", function (d) { return d.shed; }]
  ];
  var key = sessionStorage.getItem("agent-runtime-key") || "";

  function showPrompt(message) {
    $("main").hidden = true; $("prompt").hidden = false;
    $("prompt-error").textContent = message || "";
    $("key").focus();
  }
  function el(tag, text, className) {
    var node = document.createElement(tag);
    if (text !== undefined) node.textContent = String(text);
    if (className) node.className = className;
    return node;
  }
  function fmt(value, digits) {
    if (typeof value !== "number") return String(value);
    if (digits !== undefined) return value.toFixed(digits);
    return value >= 1e6 ? (value / 1e6).toFixed(2) + "M" : value >= 1e4 ? (value / 1e3).toFixed(1) + "k" : String(Math.round(value * 100) / 100);
  }
  function drawChart(host, id, title, times, series) {
    var box = el("div", undefined, "chart"); box.id = "chart-" + id;
    box.appendChild(el("h3", title));
    host.appendChild(box);
    var drawn = series.filter(function (s) { return s.values.some(function (v) { return v !== null; }); });
    if (drawn.length === 0) { box.appendChild(el("div", "no data in this range", "empty")); return; }
    var options = {
      width: Math.max(320, box.clientWidth - 16), height: 240,
      scales: { x: { time: true } },
      series: [{}].concat(drawn.map(function (s, i) {
        return { label: s.label, stroke: COLORS[i % COLORS.length], width: 1.5, spanGaps: true, points: { show: true, size: 4 } };
      })),
      axes: [{}, { size: 60 }],
      legend: { live: false }
    };
    var data = [times].concat(drawn.map(function (s) { return s.values; }));
    state.charts[id] = new uPlot(options, data, box);
  }
  function fillTable(body, rows, textColumns) {
    body.textContent = "";
    rows.forEach(function (row) {
      var tr = el("tr");
      row.forEach(function (value, index) { tr.appendChild(el("td", value, index < textColumns ? "t" : "")); });
      body.appendChild(tr);
    });
  }
  function render(d) {
    var group = $("group").value;
    Object.keys(state.charts).forEach(function (id) { state.charts[id].destroy(); });
    state.charts = {};
    var host = $("charts"); host.textContent = "";
    CHARTS.forEach(function (c) { drawChart(host, c[0], c[1], d.times, c[2](d, group) || []); });
    var t = d.totals;
    var cards = [["requests", t.requests], ["refused or failed", t.refused], ["model and tool calls", t.calls], ["tokens", t.tokens], ["cost USD", fmt(t.cost_usd, 4)], ["call errors", t.errors]];
    $("cards").textContent = "";
    cards.forEach(function (c) { var card = el("div", c[0], "card"); card.appendChild(el("b", fmt(c[1]))); $("cards").appendChild(card); });
    fillTable($("hotspots"), d.hotspots.map(function (h) { return [h.kind, h.name, h.calls, h.p95_ms, fmt(h.error_rate, 1), fmt(h.cost_usd, 6)]; }), 2);
    fillTable($("caches"), d.cache_savings.map(function (c) {
      return [c.cache, c.hits, c.calls, c.calls > 0 ? fmt((100 * c.hits) / c.calls, 1) : "-", c.tokens, fmt(c.saved_usd, 6)];
    }), 1);
  }
  function refresh() {
    if (!key) { showPrompt(); return; }
    var params = new URLSearchParams({ range: $("range").value });
    var tenant = $("tenant").value;
    if (!$("tenant-pick").hidden && tenant) params.set("tenant", tenant);
    return fetch("/v1/stats/series?" + params, { headers: { authorization: "Bearer " + key } })
      .then(function (response) {
        return response.json().then(function (body) {
          if (response.status === 401 || response.status === 403) {
            key = ""; sessionStorage.removeItem("agent-runtime-key");
            showPrompt(body.error ? body.error.message : "this key was refused");
            return;
          }
          if (!response.ok) { $("status").textContent = body.error ? body.error.message : String(response.status); return; }
          $("prompt").hidden = true; $("main").hidden = false;
          if (body.tenants) {
            var pick = $("tenant"), current = pick.value;
            $("tenant-pick").hidden = false;
            pick.textContent = ""; pick.appendChild(el("option", "all tenants")).value = "*";
            body.tenants.forEach(function (name) { pick.appendChild(el("option", name)).value = name; });
            pick.value = current && (current === "*" || body.tenants.indexOf(current) >= 0) ? current : "*";
          }
          render(body);
          state.updates += 1; state.ready = true;
          $("status").textContent = "tenant " + (body.tenant === "*" ? "all" : body.tenant) + " · " + body.range +
            " in " + body.step_seconds + " s steps · answered in " + body.query_ms + " ms · " + new Date().toLocaleTimeString();
        });
      })
      .catch(function (error) { state.lastError = String(error); $("status").textContent = String(error); });
  }
  $("prompt").addEventListener("submit", function (event) {
    event.preventDefault();
    key = $("key").value.trim();
    if (key) sessionStorage.setItem("agent-runtime-key", key);
    refresh();
  });
  $("forget").addEventListener("click", function () { key = ""; sessionStorage.removeItem("agent-runtime-key"); showPrompt(); });
  ["range", "tenant", "group"].forEach(function (id) { $(id).addEventListener("change", refresh); });
  setInterval(function () { if (key && !document.hidden) refresh(); }, 15000);
  refresh();
})();
`;
