// The one check of a --notify-url, apart from the notifier: the CLI parses flags without loading
// the notifier and its CloudEvents formatter (src/notify/format.ts), which `run` loads only when a
// URL is given (src/controller/safety-app.ts).

/** Refuses what cannot be a sink: notifications carry cluster details and go over HTTPS only. */
export function notifyUrlError(url: string): string | null {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return `"${url}" is not a URL`;
  }
  if (u.protocol !== 'https:') return `"${u.origin}": notifications go over https:// only`;
  return null;
}
