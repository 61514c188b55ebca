import { describe, expect, it } from "vitest";
import { BatchedWrites } from "./batched-writes.js";

interface Entry {
  key: string;
  value: string;
}

/** A writer that records each write's entries and answers with their values upper-cased. */
function recorder(options: { refuse?: string } = {}) {
  const writes: string[][] = [];
  const batched = new BatchedWrites<Entry, string>({
    write: async (entries) => {
      writes.push(entries.map((entry) => entry.value));
      await new Promise((resolve) => setTimeout(resolve, 5));
      if (options.refuse && entries.some((entry) => entry.value === options.refuse))
        throw Object.assign(new Error(`refused ${options.refuse}`), { data: true });
      return entries.map((entry) => entry.value.toUpperCase());
    },
    keyOf: (entry) => entry.key,
    isDataError: (error) => (error as { data?: boolean }).data === true,
    maxBatch: 3,
  });
  return { batched, writes };
}

describe("batched writes", () => {
  it("writes entries added at once together, one per key and at most maxBatch, each key in order", async () => {
    const { batched, writes } = recorder();
    const results = await Promise.all(
      [
        { key: "a", value: "a1" },
        { key: "b", value: "b1" },
        { key: "a", value: "a2" },
        { key: "c", value: "c1" },
        { key: "d", value: "d1" },
      ].map((entry) => batched.add(entry)),
    );
    expect(results).toEqual(["A1", "B1", "A2", "C1", "D1"]);
    expect(writes).toEqual([
      ["a1", "b1", "c1"],
      ["a2", "d1"],
    ]);
    expect(batched.writes).toBe(2);
  });

  it("gathers while a batch is written: the entries that came meanwhile share the next", async () => {
    const { batched, writes } = recorder();
    const first = batched.add({ key: "a", value: "a1" });
    await new Promise((resolve) => setTimeout(resolve, 1));
    const later = [batched.add({ key: "b", value: "b1" }), batched.add({ key: "c", value: "c1" })];
    await Promise.all([first, ...later]);
    expect(writes).toEqual([["a1"], ["b1", "c1"]]);
  });

  it("fails only the entry whose data is refused, and every entry on any other error", async () => {
    const refusing = recorder({ refuse: "bad" });
    const settled = await Promise.allSettled([
      refusing.batched.add({ key: "a", value: "ok1" }),
      refusing.batched.add({ key: "b", value: "bad" }),
      refusing.batched.add({ key: "c", value: "ok2" }),
    ]);
    expect(settled.map((result) => result.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
    expect(refusing.writes).toEqual([["ok1", "bad", "ok2"], ["ok1"], ["bad"], ["ok2"]]);

    const down = new BatchedWrites<Entry, string>({
      write: async () => {
        throw new Error("store unreachable");
      },
      keyOf: (entry) => entry.key,
      isDataError: () => false,
    });
    const failed = await Promise.allSettled([
      down.add({ key: "a", value: "x" }),
      down.add({ key: "b", value: "y" }),
    ]);
    expect(failed.map((result) => result.status)).toEqual(["rejected", "rejected"]);
    expect(down.writes).toBe(1);
  });

  it("a gathering entry waits until one is due, which takes it along, or until its own time is up", async () => {
    const { batched, writes } = recorder();
    let waited = false;
    const gathering = batched.add({ key: "a", value: "a1" }, 60_000).then((result) => {
      waited = true;
      return result;
    });
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(waited).toBe(false);
    expect(writes).toEqual([]);
    await batched.add({ key: "b", value: "b1" });
    expect(await gathering).toBe("A1");
    expect(writes).toEqual([["a1", "b1"]]);

    expect(await batched.add({ key: "c", value: "c1" }, 20)).toBe("C1");
    expect(writes).toEqual([["a1", "b1"], ["c1"]]);
  });
});
