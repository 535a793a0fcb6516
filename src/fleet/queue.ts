import { createReadStream, createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

import { jetstreamManager, type JsMsg } from '@nats-io/jetstream';
import { type KV, KvWatchInclude } from '@nats-io/kv';

import { AppError } from '../errors.js';
import { isFinished, type Job } from '../jobs/job.js';
import type { StoredTranscript } from '../jobs/job-store.js';
import { consumerName, type FleetBroker, type FleetHandles } from './broker.js';

/**
 * A lane is the class of model a job needs: `en` (English; any model serves it) or `multi`
 * (any other language, or detection: multilingual models only). Each lane is one subject
 * of the work-queue stream with one shared pull consumer, so a device only ever receives
 * jobs it can serve (docs/fleet.md, "Models").
 */
export type Lane = 'en' | 'multi';

export function jobLane(job: Pick<Job, 'options'>): Lane {
  const language = job.options.language;
  return language === undefined || language === 'en' || language.startsWith('en-') ? 'en' : 'multi';
}

/** The lanes a model serves: an English-only model `en`; a multilingual one both. */
export function modelLanes(model: { multilingual: boolean }): Lane[] {
  return model.multilingual ? ['en', 'multi'] : ['en'];
}

/** A job's state as the fleet stores it, with the bucket revision it was read at (compare-and-set). */
export interface FleetJob {
  job: Job;
  revision: number;
}

/** How long a snapshot of the job states waits for the bucket's next entry before it ends. */
const snapshotQuietMs = 5000;

/** Object names in the audio and results buckets. */
const audioObject = (id: string) => `${id}.audio`;
const resultObject = (id: string) => `${id}.result`;

/**
 * The fleet's shared queue on JetStream: submitting stores a job's audio (Object Store),
 * its state (key-value bucket) and its work message (work-queue stream), each acknowledged
 * by the broker before `submit` resolves; devices pull work messages (`pull`) and keep
 * their job's state with compare-and-set on the bucket revision, so that of two devices
 * that ever hold the same job (an ack wait lapsed under a live device) only one result is
 * ever recorded.
 */
export class FleetQueue {
  constructor(private readonly broker: FleetBroker) {}

  /** The broker's handles; ERR_FLEET_UNAVAILABLE while it cannot be reached. */
  private get handles(): FleetHandles {
    const handles = this.broker.connected;
    if (!handles) throw new AppError('ERR_FLEET_UNAVAILABLE', `The fleet's broker cannot be reached (${this.broker.state})`);
    return handles;
  }

  /**
   * Stores a new waiting job whose audio is the file at `audioPath`: the audio, then the
   * state (created: refused if the id exists), then the work message (its id is the
   * job's, so a retried publish is stored once), each acknowledged by the broker: the job
   * then survives the loss of this device. One after another, so that a state without its
   * work message (which another device's sweep would fail once it looks old:
   * `failLeftovers`) lasts one round trip. On failure, what was stored is removed (best
   * effort: the audio bucket's objects of unknown jobs are swept). Without `audioPath`: a
   * job whose audio the device that runs it downloads (`Job.source`), no object.
   */
  async submit(job: Job, audioPath?: string): Promise<number> {
    try {
      if (audioPath !== undefined) await this.putAudio(job.id, audioPath);
      return await this.enqueue(job);
    } catch (err) {
      await this.purge(job.id);
      throw fleetError(err, 'Could not store the job in the fleet');
    }
  }

  /** Stores a job's audio (the first step of `submit`). */
  async putAudio(id: string, audioPath: string): Promise<void> {
    await this.handles.audio.put({ name: audioObject(id) }, Readable.toWeb(createReadStream(audioPath)) as ReadableStream<Uint8Array>);
  }

  /**
   * Stores a job's state and then its work message (`submit` after the audio); undoes
   * nothing on failure: either may be stored then. Resolves to the state's revision.
   */
  async enqueue(job: Job): Promise<number> {
    const h = this.handles;
    const revision = await h.jobs.create(job.id, JSON.stringify(job));
    await h.js.publish(`${this.broker.layout.subjectPrefix}.${jobLane(job)}.${job.id}`, JSON.stringify({ id: job.id }), { msgID: job.id });
    return revision;
  }

  /** Removes what a submit stored of a job (its state and audio), best effort: a submit's undoing. */
  async purge(id: string): Promise<void> {
    const h = this.handles;
    await Promise.allSettled([h.audio.delete(audioObject(id)), h.jobs.purge(id)]);
  }

  /**
   * Whether the job's work message is in the stream: no device has run it to its end (or
   * acknowledged it). A failed read throws: never taken for "not queued".
   */
  async queued(job: Job): Promise<boolean> {
    const { stream, subjectPrefix } = this.broker.layout;
    const jsm = await jetstreamManager(this.handles.nc);
    return (await jsm.streams.getMessage(stream, { last_by_subj: `${subjectPrefix}.${jobLane(job)}.${job.id}` })) !== null;
  }

  /** The job's state, or undefined when there is none (never submitted, deleted, or expired). */
  async get(id: string): Promise<FleetJob | undefined> {
    const entry = await this.handles.jobs.get(id);
    if (entry?.operation !== 'PUT') return undefined;
    return { job: entry.json<Job>(), revision: entry.revision };
  }

  /** A finished job's transcript, or undefined. */
  async result(id: string): Promise<StoredTranscript | undefined> {
    // Bounded: an object deleted while it is read (the job deleted meanwhile) can leave the read waiting for chunks that are gone.
    const blob = await bounded(this.handles.audio.getBlob(resultObject(id)), resultReadMs, `Reading the result of job '${id}' from the fleet timed out`);
    return blob ? (JSON.parse(Buffer.from(blob).toString('utf8')) as StoredTranscript) : undefined;
  }

  /**
   * Writes `job` if its state is still at `revision` (nobody changed it since it was read);
   * resolves to the new revision, or undefined when it was changed or removed meanwhile
   * (nothing is written then). `result`, when given, is stored first.
   */
  async update(job: Job, revision: number, result?: StoredTranscript): Promise<number | undefined> {
    const h = this.handles;
    try {
      if (result) await h.audio.putBlob({ name: resultObject(job.id) }, Buffer.from(JSON.stringify(result)));
      return await h.jobs.update(job.id, JSON.stringify(job), revision);
    } catch (err) {
      if (isRevisionConflict(err)) return undefined;
      throw fleetError(err, 'Could not store the job state in the fleet');
    }
  }

  /**
   * Deletes a job that is not being processed, fleet-wide: its state (compare-and-set: a
   * device that starts it meanwhile wins, and the delete is ERR_JOB_BUSY), its audio and
   * result. A waiting job's work message stays in the stream: the device that receives it
   * finds no state and acknowledges it. Resolves to the job as it was.
   *
   * @throws AppError ERR_JOB_NOT_FOUND, ERR_JOB_BUSY, ERR_FLEET_UNAVAILABLE
   */
  async delete(id: string): Promise<Job> {
    for (;;) {
      const stored = await this.get(id);
      if (!stored) throw new AppError('ERR_JOB_NOT_FOUND', `The job ID '${id}' was not found`);
      if (stored.job.status === 'processing') {
        throw new AppError('ERR_JOB_BUSY', `Job '${id}' is currently being processed and cannot be deleted`);
      }
      if (await this.remove(stored)) return stored.job;
      // Changed since it was read (started, or finished): look again.
    }
  }

  /**
   * The newest jobs first, `limit` of them, read from the whole bucket (one read per job:
   * the bucket holds unexpired jobs only).
   */
  async newest(limit: number): Promise<Job[]> {
    const jobs = (await this.states()).map((s) => s.job);
    return jobs.sort((a, b) => b.created - a.created || (a.id < b.id ? 1 : -1)).slice(0, limit);
  }

  /**
   * Every job's state, read in one pass over the bucket (a watch of each key's last value,
   * ended at the last one: `delta` 0) rather than a request per key, which took a round
   * trip per job for every list and sweep.
   */
  private async states(): Promise<FleetJob[]> {
    const h = this.handles;
    if ((await h.jobs.status()).values === 0) return [];
    const watcher = await h.jobs.watch({ include: KvWatchInclude.LastValue });
    // Should the bucket have emptied since its status was read, the watch has nothing to
    // deliver and would wait for changes: a quiet watch ends.
    let quiet = setTimeout(() => watcher.stop(), snapshotQuietMs);
    const states: FleetJob[] = [];
    try {
      for await (const entry of watcher) {
        clearTimeout(quiet);
        if (entry.operation === 'PUT') states.push({ job: entry.json<Job>(), revision: entry.revision });
        if (!entry.delta) break;
        quiet = setTimeout(() => watcher.stop(), snapshotQuietMs);
      }
    } finally {
      clearTimeout(quiet);
      watcher.stop();
    }
    return states;
  }

  /**
   * Removes finished jobs whose results expired before `now` (their state, audio and
   * result), at most `limit` of them; returns how many. Any device may run it at any time:
   * each removal is a compare-and-set, so two devices sweeping remove each job once.
   */
  async sweep(now: number, limit = 100): Promise<number> {
    let removed = 0;
    for (const state of await this.states()) {
      if (removed >= limit) break;
      const { job } = state;
      if ((job.status !== 'completed' && job.status !== 'failed') || job.expiresAt === undefined || job.expiresAt > now) continue;
      if (await this.remove(state)) removed++;
    }
    return removed;
  }

  /**
   * Copies a finished job that a device ran alone (its state, and its result first) into
   * the fleet, so that GET on any device finds it: the state is created, or replaces the
   * device's held copy of it (`hold`); a job already there otherwise is left as it is, so
   * nothing is copied twice. Whether it was copied.
   */
  async copy(job: Job, result: StoredTranscript | undefined): Promise<boolean> {
    const h = this.handles;
    const there = await h.jobs.get(job.id);
    const held = there?.operation === 'PUT' && there.json<Job>().heldBy !== undefined;
    if (there?.operation === 'PUT' && !held) return false;
    try {
      if (result) await h.audio.putBlob({ name: resultObject(job.id) }, Buffer.from(JSON.stringify(result)));
      if (held) await h.jobs.update(job.id, JSON.stringify(job), there.revision);
      else await h.jobs.create(job.id, JSON.stringify(job));
      return true;
    } catch (err) {
      if (isRevisionConflict(err)) return false;
      throw fleetError(err, 'Could not copy the job to the fleet');
    }
  }

  /**
   * Fails the jobs no device will run any more: waiting or processing in the bucket, last
   * changed more than two ack waits ago, with no work message left in the stream (the
   * server stopped redelivering it after MaxDeliver: a device crashed before it could write
   * anything). Returns the jobs as failed here (to be reported); a compare-and-set each, so
   * devices sweeping together fail each once.
   */
  async failLeftovers(now: number, limit = 100): Promise<Job[]> {
    const { ackWaitMs } = this.broker.layout;
    const failed: Job[] = [];
    for (const { job, revision } of await this.states()) {
      if (failed.length >= limit) break;
      // A held copy is a device's own job, in no queue: that device ends it.
      if ((job.status !== 'waiting' && job.status !== 'processing') || job.heldBy || job.updated > now - 2 * ackWaitMs) continue;
      if (await this.queued(job)) continue;
      const error = { code: 'ERR_INTERRUPTED', message: 'No device could run this job (each one that took it stopped or crashed); giving up on it' };
      const ended: Job = { ...job, status: 'failed', updated: now, expiresAt: now + job.resultsTtlMs, error };
      if ((await this.update(ended, revision)) !== undefined) {
        await this.dropAudio(job.id);
        failed.push(ended);
      }
    }
    return failed;
  }

  /**
   * Stores a copy of `device`'s own running job (`heldBy`: it is in no queue of the
   * fleet's), so that GET on any device finds it, or refreshes the copy stored earlier;
   * never over a state the fleet keeps for a job of its own. Whether it is stored.
   */
  async hold(job: Job, device: string): Promise<boolean> {
    const h = this.handles;
    const copy = JSON.stringify({ ...job, heldBy: device });
    try {
      const there = await h.jobs.get(job.id);
      if (there?.operation !== 'PUT') await h.jobs.create(job.id, copy);
      else if (there.json<Job>().heldBy === device) await h.jobs.update(job.id, copy, there.revision);
      else return false;
      return true;
    } catch (err) {
      if (isRevisionConflict(err)) return false;
      throw fleetError(err, 'Could not copy the job to the fleet');
    }
  }

  /**
   * Removes the fleet's copy of a device's own job (held or finished), whatever its
   * status: the job is deleted or expired on that device. A job of the fleet's own is
   * left; with `heldBy`, anything but that device's held copy is.
   */
  async forget(id: string, heldBy?: string): Promise<void> {
    for (;;) {
      const stored = await this.get(id);
      if (!stored) return;
      const copy = heldBy === undefined ? stored.job.heldBy !== undefined || isFinished(stored.job) : stored.job.heldBy === heldBy;
      if (!copy || (await this.remove(stored))) return;
    }
  }

  /** The ids of the jobs `device` holds copies of (`hold`). */
  async heldBy(device: string): Promise<string[]> {
    return (await this.states()).filter((s) => s.job.heldBy === device).map((s) => s.job.id);
  }

  /**
   * Removes objects (audio, results) of jobs the bucket does not have, older than two ack
   * waits (a submit stores the audio and the state side by side, either may land first):
   * left by a device that died mid-submit, or by a delete interrupted between the state
   * and the objects.
   */
  async removeOrphans(now: number, limit = 100): Promise<number> {
    const h = this.handles;
    const cutoff = now - 2 * this.broker.layout.ackWaitMs;
    let removed = 0;
    const known = new Set((await this.states()).map((s) => s.job.id));
    for (const info of await h.audio.list()) {
      if (removed >= limit) break;
      if (info.deleted || Date.parse(info.mtime) > cutoff) continue;
      const id = info.name.replace(/\.(audio|result)$/, '');
      // Known a moment ago, or stored since (a submit stores both side by side).
      if (known.has(id) || (await h.jobs.get(id))?.operation === 'PUT') continue;
      await h.audio.delete(info.name).catch(() => undefined);
      removed++;
    }
    return removed;
  }

  /** Removes a job's state if it is still at its revision, then its objects; whether it did. */
  private async remove(stored: FleetJob): Promise<boolean> {
    const h = this.handles;
    try {
      await h.jobs.purge(stored.job.id, { previousSeq: stored.revision });
    } catch (err) {
      if (isRevisionConflict(err)) return false;
      throw fleetError(err, 'Could not delete the job in the fleet');
    }
    await Promise.allSettled([h.audio.delete(audioObject(stored.job.id)), h.audio.delete(resultObject(stored.job.id))]);
    return true;
  }

  /** Writes the job's audio to `path` (a new file). */
  async fetchAudio(id: string, path: string): Promise<number> {
    const object = await this.handles.audio.get(audioObject(id)).catch((err: unknown) => {
      throw fleetError(err, `Could not read the audio of job '${id}' from the fleet`);
    });
    if (!object) throw new AppError('ERR_FLEET_UNAVAILABLE', `The audio of job '${id}' is missing from the fleet's bucket`);
    try {
      await pipeline(Readable.fromWeb(object.data as import('node:stream/web').ReadableStream<Uint8Array>), createWriteStream(path, { flags: 'wx' }));
      const error = await object.error;
      if (error) throw error;
    } catch (err) {
      await rm(path, { force: true });
      throw fleetError(err, `Could not read the audio of job '${id}' from the fleet`);
    }
    return object.info.size;
  }

  /** Removes the job's audio (it finished, or was deleted). */
  async dropAudio(id: string): Promise<void> {
    await this.handles.audio.delete(audioObject(id)).catch(() => {});
  }

  /**
   * The next work message of the lanes, taking them in the order given, waiting up to
   * `expiresMs` on the last; undefined when there was none (or the broker went away).
   */
  async pull(lanes: readonly Lane[], expiresMs: number): Promise<FleetDelivery | undefined> {
    const h = this.broker.connected;
    if (!h) return undefined;
    for (const [i, lane] of lanes.entries()) {
      const consumer = await h.js.consumers.get(this.broker.layout.stream, consumerName(lane));
      // Only the last lane is waited on: the others are asked without waiting (a short expiry).
      const msg = await consumer.next({ expires: i === lanes.length - 1 ? Math.max(1000, expiresMs) : 1000 });
      if (msg) return new FleetDelivery(msg, h.jobs, this.broker.layout.ackWaitMs);
    }
    return undefined;
  }
}

/**
 * One delivery of a work message to this device: the job is this device's until it is
 * acknowledged (`done`), given back (`release`), or the ack wait lapses without a sign
 * of life (`keepAlive` sends in-progress acknowledgements at a third of it).
 */
export class FleetDelivery {
  readonly id: string;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly msg: JsMsg,
    private readonly jobs: KV,
    private readonly ackWaitMs: number,
  ) {
    this.id = msg.json<{ id: string }>().id;
  }

  /** How many times the server has delivered this message (1 the first time). */
  get deliveryCount(): number {
    return this.msg.info.deliveryCount;
  }

  /** Sends an in-progress acknowledgement now and every third of the ack wait until `done`/`release`. */
  keepAlive(): void {
    this.msg.working();
    this.timer ??= setInterval(() => this.msg.working(), Math.max(100, Math.floor(this.ackWaitMs / 3)));
  }

  /** The job is finished (or gone): the message leaves the work queue. Resolves once the broker confirmed it. */
  async done(): Promise<void> {
    clearInterval(this.timer);
    await this.msg.ackAck();
  }

  /** Gives the job back at once (this device is stopping): another device may take it. */
  release(): void {
    clearInterval(this.timer);
    this.msg.nak();
  }

  /** The job's state now (undefined: deleted). */
  async state(): Promise<FleetJob | undefined> {
    const entry = await this.jobs.get(this.id);
    if (entry?.operation !== 'PUT') return undefined;
    return { job: entry.json<Job>(), revision: entry.revision };
  }
}

/** How long reading a result object may take (a transcript is small: a few hundred KB at most). */
const resultReadMs = 15_000;

/** `promise`, or ERR_FLEET_UNAVAILABLE after `ms`. */
function bounded<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new AppError('ERR_FLEET_UNAVAILABLE', message)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function isRevisionConflict(err: unknown): boolean {
  // JetStream's "wrong last sequence" (10071): the key changed since the revision read.
  const e = err as { code?: unknown; api_error?: { err_code?: number }; message?: string };
  return e?.api_error?.err_code === 10071 || /wrong last sequence/i.test(e?.message ?? '');
}

function fleetError(err: unknown, what: string): AppError {
  if (err instanceof AppError) return err;
  return new AppError('ERR_FLEET_UNAVAILABLE', `${what}: ${(err as Error).message}`, { cause: err });
}
