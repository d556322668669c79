/** Where a command writes. Injected so tests run commands in-process and read what they printed. */
export interface CliIo {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
  /** True when stdout is a terminal: progress redraws one line instead of printing many. */
  isTTY: boolean;
}

export function processIo(): CliIo {
  return { stdout: process.stdout, stderr: process.stderr, isTTY: process.stdout.isTTY };
}
