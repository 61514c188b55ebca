/**
 * The API page served at `/docs`: reads `/openapi.json` from this server and renders it (operations
 * by tag, parameters, request and response schemas, error bodies) with the script at
 * `/docs/app.js`. Self-contained: no CDN, no key needed (the document holds no tenant data).
 */
export const DOCS_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Agent runtime — API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<style>
body{font:14px system-ui,sans-serif;margin:0;color:#1f2937;background:#fafafa;display:flex}
nav{width:17rem;flex:none;height:100vh;overflow:auto;position:sticky;top:0;background:#fff;border-right:1px solid #e5e7eb;padding:1rem}
nav h2{font-size:.75rem;text-transform:uppercase;color:#6b7280;margin:1rem 0 .3rem}
nav a{display:block;color:#1f2937;text-decoration:none;padding:.15rem 0;font-size:.85rem;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
nav a:hover{color:#2563eb}
main{flex:1;padding:1.2rem 2rem;max-width:64rem}
h1{font-size:1.4rem;margin:0 0 .3rem}h2.tag{font-size:1.1rem;margin:2rem 0 .2rem;border-bottom:1px solid #e5e7eb}
.op{background:#fff;border:1px solid #e5e7eb;border-radius:6px;margin:.8rem 0;padding:.6rem .9rem}
.op h3{font-size:1rem;margin:0;display:flex;gap:.6rem;align-items:baseline;flex-wrap:wrap}
.method{font:600 .75rem ui-monospace,monospace;padding:.1rem .4rem;border-radius:4px;color:#fff;text-transform:uppercase}
.get{background:#2563eb}.post{background:#16a34a}.patch{background:#d97706}.delete{background:#dc2626}
.path{font:600 .95rem ui-monospace,monospace}.id{color:#6b7280;font:.75rem ui-monospace,monospace;margin-left:auto}
.summary{margin:.3rem 0}.desc{color:#4b5563;margin:.3rem 0}
table{border-collapse:collapse;width:100%;margin:.3rem 0}td,th{border-bottom:1px solid #f3f4f6;padding:.25rem .5rem;text-align:left;vertical-align:top;font-size:.85rem}
th{color:#6b7280;font-weight:600}code,.type{font-family:ui-monospace,monospace;font-size:.8rem}.type{color:#7c3aed}
.req{color:#dc2626;font-size:.75rem}.status{font:600 .85rem ui-monospace,monospace}
details{margin:.2rem 0}summary{cursor:pointer}ul.schema{list-style:none;padding-left:1rem;margin:.1rem 0;border-left:1px dotted #d1d5db}
ul.schema li{margin:.1rem 0}.muted{color:#6b7280}.error{color:#b91c1c}
</style></head><body>
<nav id="nav"><b>Agent runtime API</b><div id="toc"></div></nav>
<main id="main"><p class="muted">Loading <a href="/openapi.json">/openapi.json</a>…</p></main>
<script src="/docs/app.js"></script>
</body></html>
`;

export const DOCS_SCRIPT = `"use strict";
(async function () {
  const main = document.getElementById("main");
  const toc = document.getElementById("toc");
  let doc;
  try {
    const response = await fetch("/openapi.json");
    if (!response.ok) throw new Error("HTTP " + response.status);
    doc = await response.json();
  } catch (error) {
    main.innerHTML = "";
    main.append(el("p", "error", "Could not load /openapi.json: " + error.message));
    return;
  }
  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function resolve(pointer) {
    let node = doc;
    for (const part of pointer.replace(/^#\\//, "").split("/")) node = node && node[part.replace(/~1/g, "/").replace(/~0/g, "~")];
    return node || {};
  }
  function refName(ref) {
    return ref.split("/").pop();
  }
  function typeOf(schema) {
    if (!schema) return "any";
    if (schema.$ref) return refName(schema.$ref);
    if (schema.const !== undefined) return JSON.stringify(schema.const);
    if (schema.enum) return schema.enum.map((value) => JSON.stringify(value)).join(" | ");
    const variants = schema.anyOf || schema.oneOf;
    if (variants) return variants.map(typeOf).join(" | ");
    if (schema.type === "array") return typeOf(schema.items) + "[]";
    if (Array.isArray(schema.type)) return schema.type.join(" | ");
    return schema.type || (schema.properties ? "object" : "any");
  }
  function facts(schema) {
    const parts = [];
    if (!schema) return "";
    if (schema.default !== undefined) parts.push("default " + JSON.stringify(schema.default));
    if (schema.minimum !== undefined && schema.minimum > -9e15) parts.push("≥ " + schema.minimum);
    if (schema.maximum !== undefined && schema.maximum < 9e15) parts.push("≤ " + schema.maximum);
    if (schema.minLength !== undefined) parts.push("min length " + schema.minLength);
    if (schema.maxLength !== undefined) parts.push("max length " + schema.maxLength);
    if (schema.minItems !== undefined) parts.push("min items " + schema.minItems);
    if (schema.maxItems !== undefined) parts.push("max items " + schema.maxItems);
    if (schema.pattern) parts.push("pattern " + schema.pattern);
    return parts.join(", ");
  }
  /** A schema as a tree of its fields; named schemas open on demand (so cycles never recurse). */
  function schemaTree(schema, depth) {
    const box = el("div");
    if (!schema) return box;
    if (schema.$ref) {
      const details = el("details");
      const summary = el("summary");
      summary.append(el("span", "type", refName(schema.$ref)));
      details.append(summary);
      details.addEventListener("toggle", () => {
        if (details.open && details.childNodes.length === 1) details.append(schemaTree(resolve(schema.$ref), depth + 1));
      }, { once: false });
      if (depth === 0) {
        details.open = true;
      }
      box.append(details);
      return box;
    }
    if (schema.description) box.append(el("div", "desc", schema.description));
    const variants = schema.anyOf || schema.oneOf;
    if (variants && variants.some((variant) => variant.$ref || variant.properties)) {
      box.append(el("div", "muted", "one of:"));
      const list = el("ul", "schema");
      for (const variant of variants) {
        const item = el("li");
        item.append(schemaTree(variant, depth + 1));
        list.append(item);
      }
      box.append(list);
      return box;
    }
    if (schema.type === "array" && schema.items && (schema.items.$ref || schema.items.properties)) {
      box.append(el("div", "muted", "array of:"));
      box.append(schemaTree(schema.items, depth + 1));
      return box;
    }
    if (schema.properties) {
      const list = el("ul", "schema");
      const required = new Set(schema.required || []);
      for (const [name, property] of Object.entries(schema.properties)) {
        const item = el("li");
        item.append(el("code", "", name), " ", el("span", "type", typeOf(property)));
        if (required.has(name)) item.append(" ", el("span", "req", "required"));
        const more = facts(property);
        if (more) item.append(" ", el("span", "muted", more));
        if (property.description) item.append(el("div", "desc", property.description));
        const nested = property.$ref || property.properties || (property.items && (property.items.$ref || property.items.properties)) ||
          (property.anyOf || property.oneOf || []).some((variant) => variant.$ref || variant.properties);
        if (nested) {
          const inner = schemaTree(property.$ref ? property : { ...property, description: undefined }, depth + 1);
          item.append(inner);
        }
        list.append(item);
      }
      box.append(list);
      return box;
    }
    box.append(el("span", "type", typeOf(schema)));
    const more = facts(schema);
    if (more) box.append(" ", el("span", "muted", more));
    return box;
  }
  function contentBlock(content) {
    const box = el("div");
    for (const [type, media] of Object.entries(content || {})) {
      box.append(el("div", "muted", type));
      box.append(schemaTree(media.schema, 0));
    }
    return box;
  }
  function parameterTable(parameters) {
    const table = el("table");
    const head = el("tr");
    for (const title of ["parameter", "in", "type", ""]) head.append(el("th", "", title));
    table.append(head);
    for (const raw of parameters) {
      const parameter = raw.$ref ? resolve(raw.$ref) : raw;
      const row = el("tr");
      const name = el("td");
      name.append(el("code", "", parameter.name));
      if (parameter.required) name.append(" ", el("span", "req", "required"));
      row.append(name, el("td", "", parameter.in), el("td", "type", typeOf(parameter.schema)));
      const about = el("td");
      if (parameter.description) about.append(el("div", "", parameter.description));
      const more = facts(parameter.schema);
      if (more) about.append(el("div", "muted", more));
      row.append(about);
      table.append(row);
    }
    return table;
  }
  main.innerHTML = "";
  main.append(el("h1", "", doc.info.title + " " + doc.info.version));
  if (doc.info.description) main.append(el("p", "desc", doc.info.description));
  const raw = el("p");
  const link = el("a", "", "/openapi.json");
  link.href = "/openapi.json";
  raw.append("OpenAPI " + doc.openapi + " document: ", link, " (generate a typed client from it).");
  main.append(raw);
  const byTag = new Map((doc.tags || []).map((tag) => [tag.name, { tag, operations: [] }]));
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, operation] of Object.entries(item)) {
      const name = (operation.tags && operation.tags[0]) || "other";
      if (!byTag.has(name)) byTag.set(name, { tag: { name }, operations: [] });
      byTag.get(name).operations.push({ path, method, operation });
    }
  }
  for (const { tag, operations } of byTag.values()) {
    if (operations.length === 0) continue;
    const title = el("h2", "tag", tag.name);
    title.id = "tag-" + tag.name;
    main.append(title);
    if (tag.description) main.append(el("p", "desc", tag.description));
    toc.append(el("h2", "", tag.name));
    for (const { path, method, operation } of operations) {
      const section = el("section", "op");
      section.id = operation.operationId;
      const heading = el("h3");
      heading.append(el("span", "method " + method, method), el("span", "path", path), el("span", "id", operation.operationId));
      section.append(heading, el("div", "summary", operation.summary || ""));
      if (operation.description) section.append(el("div", "desc", operation.description));
      const open = Array.isArray(operation.security) && operation.security.length === 0;
      section.append(el("div", "muted", open ? "no key needed" : "needs Authorization: Bearer <api key>"));
      if (operation.parameters && operation.parameters.length > 0) section.append(parameterTable(operation.parameters));
      if (operation.requestBody) {
        const body = el("details");
        body.open = true;
        body.append(el("summary", "", "request body"), contentBlock(operation.requestBody.content));
        section.append(body);
      }
      for (const [status, raw] of Object.entries(operation.responses)) {
        const response = raw.$ref ? resolve(raw.$ref) : raw;
        const answer = el("details");
        answer.open = status.startsWith("2");
        const summary = el("summary");
        summary.append(el("span", "status", status), " " + (response.description || ""));
        answer.append(summary);
        if (response.headers) {
          const names = Object.keys(response.headers);
          if (names.length > 0) answer.append(el("div", "muted", "headers: " + names.join(", ")));
        }
        answer.append(contentBlock(response.content));
        section.append(answer);
      }
      main.append(section);
      const entry = el("a", "", method.toUpperCase() + " " + path);
      entry.href = "#" + operation.operationId;
      entry.title = operation.summary || "";
      toc.append(entry);
    }
  }
})();
`;
