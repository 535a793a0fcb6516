// Shared by the Azure unit tests: jobs and transcripts as the job store keeps them, and a
// web hook registry on a temporary LMDB store with a scripted challenge.
import { WebhookRegistry, type ChallengeAnswer, type TargetCheck } from '../../src/azure/webhooks.js';
import { Outbox } from '../../src/delivery/outbox.js';
import { parseAudioMediaType } from '../../src/engine/media-type.js';
import type { Job } from '../../src/jobs/job.js';
import type { StoredTranscript } from '../../src/jobs/job-store.js';
import { createLogger } from '../../src/log.js';
import { StateDatabase } from '../../src/store/database.js';

export const t0 = Date.UTC(2024, 4, 1, 12, 0, 0, 250);

export function job(overrides: Partial<Job> = {}): Job {
  return {
    id: 'job-1',
    created: t0,
    updated: t0 + 5000,
    status: 'waiting',
    contentType: 'audio/wav',
    format: parseAudioMediaType('audio/wav'),
    audioBytes: 1000,
    model: 'en-US_BroadbandModel',
    options: { language: 'en' },
    output: { timestamps: true, wordConfidence: false },
    resultsTtlMs: 7 * 24 * 3600 * 1000,
    attempts: 0,
    warnings: [],
    ...overrides,
  };
}

export const transcript: StoredTranscript = {
  text: ' Hello, world. And so on.',
  language: 'en',
  durationMs: 11040,
  windows: 1,
  timings: {} as StoredTranscript['timings'],
  segments: [
    {
      start: 760,
      end: 2080,
      text: ' Hello, world.',
      confidence: 0.5643338123,
      noSpeechProb: 0.01,
      speakerTurnNext: false,
      words: [
        { text: ' Hello,', start: 760, end: 1520, confidence: 0.9 },
        { text: ' world.', start: 1520, end: 2080, confidence: 0.8 },
      ],
    },
    { start: 2080, end: 2500, text: ' ', confidence: 0.1, noSpeechProb: 0.9, speakerTurnNext: false, words: [] },
    {
      start: 3000,
      end: 4000,
      text: ' And so on.',
      confidence: 0.7,
      noSpeechProb: 0.01,
      speakerTurnNext: false,
      words: [{ text: ' And', start: 3000, end: 3300, confidence: 0.7 }],
    },
  ],
};

interface Teardown {
  testdir(): string;
  teardown(fn: () => unknown): void;
}

export interface RegistrySetup {
  db: StateDatabase;
  outbox: Outbox;
  registry: WebhookRegistry;
  /** Every challenge request made, in order. */
  challenges: Array<{ url: string; headers: Record<string, string>; body: string }>;
  /** What the next challenges answer (default: the token, 200). */
  answer: (url: URL) => Promise<ChallengeAnswer> | ChallengeAnswer;
  checked: string[];
  /** The registry's clock (ms); tests move it. */
  clock: number;
}

/** A registry on a fresh store; challenges answered by `setup.answer`, v2.1 targets always allowed unless `checkTarget` says otherwise. */
export function registrySetup(t: Teardown, checkTarget?: TargetCheck): RegistrySetup {
  const db = new StateDatabase(t.testdir());
  db.open();
  t.teardown(() => db.close());
  const outbox = new Outbox(db);
  const setup: RegistrySetup = {
    db,
    outbox,
    challenges: [],
    checked: [],
    clock: Date.parse('2026-01-01T00:00:00Z'),
    answer: (url) => ({ status: 200, body: url.searchParams.get('validationToken') ?? '' }),
    registry: undefined as unknown as WebhookRegistry,
  };
  setup.registry = new WebhookRegistry({
    db,
    outbox,
    log: createLogger({ level: 'error' }),
    now: () => setup.clock,
    challenge: async (url, headers, body) => {
      setup.challenges.push({ url, headers, body });
      return setup.answer(new URL(url));
    },
    checkTarget:
      checkTarget ??
      (async (url) => {
        setup.checked.push(url);
      }),
  });
  return setup;
}
