// The fleet suite (`npm run bench -- --suite fleet`): what the fleet path (issue 16,
// docs/fleet.md) costs and gives against a single device, with a real `nats-server -js`
// (Debian's, its store in a temporary directory, on a loopback port) and earshot services
// as `npm start` runs them (dist/src/main.js in child processes), each with one inference
// thread:
//   1. submissions: POST /v1/recognitions → 201 latency (p50, p99) and durable
//      submissions per second, 16 clients, 1 s WAV, on a device alone and on the same
//      device configured with EARSHOT_FLEET_URL (audio, state and work message each
//      acknowledged by the broker before the 201)
//   2. one short job end to end (jfk, 11 s): POST → completion callback at a local
//      receiver, median of --runs, on a device alone and submitted to device A of a
//      2-device fleet (it runs on A or B; its callback comes through the events stream)
//   3. throughput: --fleet-jobs short jobs submitted at once to one device, until the last
//      completion callback: one device with one thread, one device with two threads (the
//      same CPU as the fleet), and a 2-device fleet with one thread each. On one machine
//      the two devices share its cores: this is the fleet spreading work, not the scale-out
//      of devices with their own CPUs.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import autocannon from 'autocannon';

import { benchAuth as auth, getJob, startService, submit } from '../lib/bench-service.js';
import type { Figure } from '../lib/figures.js';
import { NatsServer, natsServerBinary } from '../lib/nats-server.js';
import type { ServiceProcess } from '../lib/service-process.js';
import { median } from '../lib/stats.js';
import { jfkWav, startReceiver } from './api.js';

export interface FleetSuiteOptions {
  /** The model file. */
  model: string;
  /** Jobs measured one after another for the end-to-end latency (median). */
  runs: number;
  /** How long the 16 clients submit, per side. */
  submitSeconds: number;
  /** Jobs submitted at once for the throughput. */
  jobs: number;
}

/** Inference threads per device, in every part (the throughput adds one device with two). */
const deviceThreads = 1;
const clients = 16;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type Receiver = Awaited<ReturnType<typeof startReceiver>>;

/** A device: the service, with EARSHOT_FLEET_URL when `fleetUrl` is given (then once it is connected). */
async function startDevice(stateDir: string, model: string, threads: number, fleetUrl?: string): Promise<ServiceProcess> {
  const svc = await startService(stateDir, model, threads, fleetUrl ? { EARSHOT_FLEET_URL: fleetUrl } : {});
  if (!fleetUrl) return svc;
  for (let waited = 0; waited < 20_000; waited += 50) {
    const ready = (await (await fetch(`${svc.base}/readyz`)).json()) as { fleet?: string };
    if (ready.fleet === 'connected') return svc;
    await sleep(50);
  }
  svc.proc.kill('SIGKILL');
  throw new Error(`a device did not connect to the broker at ${fleetUrl}`);
}

async function stopDevice(svc: ServiceProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  svc.proc.kill(signal);
  await svc.exited;
}

/** Fleet jobs this device started (earshot_fleet_jobs_started_total). */
async function fleetStarted(svc: ServiceProcess): Promise<number> {
  const text = await (await fetch(`${svc.base}/metrics`, { headers: auth })).text();
  return Number(/^earshot_fleet_jobs_started_total (\S+)$/m.exec(text)?.[1] ?? 0);
}

/** Work messages ever published to the fleet's job stream: the submissions the fleet took. */
async function fleetSubmissions(url: string): Promise<number> {
  const nc = await connect({ servers: url });
  try {
    return (await (await jetstreamManager(nc)).streams.info('EARSHOT_JOBS')).state.last_seq;
  } finally {
    await nc.close();
  }
}

/** Registers the receiver as the device's callback; returns the query string a job names it with. */
async function registerCallback(base: string, receiver: Receiver): Promise<string> {
  const reg = await fetch(`${base}/v1/register_callback?callback_url=${encodeURIComponent(receiver.url)}`, { method: 'POST', headers: auth });
  if (reg.status !== 201) throw new Error(`register_callback: ${reg.status} ${await reg.text()}`);
  return `?callback_url=${encodeURIComponent(receiver.url)}&events=recognitions.completed`;
}

