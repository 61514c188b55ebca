/**
 * provider-transport benchmark: CPU per provider call in the calling process, the `openai` client
 * over the global fetch against the same client over the model proxy's node:http transport
 * (`providerFetch`), at concurrency 1 and 16, and streamed at 16. The provider is a plain HTTP server in a child
 * process (its CPU is not counted); rounds alternate so machine noise falls on both.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { pathToFileURL } from "node:url";
import { providerFetch } from "@agent-runtime/model-proxy";
import OpenAI from "openai";
import { runConcurrent, summarize, writeResult } from "./stats.js";

const SERVER = `
const http = require("node:http");
const body = JSON.stringify({ id: "c", object: "chat.completion", created: 1, model: "m",
  choices: [{ index: 0, message: { role: "assistant", content: "ok" }, finish_reason: "stop" }],
  usage: { prompt_tokens: 10, completion_tokens: 1, total_tokens: 11 } });
const chunk = (content) => "data: " + JSON.stringify({ id: "c", object: "chat.completion.chunk", created: 1,
  model: "m", choices: [{ index: 0, delta: { content }, finish_reason: null }] }) + "\\n\\n";
const server = http.createServer((req, res) => { let text = ""; req.on("data", (d) => { text += d; });
  req.on("end", () => {
  if (text.includes('"stream":true')) {
    res.writeHead(200, { "content-type": "text/event-stream" });
    for (const piece of ["o", "k", "!"]) res.write(chunk(piece));
    res.end("data: [DONE]\\n\\n");
    return;
  }
  res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
  res.end(body); }); });
server.listen(0, "127.0.0.1", () => console.log(server.address().port));
`;

async function startServer(): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, ["-e", SERVER], { stdio: ["ignore", "pipe", "inherit"] });
  const [chunk] = (await once(child.stdout!, "data")) as [Buffer];
  return { url: `http://127.0.0.1:${chunk.toString().trim()}/v1`, child };
}

export async function run() {
  const calls = Number(process.env.BENCH_SAMPLES ?? 3000);
  const rounds = 3;
  const { url, child } = await startServer();
  const clients = {
    "global fetch": new OpenAI({ baseURL: url, apiKey: "k", maxRetries: 0 }),
    "node:http transport": new OpenAI({ baseURL: url, apiKey: "k", maxRetries: 0, fetch: providerFetch }),
  };
  const call = async (client: OpenAI, stream: boolean) => {
    if (!stream)
      return client.chat.completions.create({
        model: "m",
        messages: [{ role: "user", content: "hello there" }],
      });
    const chunks = await client.chat.completions.create({
      model: "m",
      messages: [{ role: "user", content: "hello there" }],
      stream: true,
    });
    let text = "";
    for await (const part of chunks) text += part.choices[0]?.delta.content ?? "";
    if (text !== "ok!") throw new Error(`streamed ${text}`);
    return text;
  };
  const figures: Record<string, Record<string, { cpuMsPerCall: number[]; callsPerSecond: number[] }>> = {};
  try {
    for (const client of Object.values(clients)) await runConcurrent(500, 16, () => call(client, false));
    for (let round = 0; round < rounds; round++) {
      for (const [label, concurrency, stream] of [
        ["concurrency 1", 1, false],
        ["concurrency 16", 16, false],
        ["streamed, concurrency 16", 16, true],
      ] as const) {
        for (const [name, client] of Object.entries(clients)) {
          const cpu = process.cpuUsage();
          const result = await runConcurrent(calls, concurrency, () => call(client, stream));
          const used = process.cpuUsage(cpu);
          if (result.errors > 0) throw new Error(`${result.errors} calls failed (${name})`);
          const key = label;
          figures[key] ??= {};
          figures[key][name] ??= { cpuMsPerCall: [], callsPerSecond: [] };
          figures[key][name].cpuMsPerCall.push((used.user + used.system) / 1000 / calls);
          figures[key][name].callsPerSecond.push((calls / result.wallMs) * 1000);
        }
      }
    }
  } finally {
    child.kill();
  }
  const result: Record<string, unknown> = {};
  for (const [key, byClient] of Object.entries(figures)) {
    const row: Record<string, unknown> = {};
    for (const [name, samples] of Object.entries(byClient)) {
      row[name] = {
        cpuMsPerCall: summarize(samples.cpuMsPerCall).p50,
        callsPerSecond: summarize(samples.callsPerSecond).p50,
      };
      console.log(
        `${key.padEnd(25)} ${name.padEnd(20)} CPU ${summarize(samples.cpuMsPerCall).p50.toFixed(3)} ms/call, ` +
          `${summarize(samples.callsPerSecond).p50.toFixed(0)} calls/s (median of ${rounds})`,
      );
    }
    result[key] = row;
  }
  writeResult("provider-transport", { calls, rounds, ...result });
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  await run();
  process.exit(0);
}
