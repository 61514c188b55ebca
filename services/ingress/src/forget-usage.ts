import { randomUUID } from "node:crypto";
import type pg from "pg";
import { SLICE, TIERS } from "./stats-rollups.js";

/**
 * What is kept of a forgotten user's usage: the totals stay counted (the tenant's spend, its
 * quotas, the dashboard's rollups) under a name that no longer says who, `forgotten-<random>`, the
 * same for all of the user's rows so that they still add up as one user. One transaction; a user
 * with nothing recorded changes nothing. Usage of the user's that ingress has not written yet (at
 * most a second of it) is written under the user's id afterwards; forgetting again renames it.
 */
export async function anonymizeUserUsage(pool: pg.Pool, tenant: string, userId: string): Promise<number> {
  const alias = `forgotten-${randomUUID().replaceAll("-", "").slice(0, 16)}`;
  const client = await pool.connect();
  try {
    await client.query("BEGIN");
    let renamed =
      (
        await client.query("UPDATE usage_user_daily SET user_id = $3 WHERE tenant = $1 AND user_id = $2", [
          tenant,
          userId,
          alias,
        ])
      ).rowCount ?? 0;
    // a rollup's user rows are named `<tenant>/<user>`
    for (const { table } of Object.values(TIERS))
      renamed +=
        (
          await client.query(
            `UPDATE ${table} SET name = $3 WHERE tenant = $1 AND slice = ${SLICE.user} AND name = $2`,
            [tenant, `${tenant}/${userId}`, `${tenant}/${alias}`],
          )
        ).rowCount ?? 0;
    await client.query("COMMIT");
    return renamed;
  } catch (error) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
}
