/** A self-contained page that polls /v1/stats with the key the user enters. */
export const DASHBOARD_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Agent runtime</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:14px system-ui,sans-serif;margin:2rem;color:#222}h1{font-size:1.3rem}
table{border-collapse:collapse;margin-top:1rem;width:100%}td,th{border-bottom:1px solid #ddd;padding:.35rem .6rem;text-align:right}
td:first-child,th:first-child,td:nth-child(2),th:nth-child(2),td:nth-child(3),th:nth-child(3){text-align:left}
.cards{display:flex;gap:1rem;margin-top:1rem}.card{border:1px solid #ddd;border-radius:6px;padding:.6rem 1rem}
.card b{display:block;font-size:1.4rem}input{width:28rem}
</style></head><body>
<h1>Agent runtime — usage</h1>
<label>API key <input id="key" type="password" placeholder="Bearer key of the tenant"></label>
<label>days <input id="days" type="number" value="7" min="1" max="365" style="width:4rem"></label>
<div class="cards" id="cards"></div>
<table><thead><tr><th>kind</th><th>name</th><th>agent</th><th>calls</th><th>prompt tok</th><th>completion tok</th><th>cost USD</th><th>cache hits</th><th>errors</th><th>avg ms</th></tr></thead><tbody id="rows"></tbody></table>
<p id="status"></p>
<script>
const keyInput=document.getElementById("key");keyInput.value=sessionStorage.getItem("key")||"";
async function refresh(){const key=keyInput.value.trim();if(!key)return;sessionStorage.setItem("key",key);
const days=document.getElementById("days").value||7;
try{const r=await fetch("/v1/stats?days="+days,{headers:{authorization:"Bearer "+key}});const body=await r.json();
if(!r.ok){document.getElementById("status").textContent=body.error?body.error.message:r.status;return}
const t=body.totals;document.getElementById("cards").innerHTML=[["calls",t.calls],["tokens",t.tokens],["cost USD",t.costUsd.toFixed(4)],["cache hits",t.cacheHits],["errors",t.errors]].map(([k,v])=>'<div class="card">'+k+'<b>'+v+'</b></div>').join("");
const rows=document.getElementById("rows");rows.textContent="";for(const i of body.items){const tr=document.createElement("tr");
for(const v of [i.kind,i.name,i.agent,i.calls,i.promptTokens,i.completionTokens,i.costUsd.toFixed(6),i.cacheHits,i.errors,i.avgLatencyMs]){const td=document.createElement("td");td.textContent=String(v);tr.appendChild(td)}rows.appendChild(tr)}
document.getElementById("status").textContent="updated "+new Date().toLocaleTimeString()+" for tenant "+body.tenant}catch(e){document.getElementById("status").textContent=String(e)}}
keyInput.addEventListener("change",refresh);setInterval(refresh,5000);refresh();
</script></body></html>`;
