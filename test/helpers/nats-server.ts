// The tests' broker: scripts/lib/nats-server.ts (shared with the fleet benchmark).
export { freePort, NatsServer } from '../../scripts/lib/nats-server.js';
