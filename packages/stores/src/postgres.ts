import pg from "pg";

export interface PostgresOptions {
  url: string;
  /** Schema that holds this service's tables; created when missing. */
  schema: string;
  max?: number;
  applicationName?: string;
}

const SCHEMA_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

/** A pool whose connections all use `search_path = <schema>`. */
export async function createPool(options: PostgresOptions): Promise<pg.Pool> {
  if (!SCHEMA_NAME.test(options.schema)) throw new RangeError(`invalid schema name "${options.schema}"`);
  const searchPath = `SET search_path TO "${options.schema}", public`;
  /** Sets the search path once per connection, before the pool hands it out (some servers ignore startup options). */
  class SchemaClient extends pg.Client {
    constructor(config?: string | pg.ClientConfig) {
      super(config);
      // a connection lost while the client is checked out (inside a transaction) fails the query in
      // flight; without a listener the same error would also be thrown as uncaught and end the process
      this.on("error", () => undefined);
    }

    override connect(): Promise<pg.Client>;
    override connect(callback: (error: Error) => void): void;
    override connect(callback?: (error: Error) => void): Promise<pg.Client> | undefined {
      const ready = super
        .connect()
        .then(() => super.query(searchPath))
        .then(() => this as pg.Client);
      if (!callback) return ready;
      ready.then(
        (client) => (callback as unknown as (error: null, client: pg.Client) => void)(null, client),
        (error: Error) => callback(error),
      );
      return undefined;
    }
  }
  const pool = new pg.Pool({
    Client: SchemaClient,
    connectionString: options.url,
    max: options.max ?? 10,
    application_name: options.applicationName ?? "agent-runtime",
    connectionTimeoutMillis: 5000,
    idleTimeoutMillis: 30_000,
  });
  pool.on("error", () => undefined);
  await pool
    .query(`CREATE SCHEMA IF NOT EXISTS "${options.schema}"`)
    .catch(async (error: { code?: string }) => {
      // two replicas racing to create the schema
      if (error.code !== "23505" && error.code !== "42P06") throw error;
    });
  return pool;
}

/** Runs `work` in a transaction on one connection: committed if it resolves, rolled back if it throws. */
export async function withTransaction<T>(
  pool: pg.Pool,
  work: (client: pg.PoolClient) => Promise<T>,
): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query("BEGIN");
    const result = await work(client);
    await client.query("COMMIT");
    return result;
  } catch (error) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
}

/**
 * Runs migrations once per schema even when replicas start together
 * (transaction-scoped advisory lock keyed by schema and owner).
 */
export async function migrate(pool: pg.Pool, owner: string, statements: readonly string[]): Promise<void> {
  await withTransaction(pool, async (client) => {
    await client.query("SELECT pg_advisory_xact_lock(hashtext(current_schema() || $1))", [owner]);
    for (const statement of statements) await client.query(statement);
  });
}
