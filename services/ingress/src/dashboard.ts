/**
 * A self-contained page that polls /v1/stats with the key the user enters:
 * runs, tokens, cost, latency and cache hits per model, agent and tenant
 * (an admin key may pick another tenant, or `*` for all).
 */
export const DASHBOARD_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Agent runtime</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:14px system-ui,sans-serif;margin:2rem;color:#222}h1{font-size:1.3rem}h2{font-size:1rem;margin-top:1.5rem}
table{border-collapse:collapse;margin-top:.5rem;width:100%}td,th{border-bottom:1px solid #ddd;padding:.35rem .6rem;text-align:right}
td.t,th.t{text-align:left}.cards{display:flex;flex-wrap:wrap;gap:1rem;margin-top:1rem}
.card{border:1px solid #ddd;border-radius:6px;padding:.6rem 1rem}.card b{display:block;font-size:1.4rem}
label{margin-right:1rem}#key{width:24rem}
</style></head><body>
<h1>Agent runtime — usage</h1>
<label>API key <input id="key" type="password" placeholder="Bearer key"></label>
<label>tenant <input id="tenant" placeholder="own (admin: name or *)" style="width:12rem"></label>
<label>days <input id="days" type="number" value="7" min="1" max="365" style="width:4rem"></label>
<div class="cards" id="cards"></div>
<h2>Runs per agent</h2>
<table><thead><tr><th class="t">tenant</th><th class="t">agent</th><th>runs</th></tr></thead><tbody id="runs"></tbody></table>
<h2>Model and tool calls</h2>
<table><thead><tr><th class="t">tenant</th><th class="t">kind</th><th class="t">name</th><th class="t">agent</th><th>calls</th><th>prompt tok</th><th>completion tok</th><th>cost USD</th><th>cache hits</th><th>errors</th><th>avg ms</th></tr></thead><tbody id="rows"></tbody></table>
<p id="status"></p>
<script>
const $=(id)=>document.getElementById(id);
$("key").value=sessionStorage.getItem("key")||"";
function fill(body,rows,textColumns){body.textContent="";for(const row of rows){const tr=document.createElement("tr");
row.forEach((v,i)=>{const td=document.createElement("td");if(i<textColumns)td.className="t";td.textContent=String(v);tr.appendChild(td)});body.appendChild(tr)}}
async function refresh(){const key=$("key").value.trim();if(!key)return;sessionStorage.setItem("key",key);
const params=new URLSearchParams({days:$("days").value||"7"});const tenant=$("tenant").value.trim();if(tenant)params.set("tenant",tenant);
try{const r=await fetch("/v1/stats?"+params,{headers:{authorization:"Bearer "+key}});const body=await r.json();
if(!r.ok){$("status").textContent=body.error?body.error.message:String(r.status);return}
const t=body.totals;const cards=[["runs",t.runs],["model/tool calls",t.calls],["tokens",t.tokens],["cost USD",t.costUsd.toFixed(4)],["cache hits",t.cacheHits],["errors",t.errors],["avg latency ms",t.avgLatencyMs]];
$("cards").textContent="";for(const [k,v] of cards){const d=document.createElement("div");d.className="card";d.textContent=k;const b=document.createElement("b");b.textContent=String(v);d.appendChild(b);$("cards").appendChild(d)}
fill($("runs"),body.runs.map((x)=>[x.tenant,x.agent||"-",x.runs]),2);
fill($("rows"),body.items.map((i)=>[i.tenant,i.kind,i.name,i.agent||"-",i.calls,i.promptTokens,i.completionTokens,i.costUsd.toFixed(6),i.cacheHits,i.errors,i.avgLatencyMs]),4);
$("status").textContent="updated "+new Date().toLocaleTimeString()+" for tenant "+body.tenant}catch(e){$("status").textContent=String(e)}}
for(const id of ["key","tenant","days"])$(id).addEventListener("change",refresh);setInterval(refresh,5000);refresh();
</script></body></html>`;
