import type { B2Settings } from "../config.js";
import type { Logger } from "../logger.js";
import { JobAbortedError, JobError, abortReasonOf } from "../errors/job-error.js";
import { backoffDelay } from "../util/backoff.js";
import { sleep } from "../util/sleep.js";
import { authorizeAccount, type B2Account } from "./b2-account.js";
import { type B2CallError, toB2CallError } from "./b2-call-error.js";

/** B2 tokens live 24 h; renew an hour early rather than fail an upload at the boundary. */
const AUTH_MAX_AGE_MS = 23 * 3600_000;
/** B2 asks for up to five fresh upload URLs before giving up. */
const ATTEMPTS = 5;

/** The cached authorization and the retry policy every B2 step of an upload runs under. */
export interface B2Session {
  readonly log: Logger;
  readonly userAgent: string;
  /** The cached authorization, renewed when old or refused; concurrent callers share one renewal. */
  getAuth(signal: AbortSignal): Promise<B2Account>;
  /**
   * Runs one step with the retry policy. `step` gets the current authorization; a refused account
   * token renews it, a refused upload token just retries (the step asks for a new URL itself).
   * Anything not retryable, or the last attempt's failure, becomes an upload JobError.
   */
  withRetries<T>(what: string, signal: AbortSignal, step: (a: B2Account, attempt: number) => Promise<T>): Promise<T>;
}

export function createB2Session(opts: { settings: B2Settings; log: Logger; retryBaseMs: number; userAgent: string }): B2Session {
  const { log, retryBaseMs, userAgent } = opts;
  let auth: B2Account | null = null;
  let authorizing: Promise<B2Account> | null = null;

  async function getAuth(signal: AbortSignal): Promise<B2Account> {
    if (auth && Date.now() - auth.at < AUTH_MAX_AGE_MS) return auth;
    const stale = auth;
    authorizing ??= authorizeAccount(opts.settings, userAgent, signal).finally(() => {
      authorizing = null;
    });
    const fresh = await authorizing;
    if (auth === stale) auth = fresh;
    return auth ?? fresh;
  }

  async function withRetries<T>(what: string, signal: AbortSignal, step: (a: B2Account, attempt: number) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      if (signal.aborted) throw new JobAbortedError(abortReasonOf(signal));
      let a: B2Account;
      try {
        a = await getAuth(signal);
      } catch (err) {
        if (signal.aborted) throw new JobAbortedError(abortReasonOf(signal));
        const e = toB2CallError(err, "b2_authorize_account");
        if (!e.retryable || attempt >= ATTEMPTS) throw uploadError(what, e);
        await sleep(e.delayMs(backoffDelay(attempt, retryBaseMs, 30_000)), signal);
        continue;
      }
      try {
        return await step(a, attempt);
      } catch (err) {
        if (signal.aborted) throw new JobAbortedError(abortReasonOf(signal));
        if (err instanceof JobError || err instanceof JobAbortedError) throw err;
        const e = toB2CallError(err, what);
        if (e.isAccountTokenRejected && auth === a) auth = null;
        log.warn({ op: e.op, statusCode: e.statusCode, err: e, attempt, attempts: ATTEMPTS }, "b2_call_failed");
        if (!e.retryable || attempt >= ATTEMPTS) throw uploadError(what, e);
        if (!e.tokenRejected) await sleep(e.delayMs(backoffDelay(attempt, retryBaseMs, 30_000)), signal);
      }
    }
  }

  return { log, userAgent, getAuth, withRetries };
}

/** One B2 call, its failure turned into a B2CallError named after the call. */
export async function call<T>(op: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw toB2CallError(err, op);
  }
}

function uploadError(what: string, e: B2CallError): JobError {
  const message = e.isConfiguration ? `B2 ${what} failed: configuration: ${e.message}` : `B2 ${what} failed: ${e.message}`;
  return JobError.processing("upload", message, e.retryable, {
    op: e.op,
    status_code: e.statusCode,
    b2_code: e.code,
  });
}
