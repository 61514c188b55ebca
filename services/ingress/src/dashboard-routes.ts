import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { RuntimeError } from "@agent-runtime/contracts";
import type { FastifyInstance } from "fastify";
import type pg from "pg";
import { z } from "zod";
import { DASHBOARD_HTML, DASHBOARD_SCRIPT } from "./dashboard.js";
import { requireScope } from "./keys.js";
import type { RouteDeps } from "./route-deps.js";
import { dashboardStats, RANGES, type StatsRange } from "./stats-query.js";
import { statsSeriesView } from "./stats-view.js";

export const SeriesQuery = z.object({
  range: z.enum(Object.keys(RANGES) as [StatsRange, ...StatsRange[]]).default("1h"),
  tenant: z.string().min(1).max(200).optional(),
});

/** uPlot's script and stylesheet, from the installed package (bundled with ingress, no CDN). */
function uplotAssets(): { script: string; css: string } {
  const dist = dirname(createRequire(import.meta.url).resolve("uplot"));
  return {
    script: readFileSync(join(dist, "uPlot.iife.min.js"), "utf8"),
    css: readFileSync(join(dist, "uPlot.min.css"), "utf8"),
  };
}

/**
 * `GET /dashboard` (page, script, uPlot) and `GET /v1/stats/series` (what the page draws).
 * A key sees its own tenant; an admin key may pass `tenant` (a name or `*` for all) and is
 * given the list of tenants to pick from.
 */
export function registerDashboardRoutes(
  app: FastifyInstance,
  deps: Pick<RouteDeps, "authenticate">,
  pool: pg.Pool,
): void {
  const uplot = uplotAssets();
  const cached = "public, max-age=3600";
  app.get("/dashboard", async (_request, reply) =>
    reply.header("cache-control", "no-cache").type("text/html; charset=utf-8").send(DASHBOARD_HTML),
  );
  app.get("/dashboard/app.js", async (_request, reply) =>
    reply.header("cache-control", "no-cache").type("text/javascript; charset=utf-8").send(DASHBOARD_SCRIPT),
  );
  app.get("/dashboard/uplot.js", async (_request, reply) =>
    reply.header("cache-control", cached).type("text/javascript; charset=utf-8").send(uplot.script),
  );
  app.get("/dashboard/uplot.css", async (_request, reply) =>
    reply.header("cache-control", cached).type("text/css; charset=utf-8").send(uplot.css),
  );
  app.get("/v1/stats/series", async (request, reply) => {
    const key = await deps.authenticate(request, "runs");
    const parsed = SeriesQuery.safeParse(request.query);
    if (!parsed.success) {
      const fields = parsed.error.issues.map(
        (issue) => `${issue.path.join(".") || "query"}: ${issue.message}`,
      );
      throw new RuntimeError("validation", `invalid query: ${fields.join("; ")}`, { retryable: false });
    }
    const query = parsed.data;
    const admin = key.scopes.includes("admin");
    let tenant: string | undefined = key.tenant;
    if (query.tenant !== undefined && query.tenant !== key.tenant) {
      requireScope(key, "admin");
      tenant = query.tenant === "*" ? undefined : query.tenant;
    } else if (query.tenant === undefined && admin) tenant = undefined;
    const [stats, tenants] = await Promise.all([
      dashboardStats(pool, tenant, query.range),
      admin
        ? pool
            .query<{ id: string }>("SELECT id FROM tenants ORDER BY id LIMIT 1000")
            .then((result) => result.rows.map((row) => row.id))
        : undefined,
    ]);
    reply.header("cache-control", "no-store");
    return statsSeriesView(stats, tenants);
  });
}
