import { sql } from "drizzle-orm";
import { queryRows, type Executor } from "../db/client.js";

/** The queue tables whose statistics the hot statements' plans depend on. */
const QUEUE_TABLES = ["jobs", "buffer_jobs"] as const;

/** Below this many changes since the last ANALYZE a table is left to autovacuum. */
const MIN_CHANGES = 1000;

/**
 * Runs ANALYZE on a queue table that has more than doubled since its last one (and changed by at
 * least `MIN_CHANGES` rows), which only happens while the database is young: afterwards
 * autovacuum's own threshold (10 % of the table) comes first. It exists for a new deployment's
 * first minute. There PostgreSQL planned the prepared claim against an empty `buffer_jobs` and
 * reads the whole attempt table per claiming worker for the free-slot check until statistics
 * arrive, and autovacuum looks only once a minute (bench/FINDINGS.md F7). ANALYZE makes every
 * connection re-plan its prepared statements. Cheap: these tables are small when it runs, and
 * doubling means a handful of runs in a deployment's life. Answers the tables it analysed.
 */
export async function analyzeGrownTables(db: Executor): Promise<string[]> {
  const grown = await queryRows<{ relname: string }>(
    db,
    sql`select s.relname
          from pg_stat_user_tables s
          join pg_class c on c.oid = s.relid
         where s.schemaname = current_schema()
           and s.relname in (${sql.join(
             QUEUE_TABLES.map((t) => sql`${t}`),
             sql`, `,
           )})
           and s.n_mod_since_analyze >= ${MIN_CHANGES}
           and s.n_mod_since_analyze > greatest(c.reltuples, 0)`,
  );
  const tables = QUEUE_TABLES.filter((t) => grown.some((g) => g.relname === t));
  for (const table of tables) await db.execute(sql`analyze ${sql.identifier(table)}`);
  return tables;
}
