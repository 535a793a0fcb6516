// Three real earshot services (dist/src/main.js, each its own state dir and loopback port)
// and a real `nats-server -js`: jobs submitted through IBM's API to one device run on all
// of them; a device SIGKILLed mid-job loses nothing (another device completes its job
// after the ack wait); the broker restarted mid-run loses nothing (while it is away, the
// device takes jobs itself: the 201 is the same); no job completes twice; GET, list and
// DELETE on any device work for any job; a callback registered on one device is used by
// every device that reports a job's events (any of them pulls any): every job's events
// reach the receiver at least once, each with a stable id. Prints the numbers
// docs/fleet.md quotes.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { Kvm } from '@nats-io/kv';
import { jetstream } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import t from 'tap';

import { apiKey } from '../helpers/app.js';
import { NatsServer } from '../helpers/nats-server.js';
import { l16 } from '../helpers/pcm.js';
import { until } from '../helpers/poll.js';
import { type Received, startReceiver } from '../helpers/receiver.js';
import { type ServiceProcess, spawnService } from '../helpers/service-process.js';

const auth = { Authorization: `Basic ${Buffer.from(`apikey:${apiKey}`).toString('base64')}` };
const l16Type = 'audio/l16;rate=16000;endianness=little-endian';
const ackWaitSeconds = 4;

interface Device {
  name: string;
  svc: ServiceProcess;
  alive: boolean;
}

/** Job ids in a device's log lines matching `pattern` (its first group). */
const logged = (d: Device, pattern: RegExp): string[] => d.svc.output.flatMap((line) => pattern.exec(line)?.[1] ?? []);
/** A fleet job this device's worker finished and stored (a result dropped for a lost revision is not). */
const fleetCompleted = /fleet: fleet job completed job=(\S+)/;
/** A job this device ran alone (the broker was away when it was submitted). */
const localCompleted = /jobs: job completed job=(\S+)/;
const fleetStarted = /: running a fleet job job=(\S+)/;

/** The callback every job asks for (registered once, on one device). */
let callbackQuery = '';

async function submit(d: Device, seconds: number): Promise<{ id: string; ms: number }> {
  const started = performance.now();
  const res = await fetch(`${d.svc.base}/v1/recognitions${callbackQuery}`, {
    method: 'POST',
    headers: { ...auth, 'Content-Type': l16Type },
    body: l16(seconds),
  });
  const ms = performance.now() - started;
  if (res.status !== 201) throw new Error(`submit: ${res.status} ${await res.text()}`);
  return { id: ((await res.json()) as { id: string }).id, ms };
}

async function status(d: Device, id: string): Promise<{ status: string; results?: unknown[] }> {
  const res = await fetch(`${d.svc.base}/v1/recognitions/${id}`, { headers: auth });
  if (res.status !== 200) throw new Error(`GET ${id} on ${d.name}: ${res.status} ${await res.text()}`);
  return (await res.json()) as { status: string; results?: unknown[] };
}

const callback = (r: Received) => JSON.parse(r.body) as { id: string; event: string; user_token?: string };

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

