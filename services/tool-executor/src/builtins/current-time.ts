import { defineTool } from "@agent-runtime/tools";
import { z } from "zod";

export const currentTime = defineTool({
  name: "current_time",
  description: "The current date and time, in UTC or in an IANA time zone such as Europe/Paris.",
  input: z.object({ timezone: z.string().max(64).optional().describe("IANA time zone, default UTC") }),
  output: z.object({ iso: z.string(), timezone: z.string(), local: z.string(), unix: z.number() }),
  options: { timeoutMs: 1000, maxConcurrency: 256, personal: false },
  handler: ({ timezone }) => {
    const zone = timezone ?? "UTC";
    const now = new Date();
    let local: string;
    try {
      local = now.toLocaleString("en-GB", { timeZone: zone, dateStyle: "full", timeStyle: "long" });
    } catch {
      throw new RangeError(`unknown time zone "${zone}"`);
    }
    return { iso: now.toISOString(), timezone: zone, local, unix: Math.floor(now.getTime() / 1000) };
  },
});