/** 16 clients submit `wav` for `seconds`: the rate and autocannon's latencies. */
async function submissions(base: string, wav: Buffer, seconds: number): Promise<{ rate: number; accepted: number; p50: number; p99: number }> {
  const load = await autocannon({
    url: `${base}/v1/recognitions`,
    connections: clients,
    duration: seconds,
    method: 'POST',
    headers: { ...auth, 'Content-Type': 'audio/wav' },
    body: wav,
  });
  if (load.non2xx || load.errors || load.timeouts) throw new Error(`submissions: ${load.non2xx} non-2xx, ${load.errors} errors, ${load.timeouts} timeouts`);
  const accepted = load.statusCodeStats['201']?.count ?? 0;
  return { rate: accepted / load.duration, accepted, p50: load.latency.p50, p99: load.latency.p99 };
}

/**
 * `runs` jobs one after another (after a warm-up): POST → completion callback, ms each.
 * `after` runs after each job, `measured` false for the warm-up.
 */
async function endToEnd(
  base: string,
  wav: Buffer,
  query: string,
  receiver: Receiver,
  runs: number,
  after?: (measured: boolean) => Promise<void>,
): Promise<number[]> {
  const ms: number[] = [];
  for (let i = 0; i < runs + 1; i++) {
    const t0 = performance.now();
    const s = await submit(base, wav, query);
    const done = await receiver.completion(s.id);
    if (i > 0) ms.push(done - t0);
    await after?.(i > 0);
  }
  return ms;
}

/**
 * `jobs` jobs submitted at once: seconds from the first POST to the last completion
 * callback, to the last 201, and to the last job's completion as the service recorded it
 * (its `updated` time: the rest is the callbacks' path).
 */
async function burst(
  base: string,
  wav: Buffer,
  query: string,
  receiver: Receiver,
  jobs: number,
): Promise<{ seconds: number; submitSeconds: number; finishedSeconds: number }> {
  const wall0 = Date.now();
  const t0 = performance.now();
  const submitted = await Promise.all(Array.from({ length: jobs }, () => submit(base, wav, query)));
  const lastAccepted = Math.max(...submitted.map((s) => s.at));
  const done = await Promise.all(submitted.map((s) => receiver.completion(s.id)));
  const finished = await Promise.all(submitted.map(async (s) => Date.parse(String((await getJob(base, s.id)).updated))));
  return { seconds: (Math.max(...done) - t0) / 1000, submitSeconds: (lastAccepted - t0) / 1000, finishedSeconds: (Math.max(...finished) - wall0) / 1000 };
}