t.test(
  'three devices, one queue: 30 jobs spread, a device SIGKILLed mid-job, the broker restarted; every job completes once, and any device answers for any',
  async (t) => {
    const server = await NatsServer.start(t);
    const env = {
      EARSHOT_FLEET_URL: server.url,
      EARSHOT_FLEET_ACK_WAIT_SECONDS: String(ackWaitSeconds),
      EARSHOT_LOG_LEVEL: 'debug',
      EARSHOT_THREADS: '1',
    };
    const devices: Device[] = await Promise.all(
      ['a', 'b', 'c'].map(async (name) => {
        const stateDir = path.join(t.testdir(), name);
        mkdirSync(stateDir, { recursive: true });
        return { name, svc: await spawnService(stateDir, env), alive: true };
      }),
    );
    t.teardown(async () => {
      for (const d of devices) if (d.alive) d.svc.proc.kill('SIGTERM');
      await Promise.all(devices.map((d) => d.svc.exited));
    });
    const fleetState = async (d: Device) => ((await (await fetch(`${d.svc.base}/readyz`)).json()) as { fleet?: string }).fleet;
    for (const d of devices) await until(async () => (await fleetState(d)) === 'connected', 20_000, `${d.name} connected`);
    const [a] = devices as [Device, Device, Device];

    // A receiver, registered on a (where the jobs are submitted): the devices that run them
    // and pull their events, b and c too, send their callbacks (registrations are fleet-wide;
    // replicated in milliseconds, long before the first job ends).
    const receiver = await startReceiver(t, () => ({ status: 200 }), { path: '/hook' });
    const callbackUrl = encodeURIComponent(receiver.url);
    const registered = await fetch(`${a.svc.base}/v1/register_callback?callback_url=${callbackUrl}&user_secret=s`, { method: 'POST', headers: auth });
    t.equal(registered.status, 201, 'callback registered on a');
    callbackQuery = `?callback_url=${callbackUrl}&user_token=fleet`;
    if (process.env.FLEET_TEST_LOGS) {
      const timer = setInterval(() => {
        for (const d of devices) writeFileSync(path.join(process.env.FLEET_TEST_LOGS!, `${d.name}.log`), d.svc.output.join('\n'));
      }, 1000);
      t.teardown(() => clearInterval(timer));
    }

    // 30 short jobs, then a long one (it starts once a device is free), all to device a:
    // 2 minutes, streamed (not the short audio decoded at once) and seconds of inference on
    // the test model, so the kill 0.5 s after its start lands mid-job (30 s finished sooner).
    const submitted: Array<{ id: string; ms: number }> = [];
    for (let i = 0; i < 30; i++) submitted.push(await submit(a, 2));
    const long = await submit(a, 120);
    submitted.push(long);
    const fleetSubmitMs = submitted.map((s) => s.ms);
    t.comment(
      `submit to 201 through the fleet (16 kHz L16, 64 KB; 3.84 MB the last): median ${median(fleetSubmitMs).toFixed(0)} ms, max ${Math.max(...fleetSubmitMs).toFixed(0)} ms`,
    );

    // The device running the long job dies mid-job.
    let victim: Device | undefined;
    await until(
      () => {
        victim = devices.find((d) => logged(d, fleetStarted).includes(long.id));
        return victim !== undefined;
      },
      60_000,
      'the long job to start',
    );
    await new Promise((resolve) => setTimeout(resolve, 500));
    t.notOk(logged(victim!, fleetCompleted).includes(long.id), 'killed mid-job, not after');
    victim!.svc.proc.kill('SIGKILL');
    victim!.alive = false;
    const killedAt = performance.now();
    await victim!.svc.exited;
    const survivors = devices.filter((d) => d.alive);
    const entry = survivors[0]!;

    // The broker restarts mid-run; while it is away, the device takes jobs itself (same 201).
    await server.stop();
    await until(async () => (await fleetState(entry)) === 'unreachable', 15_000, 'the broker gone');
    const local: Array<{ id: string; ms: number }> = [];
    for (let i = 0; i < 3; i++) local.push(await submit(entry, 2));
    t.comment(`submit to 201 on the device alone (broker away): median ${median(local.map((s) => s.ms)).toFixed(0)} ms`);
    await server.start();
    for (const d of survivors) await until(async () => (await fleetState(d)) === 'connected', 20_000, `${d.name} connected again`);

    const all = [...submitted, ...local];
    // Every job completes, read from every surviving device (the local ones once copied to the fleet).
    await until(
      async () => {
        for (const d of survivors) for (const s of all) if ((await status(d, s.id).catch(() => ({ status: 'unknown' }))).status !== 'completed') return false;
        return true;
      },
      120_000,
      'every job completed, as every device reads it',
    );
    const takenOverMs = performance.now() - killedAt;
    const rescuer = survivors.find((d) => logged(d, fleetCompleted).includes(long.id));
    t.ok(rescuer, 'the killed device’s job completed on another device');
    t.comment(
      `the SIGKILLed device's job completed elsewhere ${(takenOverMs / 1000).toFixed(1)} s after the kill (ack wait ${ackWaitSeconds} s; a broker restart in between)`,
    );

    // No job completed twice: one completion per job over all devices' logs (the dead one's included).
    const completions = new Map<string, number>();
    for (const d of devices) for (const id of [...logged(d, fleetCompleted), ...logged(d, localCompleted)]) completions.set(id, (completions.get(id) ?? 0) + 1);
    t.same(
      all.map((s) => completions.get(s.id)),
      all.map(() => 1),
      'each job completed exactly once',
    );
    // Taken while the broker was away: run by the device that took them, but those still
    // waiting when it came back go to the fleet's queue (docs/fleet.md, "A device's backlog").
    const ranHere = local.filter((s) => logged(entry, localCompleted).includes(s.id)).length;
    const handed = entry.svc.output.reduce((n, line) => n + Number(/waiting jobs handed to the fleet count=(\d+)/.exec(line)?.[1] ?? 0), 0);
    t.comment(`of the ${local.length} jobs taken while the broker was away: ${ranHere} ran on the device, ${handed} handed to the fleet`);
    t.equal(ranHere + handed, local.length, 'the jobs taken while the broker was away ran on the device that took them, or were handed to the fleet');

    // The spread: which device ran the 30 short jobs.
    const ran = devices.map((d) => ({ name: d.name, jobs: submitted.slice(1).filter((s) => logged(d, fleetCompleted).includes(s.id)).length }));
    t.comment(`the 30 jobs ran on: ${ran.map((r) => `${r.name} ${r.jobs}`).join(', ')} (SIGKILLed: ${victim!.name})`);
    t.ok(ran.filter((r) => r.jobs > 0).length >= 2, 'more than one device ran jobs');
    t.equal(
      ran.reduce((n, r) => n + r.jobs, 0),
      30,
    );

    // The fleet's own record agrees: every state completed, the killed job's attempt counted twice.
    const nc = await connect({ servers: server.url });
    t.teardown(() => nc.close());
    const kv = await new Kvm(jetstream(nc)).open('earshot-jobs');
    const longState = (await kv.get(long.id))?.json<{ status: string; attempts: number }>();
    t.match(longState, { status: 'completed', attempts: 2 }, 'the killed job: started twice, completed once');
    t.equal(
      devices.reduce((n, d) => n + logged(d, fleetStarted).filter((id) => id === long.id).length, 0),
      2,
      'started on the killed device, then once more',
    );
    t.match(await status(entry, long.id), { status: 'completed', results: Array });

    // List and delete are fleet-wide: the other survivor lists every job and deletes one entry took.
    const other = survivors[1]!;
    const listed = (
      (await (await fetch(`${other.svc.base}/v1/recognitions`, { headers: auth })).json()) as { recognitions: Array<{ id: string }> }
    ).recognitions.map((r) => r.id);
    t.same(
      all.filter((s) => !listed.includes(s.id)),
      [],
      'every job listed on another device',
    );
    const deleted = submitted[0]!.id;
    t.equal((await fetch(`${other.svc.base}/v1/recognitions/${deleted}`, { method: 'DELETE', headers: auth })).status, 204);
    t.equal((await fetch(`${entry.svc.base}/v1/recognitions/${deleted}`, { headers: auth })).status, 404, 'gone on every device');

    // Every job's callbacks arrived, whichever device ran it or sent them: `completed` at
    // least once per job (`started` once per attempt), each delivery with a webhook-id that
    // is the same whenever the same event is sent again (a receiver dedupes by it).
    const events = await receiver.until(
      (got) => all.every((s) => got.some((r) => callback(r).id === s.id && callback(r).event === 'recognitions.completed')),
      "every job's recognitions.completed callback",
      60_000,
    );
    const byId = new Map<string, Set<string>>();
    for (const r of events) {
      const id = String(r.headers['webhook-id'] ?? '');
      byId.set(id, (byId.get(id) ?? new Set()).add(`${callback(r).id} ${callback(r).event}`));
    }
    t.notOk(byId.has(''), 'every callback carries a webhook-id');
    t.same(
      [...byId.values()].filter((what) => what.size > 1).map((what) => [...what]),
      [],
      'one event per webhook-id',
    );
    const completedIds = (id: string) =>
      new Set(events.filter((r) => callback(r).id === id && callback(r).event === 'recognitions.completed').map((r) => r.headers['webhook-id'])).size;
    t.same(
      all.map((s) => completedIds(s.id)),
      all.map(() => 1),
      'each job: one completed event (however often it was sent)',
    );
    t.ok(
      events.every((r) => callback(r).user_token === 'fleet'),
      'the user_token of each job on each callback',
    );
    t.comment(`callbacks: ${events.length} deliveries for ${byId.size} events (${all.length} jobs)`);
  },
);
