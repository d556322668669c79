import { z } from "zod";
import { IsoDateTime, WorkerId } from "./common.js";

/** Generated public API keys start with this; the part up to the second `_` is the shown prefix. */
export const API_KEY_PREFIX = "fk_";
/** Per-worker tokens start with this (sent as `Authorization: Bearer fw_...`). */
export const WORKER_TOKEN_PREFIX = "fw_";

export const ClientName = z
  .string()
  .min(1)
  .max(100)
  .regex(/^[\x20-\x7e]+$/, "name must be printable ASCII");

export const CreateApiKeyRequest = z.object({ name: ClientName });
export type CreateApiKeyRequest = z.infer<typeof CreateApiKeyRequest>;

export const ApiKeyView = z.object({
  id: z.uuid(),
  /** Shown for identification; never enough to authenticate. */
  prefix: z.string(),
  client_id: z.uuid(),
  client_name: z.string(),
  /** Created from PUBLIC_API_KEYS at start rather than by `fleet keys create`. */
  bootstrap: z.boolean(),
  created_at: IsoDateTime,
  revoked_at: IsoDateTime.nullable(),
  last_used_at: IsoDateTime.nullable(),
});
export type ApiKeyView = z.infer<typeof ApiKeyView>;

/** The only response that ever carries the key and the webhook secret: they are stored hashed or not shown again. */
export const CreateApiKeyResponse = z.object({
  key: z.string(),
  webhook_secret: z.string(),
  api_key: ApiKeyView,
});
export type CreateApiKeyResponse = z.infer<typeof CreateApiKeyResponse>;

export const ListApiKeysResponse = z.object({ keys: z.array(ApiKeyView) });
export type ListApiKeysResponse = z.infer<typeof ListApiKeysResponse>;

/** Prefixes and ids are printable ASCII; anything else could never match and must not reach SQL. */
const CredentialRef = z.string().regex(/^[\x21-\x7e]{1,100}$/, "must be 1-100 printable ASCII characters");

/** A key's prefix (`fk_...`, `sha256:...`) or its id. */
export const ApiKeyRefParams = z.object({ key: CredentialRef });

export const RevokeApiKeyResponse = z.object({ api_key: ApiKeyView });
export type RevokeApiKeyResponse = z.infer<typeof RevokeApiKeyResponse>;

export const WorkerTokenView = z.object({
  id: z.uuid(),
  worker_id: WorkerId,
  prefix: z.string(),
  created_at: IsoDateTime,
  revoked_at: IsoDateTime.nullable(),
  last_used_at: IsoDateTime.nullable(),
});
export type WorkerTokenView = z.infer<typeof WorkerTokenView>;

export const EnrollWorkerResponse = z.object({ token: z.string(), worker_token: WorkerTokenView });
export type EnrollWorkerResponse = z.infer<typeof EnrollWorkerResponse>;

/** Without a prefix every token of the worker is revoked. */
export const RevokeWorkerTokensRequest = z.object({ prefix: CredentialRef.optional() });
export type RevokeWorkerTokensRequest = z.infer<typeof RevokeWorkerTokensRequest>;

export const RevokeWorkerTokensResponse = z.object({ revoked: z.array(WorkerTokenView) });
export type RevokeWorkerTokensResponse = z.infer<typeof RevokeWorkerTokensResponse>;
