/**
 * Run event SSE against the orchestrator driver: a run whose row already says it finished while its
 * run-finished event is not stored yet (the row is written first) is replayed up to that event.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BOOTSTRAP_KEY, type Harness, parseSse, startHarness, until } from "./test-support/harness.js";
import { lastUserText, sleep } from "./test-support/orchestrator-driver.js";

let harness: Harness;

const http = (path: string, init: RequestInit = {}) => {
  const headers = new Headers(init.headers);
  headers.set("authorization", `Bearer ${BOOTSTRAP_KEY}`);
  if (init.body !== undefined) headers.set("content-type", "application/json");
  return fetch(`${harness.url}${path}`, { ...init, headers });
};

beforeAll(async () => {
  harness = await startHarness();
  harness.driver.setScript(async (run) => {
    run.emit({ type: "run-started", agent: run.request.agent, attempt: 1 });
    run.emit({ type: "delta", step: 0, content: "done", offset: 0 });
    if (lastUserText(run.request) === "late end") {
      // the row is finished first; its event follows a moment later
      Object.assign(run.record, { status: "completed", finishedAt: new Date().toISOString() });
      await sleep(600);
    }
    run.finish({ output: { role: "assistant", content: "done" } });
  });
});

afterAll(async () => {
  await harness?.stop();
});

describe("run events SSE", () => {
  it("replays a run recorded as finished up to its run-finished event, stored an instant later", async () => {
    const created = await http("/v1/runs", { method: "POST", body: JSON.stringify({ input: "late end" }) });
    const { id } = (await created.json()) as { id: string };
    await until(() => harness.driver.runs.get(id)?.record.status === "completed");
    const frames = parseSse(await (await http(`/v1/runs/${id}/events`)).text());
    expect(frames.map((frame) => frame.event)).toEqual(["run-started", "delta", "run-finished"]);
  });

  it("answers the events of a run accepted an instant ago instead of 404", async () => {
    const created = await http("/v1/runs", { method: "POST", body: JSON.stringify({ input: "quick" }) });
    const { id } = (await created.json()) as { id: string };
    const events = await http(`/v1/runs/${id}/events`);
    expect(events.status).toBe(200);
    expect(parseSse(await events.text()).at(-1)?.event).toBe("run-finished");
    const unknown = await http("/v1/runs/run_unknown/events");
    expect(unknown.status).toBe(404);
  });
});