/** Prints the figures, one line each; returns the headline ones. */
export async function runFleetSuite(o: FleetSuiteOptions): Promise<Figure[]> {
  const binary = natsServerBinary();
  const probe = await NatsServer.launch().catch((err: Error) => err);
  if (probe instanceof Error) {
    console.log(`fleet: skipped, no broker: ${binary} did not start (Debian: apt install nats-server; or NATS_SERVER=PATH): ${probe.message.split('\n')[0]}`);
    return [];
  }
  await probe.remove();
  process.env.OMP_WAIT_POLICY ??= 'PASSIVE';
  const dir = mkdtempSync(path.join(os.tmpdir(), 'earshot-bench-fleet-'));
  const receiver = await startReceiver();
  const running: ServiceProcess[] = [];
  const brokers: NatsServer[] = [];
  const device = async (name: string, threads: number, fleetUrl?: string) => {
    const svc = await startDevice(path.join(dir, name), o.model, threads, fleetUrl);
    running.push(svc);
    return svc;
  };
  const broker = async () => {
    const b = await NatsServer.launch();
    brokers.push(b);
    return b;
  };
  const load0 = os.loadavg()[0]!;
  const figures: Figure[] = [];
  const lines: string[] = [
    `model ${path.basename(o.model)}, ${deviceThreads} inference thread per device (EARSHOT_THREADS=${deviceThreads}) unless said, ` +
      `${os.cpus()[0]?.model ?? 'cpu'} x${os.availableParallelism()}, ${(await NatsServer.version()) ?? 'nats-server'} (${binary}, JetStream file store in a temp dir, loopback), ` +
      `OMP_WAIT_POLICY=${process.env.OMP_WAIT_POLICY}; every device, broker and client on this one machine`,
    '',
  ];
  const fig = (name: string, value: number, unit: string) => figures.push({ suite: 'fleet', name, value, unit });
  try {
    const jfk = await jfkWav(dir, 1);
    const jfkSeconds = (jfk.length - 44) / 32000;
    const small = jfk.subarray(0, 44 + 32000);
    small.writeUInt32LE(32000, 40);
    small.writeUInt32LE(36 + 32000, 4);

    // 1. submissions: the device alone, then the same configuration with a broker (a fresh one).
    const alone = await device('submit-alone', deviceThreads);
    await receiver.completion((await submit(alone.base, jfk, await registerCallback(alone.base, receiver))).id); // warm-up
    const local = await submissions(alone.base, small, o.submitSeconds);
    await stopDevice(alone, 'SIGKILL'); // its queue is full of bench jobs
    const submitBroker = await broker();
    const member = await device('submit-fleet', deviceThreads, submitBroker.url);
    await receiver.completion((await submit(member.base, jfk, await registerCallback(member.base, receiver))).id);
    const before = await fleetSubmissions(submitBroker.url);
    const fleet = await submissions(member.base, small, o.submitSeconds);
    await sleep(1000); // the requests still in flight when the clients stopped
    const throughBroker = (await fleetSubmissions(submitBroker.url)) - before;
    await stopDevice(member, 'SIGKILL');
    await submitBroker.remove();
    lines.push(
      `1. submissions (1 s WAV, durable before the 201), ${clients} clients for ${o.submitSeconds} s each, while the queue transcribes: ` +
        `alone ${local.rate.toFixed(0)}/s, p50 ${local.p50} ms, p99 ${local.p99} ms; ` +
        `with EARSHOT_FLEET_URL ${fleet.rate.toFixed(0)}/s, p50 ${fleet.p50} ms, p99 ${fleet.p99} ms ` +
        `(the broker took ${throughBroker} jobs for the ${fleet.accepted} 201s counted; requests in flight when the clients stopped, up to ${clients}, ` +
        'are not counted, and a job the broker does not take is taken locally)',
    );
    fig('submit → 201 p50, device alone', local.p50, 'ms');
    fig('submit → 201 p50, through the fleet (broker acks)', fleet.p50, 'ms');
    fig('submit → 201 p99, device alone', local.p99, 'ms');
    fig('submit → 201 p99, through the fleet (broker acks)', fleet.p99, 'ms');
    fig(`durable submissions, ${clients} clients, 1 s WAV, device alone`, local.rate, '/s');
    fig(`durable submissions, ${clients} clients, 1 s WAV, through the fleet`, fleet.rate, '/s');

    // 2 and 3 on a device alone: one thread, then two (the CPU the fleet's two devices use).
    const single = await device('single', deviceThreads);
    const singleQuery = await registerCallback(single.base, receiver);
    const singleE2e = await endToEnd(single.base, jfk, singleQuery, receiver, o.runs);
    const single1 = await burst(single.base, jfk, singleQuery, receiver, o.jobs);
    await stopDevice(single);
    const double = await device('single-2-threads', 2);
    const doubleQuery = await registerCallback(double.base, receiver);
    await receiver.completion((await submit(double.base, jfk, doubleQuery)).id); // warm-up
    const single2 = await burst(double.base, jfk, doubleQuery, receiver, o.jobs);
    await stopDevice(double);

    // 2 and 3 on a 2-device fleet, every job submitted to A.
    const fleetBroker = await broker();
    const [a, b] = await Promise.all([device('fleet-a', deviceThreads, fleetBroker.url), device('fleet-b', deviceThreads, fleetBroker.url)]);
    const fleetQuery = await registerCallback(a.base, receiver);
    // Warm-up: two at once, so both devices have run a job before the measured ones.
    await Promise.all([submit(a.base, jfk, fleetQuery), submit(a.base, jfk, fleetQuery)].map(async (s) => receiver.completion((await s).id)));
    const ranOn = { a: 0, b: 0 };
    let counts = { a: await fleetStarted(a), b: await fleetStarted(b) };
    const fleetE2e = await endToEnd(a.base, jfk, fleetQuery, receiver, o.runs, async (measured) => {
      const now = { a: await fleetStarted(a), b: await fleetStarted(b) };
      if (measured) {
        ranOn.a += now.a - counts.a;
        ranOn.b += now.b - counts.b;
      }
      counts = now;
    });
    const burstBefore = { a: await fleetStarted(a), b: await fleetStarted(b) };
    const fleet2 = await burst(a.base, jfk, fleetQuery, receiver, o.jobs);
    const spread = { a: (await fleetStarted(a)) - burstBefore.a, b: (await fleetStarted(b)) - burstBefore.b };
    await Promise.all([stopDevice(a), stopDevice(b)]);

    const added = median(fleetE2e) - median(singleE2e);
    lines.push(
      `2. one job end to end (jfk ${jfkSeconds.toFixed(0)} s WAV, POST → completion callback), median of ${o.runs}: ` +
        `device alone ${median(singleE2e).toFixed(0)} ms (max ${Math.max(...singleE2e).toFixed(0)}); ` +
        `submitted to A of a 2-device fleet ${median(fleetE2e).toFixed(0)} ms (max ${Math.max(...fleetE2e).toFixed(0)}; ran on A ${ranOn.a}, on B ${ranOn.b}): ` +
        `the fleet adds ${added.toFixed(0)} ms`,
    );
    fig(`one job end to end (jfk ${jfkSeconds.toFixed(0)} s), device alone, median`, median(singleE2e), 'ms');
    fig(`one job end to end (jfk ${jfkSeconds.toFixed(0)} s), 2-device fleet, median`, median(fleetE2e), 'ms');
    fig('the fleet’s added latency per job (medians)', added, 'ms');

    const rate = (r: { seconds: number }) => (o.jobs * jfkSeconds) / r.seconds;
    const split = (r: { submitSeconds: number; finishedSeconds: number }) =>
      `the 201s ${r.submitSeconds.toFixed(1)} s, the last job finished ${r.finishedSeconds.toFixed(1)} s`;
    lines.push(
      `3. ${o.jobs} jobs (jfk ${jfkSeconds.toFixed(0)} s) submitted at once, until the last completion callback: ` +
        `one device, 1 thread ${single1.seconds.toFixed(1)} s (${rate(single1).toFixed(1)} s of audio per s; ${split(single1)}); ` +
        `one device, 2 threads ${single2.seconds.toFixed(1)} s (${rate(single2).toFixed(1)}; ${split(single2)}); ` +
        `2-device fleet, 1 thread each ${fleet2.seconds.toFixed(1)} s (${rate(fleet2).toFixed(1)}; ran on A ${spread.a}, on B ${spread.b}; ${split(fleet2)}). ` +
        `fleet ÷ one device with 1 thread: ${(single1.seconds / fleet2.seconds).toFixed(2)}× the throughput; ` +
        `÷ one device with 2 threads: ${(single2.seconds / fleet2.seconds).toFixed(2)}×. ` +
        `All on one ${os.availableParallelism()}-core machine: the two devices share its cores, so this is the fleet spreading work ` +
        `and its overhead, not the scale-out of devices with CPUs of their own`,
    );
    fig(`${o.jobs} jfk jobs at once, one device, 1 thread`, single1.seconds, 's');
    fig(`${o.jobs} jfk jobs at once, one device, 2 threads`, single2.seconds, 's');
    fig(`${o.jobs} jfk jobs at once, 2-device fleet, 1 thread each`, fleet2.seconds, 's');
    lines.push(
      '',
      `load average (1 min) ${load0.toFixed(2)} at the start, ${os.loadavg()[0]!.toFixed(2)} at the end${load0 >= os.availableParallelism() ? ': other work was competing for the cores, expect noise' : ''}`,
    );
  } finally {
    for (const svc of running) svc.proc.kill('SIGKILL');
    await Promise.all(running.map((svc) => svc.exited));
    for (const b of brokers) await b.remove();
    await receiver.close();
    rmSync(dir, { recursive: true, force: true });
  }
  console.log(lines.join('\n'));
  return figures;
}
