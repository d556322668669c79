import pg from "pg";
import type { Logger } from "pino";

type Handler = () => void;

/**
 * LISTEN on one dedicated connection (a pooled one would be handed back and lose its LISTENs).
 * After the database restarts the connection is re-opened with backoff and every channel is
 * LISTENed again; handlers are then called once, because notifications sent while the
 * connection was down are lost and waiters must re-check.
 */
export class PgListener {
  readonly #handlers = new Map<string, Set<Handler>>();
  #client: pg.Client | undefined;
  #connecting: Promise<void> | undefined;
  #retryTimer: NodeJS.Timeout | undefined;
  #retryDelayMs = 250;
  #closed = false;

  constructor(
    private readonly connectionString: string,
    private readonly log: Logger,
  ) {}

  async listen(channel: string, handler: Handler): Promise<() => Promise<void>> {
    let set = this.#handlers.get(channel);
    const isNewChannel = set === undefined;
    if (!set) {
      set = new Set();
      this.#handlers.set(channel, set);
    }
    set.add(handler);
    if (!this.#client) await this.#connect();
    else if (isNewChannel) await this.#client.query(`LISTEN ${pg.escapeIdentifier(channel)}`).catch(() => undefined);
    return async () => {
      set.delete(handler);
      if (set.size > 0 || this.#handlers.get(channel) !== set) return;
      this.#handlers.delete(channel);
      await this.#client?.query(`UNLISTEN ${pg.escapeIdentifier(channel)}`).catch(() => undefined);
    };
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#retryTimer);
    const client = this.#client;
    this.#client = undefined;
    await client?.end().catch(() => undefined);
  }

  #connect(): Promise<void> {
    this.#connecting ??= this.#open().finally(() => {
      this.#connecting = undefined;
    });
    return this.#connecting;
  }

  async #open(): Promise<void> {
    if (this.#closed) return;
    const client = new pg.Client({ connectionString: this.connectionString, connectionTimeoutMillis: 5000 });
    let lost = false;
    const onLost = (err?: Error) => {
      if (lost) return;
      lost = true;
      if (this.#client === client) this.#client = undefined;
      client.removeAllListeners("notification");
      void client.end().catch(() => undefined);
      if (this.#closed) return;
      this.log.warn({ err }, "db_listener_disconnected");
      this.#scheduleReconnect();
    };
    client.on("error", onLost);
    client.on("end", () => onLost());
    client.on("notification", (msg) => this.#dispatch(msg.channel));
    try {
      await client.connect();
      for (const channel of this.#handlers.keys()) await client.query(`LISTEN ${pg.escapeIdentifier(channel)}`);
    } catch (err) {
      onLost(err as Error);
      return;
    }
    if (this.#closed) {
      await client.end().catch(() => undefined);
      return;
    }
    const wasRetrying = this.#retryDelayMs > 250;
    this.#client = client;
    this.#retryDelayMs = 250;
    if (wasRetrying) {
      this.log.info({ channels: [...this.#handlers.keys()] }, "db_listener_reconnected");
      for (const channel of this.#handlers.keys()) this.#dispatch(channel);
    }
  }

  #scheduleReconnect(): void {
    clearTimeout(this.#retryTimer);
    const delay = this.#retryDelayMs * (0.75 + Math.random() * 0.5);
    this.#retryDelayMs = Math.min(this.#retryDelayMs * 2, 5000);
    this.#retryTimer = setTimeout(() => void this.#connect(), delay);
    this.#retryTimer.unref();
  }

  #dispatch(channel: string): void {
    for (const handler of this.#handlers.get(channel) ?? []) {
      try {
        handler();
      } catch (err) {
        this.log.error({ err, channel }, "db_listener_handler_failed");
      }
    }
  }
}
