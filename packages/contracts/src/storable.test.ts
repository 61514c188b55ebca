import { describe, expect, it } from "vitest";
import { z } from "zod";
import {
  findUnstorable,
  MAX_JSON_DEPTH,
  refineStorable,
  StorableString,
  unstorableReason,
} from "./storable.js";

describe("unstorableReason", () => {
  it("accepts ordinary text, emoji and paired surrogates", () => {
    for (const text of ["", "hello", "naïve café", "😀 ok", "\ud83d\ude00", "tab\tand\nnewline", "\u0001"])
      expect(unstorableReason(text), JSON.stringify(text)).toBeUndefined();
  });

  it("refuses NUL and lone surrogates wherever they are", () => {
    for (const text of [
      "\u0000",
      "a\u0000b",
      "\ud800",
      "x\udc00",
      "\ud83d",
      "\ude00x",
      "\ud83d\ud83d\ude00\ud83d",
    ])
      expect(unstorableReason(text), JSON.stringify(text)).toMatch(/cannot be stored/);
  });
});

describe("StorableString", () => {
  it("is a string schema whose issue names the reason", () => {
    expect(StorableString.parse("fine")).toBe("fine");
    const result = StorableString.safeParse("bad\u0000");
    expect(result.success).toBe(false);
    expect(result.error?.issues[0]?.message).toMatch(/NUL/);
  });
});

describe("findUnstorable", () => {
  it("names the path of the first bad string, key or level", () => {
    expect(findUnstorable({ messages: [{ role: "user", content: "fine" }] })).toBeUndefined();
    expect(findUnstorable({ messages: [{ role: "user", content: "\ud800" }] })).toEqual({
      path: "messages[0].content",
      message: expect.stringMatching(/surrogate/),
    });
    expect(
      findUnstorable({ messages: [{ role: "user", content: [{ type: "text", text: "a\u0000" }] }] })?.path,
    ).toBe("messages[0].content[0].text");
    expect(findUnstorable({ metadata: { "k\u0000": "v" } })).toEqual({
      path: "metadata.k\ufffd",
      message: expect.stringMatching(/^field name contains a NUL/),
    });
    expect(findUnstorable(["\u0000"])?.path).toBe("[0]");
    expect(findUnstorable("\u0000")?.path).toBe("");
    expect(findUnstorable([1, true, null, { a: 2.5 }])).toBeUndefined();
  });

  it("refuses nesting past the limit without walking it", () => {
    let deep: unknown = "leaf";
    for (let level = 0; level < 100_000; level++) deep = [deep];
    expect(findUnstorable({ data: deep })?.message).toMatch(
      new RegExp(`nested more than ${MAX_JSON_DEPTH} levels`),
    );
    let ok: unknown = "leaf";
    for (let level = 0; level < MAX_JSON_DEPTH; level++) ok = [ok];
    expect(findUnstorable(ok)).toBeUndefined();
    expect(findUnstorable([ok])?.message).toMatch(/nested/);
    expect(findUnstorable(ok, { maxDepth: 3 })?.path).toBe("[0][0][0]");
  });
});

describe("refineStorable", () => {
  it("puts the issue at the bad string's path", () => {
    const schema = z.object({ data: z.unknown() }).superRefine(refineStorable);
    expect(schema.safeParse({ data: { list: ["ok", "no\u0000"] } }).error?.issues[0]).toMatchObject({
      path: ["data", "list", 1],
      message: expect.stringMatching(/NUL/),
    });
    expect(schema.safeParse({ data: { list: ["ok"] } }).success).toBe(true);
  });
});
