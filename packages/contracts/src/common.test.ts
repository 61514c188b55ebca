import { describe, expect, it } from "vitest";
import { ID_PATTERN, idPattern, TENANT_ID_PATTERN, TenantId } from "./common.js";

describe("tenant ids", () => {
  it("are 1-64 letters, digits, '_' or '-'", () => {
    for (const id of ["acme", "a", "Tenant_1-x", "x".repeat(64)]) {
      expect(TENANT_ID_PATTERN.test(id)).toBe(true);
      expect(TenantId.parse(id)).toBe(id);
    }
    for (const id of ["", "x".repeat(65), "a.b", "a:b", "a b", "ä", "a/b"]) {
      expect(TENANT_ID_PATTERN.test(id)).toBe(false);
      expect(TenantId.safeParse(id).error?.issues[0]?.message).toBe(
        "tenant ids are 1-64 letters, digits, '_' and '-'",
      );
    }
  });
});

describe("caller ids", () => {
  it("are 1-200 letters, digits, '_', '.', ':' or '-'", () => {
    for (const id of ["r1", "run:1.2_3-4", "x".repeat(200)]) expect(ID_PATTERN.test(id)).toBe(true);
    for (const id of ["", "x".repeat(201), "a b", "a/b", "a\nb", "é"])
      expect(ID_PATTERN.test(id)).toBe(false);
  });

  it("take another length limit over the same alphabet", () => {
    const memoryId = idPattern(100);
    expect(memoryId.test("m:1".padEnd(100, "x"))).toBe(true);
    expect(memoryId.test("m:1".padEnd(101, "x"))).toBe(false);
    expect(memoryId.source).toBe("^[A-Za-z0-9_.:-]{1,100}$");
    expect(() => idPattern(0)).toThrow(RangeError);
    expect(() => idPattern(1.5)).toThrow("positive integer");
  });
});
