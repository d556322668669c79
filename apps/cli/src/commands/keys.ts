import { ClientName } from "@fleet/contract";
import type { ApiKeyView } from "@fleet/contract";
import type { Command, CommandContext } from "../command.js";
import { formatAge } from "../format/duration.js";
import { formatTable } from "../format/table.js";
import { UsageError } from "../usage-error.js";

const USAGE = "fleet keys create NAME | fleet keys list | fleet keys revoke PREFIX|ID  [--json]";

function keysTable(keys: readonly ApiKeyView[], now: Date = new Date()): string {
  const rows = keys.map((k) => [
    k.prefix,
    k.client_name,
    k.bootstrap ? "PUBLIC_API_KEYS" : "fleet keys create",
    formatAge(k.created_at, now),
    formatAge(k.last_used_at, now),
    k.revoked_at === null ? "-" : `revoked ${formatAge(k.revoked_at, now)}`,
  ]);
  return formatTable(["PREFIX", "CLIENT", "FROM", "CREATED", "LAST USED", "REVOKED"], rows);
}

async function create({ client, io, json }: CommandContext, name: string): Promise<number> {
  if (!ClientName.safeParse(name).success) throw new UsageError("NAME must be 1-100 printable ASCII characters");
  const created = await client.call("createApiKey", { body: { name } });
  if (json) {
    io.stdout.write(JSON.stringify(created, null, 2) + "\n");
    return 0;
  }
  io.stdout.write(
    [
      `client "${created.api_key.client_name}" created (client id ${created.api_key.client_id})`,
      "",
      "Shown only now; the orchestrator keeps neither of them in clear. Store them safely.",
      `  API key (send as X-API-Key):                 ${created.key}`,
      `  webhook secret (verifies x-fleet-signature): ${created.webhook_secret}`,
      "",
      `Revoke with: fleet keys revoke ${created.api_key.prefix}`,
      "",
    ].join("\n"),
  );
  return 0;
}

/** Operators' API keys: one client per key, managed without restarting the orchestrator. */
export const keysCommand: Command = {
  name: "keys",
  summary: "Create, list and revoke clients' API keys",
  usage: USAGE,
  options: {},
  async run(ctx) {
    const [sub, arg, ...extra] = ctx.positionals;
    const { client, io, json } = ctx;
    if (extra.length > 0) throw new UsageError(`usage: ${USAGE}`);
    switch (sub) {
      case "create":
        if (arg === undefined) throw new UsageError("usage: fleet keys create NAME");
        return create(ctx, arg);
      case "list": {
        if (arg !== undefined) throw new UsageError("usage: fleet keys list");
        const { keys } = await client.call("listApiKeys");
        if (json) io.stdout.write(JSON.stringify(keys, null, 2) + "\n");
        else io.stdout.write(keys.length === 0 ? "No API keys yet: fleet keys create NAME\n" : keysTable(keys));
        return 0;
      }
      case "revoke": {
        if (arg === undefined) throw new UsageError("usage: fleet keys revoke PREFIX|ID");
        const { api_key: key } = await client.call("revokeApiKey", { params: { key: arg } });
        io.stdout.write(
          json
            ? JSON.stringify(key, null, 2) + "\n"
            : `key ${key.prefix} of client "${key.client_name}" revoked; requests with it are refused within the orchestrator's AUTH_CACHE_SEC\n` +
                (key.bootstrap ? "  it came from PUBLIC_API_KEYS: remove it there too\n" : ""),
        );
        return 0;
      }
      default:
        throw new UsageError(`usage: ${USAGE}`);
    }
  },
};
