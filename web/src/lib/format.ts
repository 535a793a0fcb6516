// What the page computes without a browser: formatting and reading API bodies. Tested in
// web/test/ under Node; main.ts puts the results into the document.

/** `1.5 MB` */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

/** `3 d 4 h`, `5 h 2 min`, `42 s`: the two largest units. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const parts: Array<[number, string]> = [
    [Math.floor(s / 86400), 'd'],
    [Math.floor((s % 86400) / 3600), 'h'],
    [Math.floor((s % 3600) / 60), 'min'],
    [s % 60, 's'],
  ];
  const first = parts.findIndex(([n]) => n > 0);
  if (first < 0) return '0 s';
  return parts
    .slice(first, first + 2)
    .filter(([n]) => n > 0)
    .map(([n, u]) => `${n} ${u}`)
    .join(' ');
}

/** A word's time as `m:ss.cc`. */
export function formatTime(seconds: number): string {
  const m = Math.floor(seconds / 60);
  const s = seconds - m * 60;
  return `${m}:${s.toFixed(2).padStart(5, '0')}`;
}

/** One word of a transcript with its times (s) and confidence (0..1, when asked for). */
export interface Word {
  word: string;
  start: number;
  end: number;
  confidence?: number;
}

/** A finished recognition's text and words, read from IBM's `GET /v1/recognitions/{id}` body. */
export function transcriptOf(body: unknown): { text: string; words: Word[] } {
  const text: string[] = [];
  const words: Word[] = [];
  const outer = (body as { results?: Array<{ results?: unknown[] }> }).results ?? [];
  for (const batch of outer) {
    for (const result of (batch.results ?? []) as Array<{ alternatives?: Array<Record<string, unknown>> }>) {
      const best = result.alternatives?.[0];
      if (!best) continue;
      if (typeof best.transcript === 'string') text.push(best.transcript.trim());
      const stamps = (best.timestamps ?? []) as Array<[string, number, number]>;
      const confidences = (best.word_confidence ?? []) as Array<[string, number]>;
      stamps.forEach(([word, start, end], i) => {
        const c = confidences[i];
        words.push({ word, start, end, ...(c && c[0] === word ? { confidence: c[1] } : {}) });
      });
    }
  }
  return { text: text.join(' '), words };
}

/** How sure the model was of a word, as a class name the style sheet colours. */
export function confidenceClass(confidence: number | undefined): string {
  if (confidence === undefined) return 'c-unknown';
  return confidence >= 0.8 ? 'c-high' : confidence >= 0.5 ? 'c-mid' : 'c-low';
}

/**
 * The subprotocols the page offers its live feed: the feed's own and the key as a token
 * (base64url: a token may not hold every character a key may), since a browser cannot
 * send an Authorization header with a WebSocket.
 */
export function liveProtocols(key: string | undefined): string[] {
  if (!key) return ['earshot.live.v1'];
  const bytes = new TextEncoder().encode(key);
  let binary = '';
  for (const b of bytes) binary += String.fromCharCode(b);
  const token = btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  return ['earshot.live.v1', `key.${token}`];
}

/** The upload URL for a file and the chosen options (IBM's recognition parameters). */
export function uploadUrl(options: { language: string; wordConfidence: boolean; callbackUrl?: string; userToken?: string }): string {
  const query = new URLSearchParams({ timestamps: 'true', word_confidence: String(options.wordConfidence) });
  if (options.language) query.set('language', options.language);
  if (options.callbackUrl) query.set('callback_url', options.callbackUrl);
  if (options.userToken) query.set('user_token', options.userToken);
  return `/v1/recognitions?${query}`;
}

/** A file's name for a download of job `id` in `format`. */
export function downloadName(id: string, format: string): string {
  return `earshot-${id.slice(0, 8)}.${format}`;
}
