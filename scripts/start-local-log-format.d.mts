export function formatLogLine(raw: string, opts?: { verbose?: boolean; color?: boolean }): string | null;
