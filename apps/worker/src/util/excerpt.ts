/** Bodies in logs and error details are cut, so a 5 MB HTML error page cannot flood the log. */
export function excerpt(text: string, max = 500): string {
  const flat = text.replace(/\s+/g, " ").trim();
  return flat.length > max ? `${flat.slice(0, max)}…` : flat;
}
