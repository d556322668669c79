export type CheckStatus = "ok" | "fail" | "skip";

/** One line of `fleet doctor`: what was checked, what was seen, and what to do when it failed. */
export interface CheckResult {
  name: string;
  status: CheckStatus;
  detail: string;
  fix?: string;
}

export const ok = (name: string, detail: string): CheckResult => ({ name, status: "ok", detail });
export const fail = (name: string, detail: string, fix: string): CheckResult => ({ name, status: "fail", detail, fix });
export const skip = (name: string, detail: string): CheckResult => ({ name, status: "skip", detail });
