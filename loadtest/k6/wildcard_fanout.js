// Wildcard fan-out (api-extensions.md §10): publishers send RATE publishes
// a second to subjects that only wildcard subscribers take, and the
// subscribers drain them by long-poll.
//
// setup() subscribes three patterns that match every published subject
// (`k6wild.<run>.*.x`, `k6wild.<run>.>`, `*.<run>.*.x`) and NOISE patterns
// that match none (`noise.<run>.<i>.*`), so each publish is matched against
// them all. Each publish goes to `k6wild.<run>.<n>.x` for one of SUBJECTS
// subjects (on every shard): it must be answered 200, though no one
// subscribes to that subject itself. One VU per pattern long-polls it; every
// answer must carry `subjects` parallel to `data`, each subject one of those
// published to, and each message must arrive exactly once per pattern
// (checked by counting: in teardown() every pattern must have received as
// many messages as were published, and hold none).
//
// Run (k6 from https://k6.io; not packaged by Debian):
//   k6 run loadtest/k6/wildcard_fanout.js
//   k6 run -e RATE=2000 -e NOISE=10000 loadtest/k6/wildcard_fanout.js
//
// Environment (k6 -e NAME=value, or the process environment):
//   BASE_URL   broker address (default http://127.0.0.1:8082)
//   RATE       publishes a second, in all (default 500)
//   DURATION   how long the publishers run (default 30s)
//   SUBJECTS   distinct subjects published to (default 16)
//   NOISE      patterns that match nothing (default 1000)
//   WAIT_MS    each fetch's wait_ms (default 2000)
//   MAX_VUS    most VUs the publishers may use to keep the rate (default 100)
import { check } from 'k6';
import { Counter } from 'k6/metrics';
import {
  jsonBody, longPollFetch, parseDurationSeconds, positiveInteger, post, subscribe, wholeNumber,
} from './gophermq.js';

const RATE = positiveInteger('RATE', 500);
const DURATION = __ENV.DURATION || '30s';
const SUBJECTS = positiveInteger('SUBJECTS', 16);
const NOISE = wholeNumber('NOISE', 1000);
const WAIT_MS = positiveInteger('WAIT_MS', 2000);
const MAX_VUS = positiveInteger('MAX_VUS', 100);
const RUN = `r${Date.now()}`;
const PATTERNS = [`k6wild.${RUN}.*.x`, `k6wild.${RUN}.>`, `*.${RUN}.*.x`];

const published = new Counter('published_messages');
const received = new Counter('received_messages');

export const options = {
  scenarios: {
    consumers: {
      executor: 'per-vu-iterations',
      exec: 'consume',
      vus: PATTERNS.length,
      iterations: 1,
      maxDuration: `${parseDurationSeconds(DURATION) + 10 + Math.ceil(WAIT_MS / 1000)}s`,
    },
    publishers: {
      executor: 'constant-arrival-rate',
      exec: 'produce',
      startTime: '1s',
      rate: RATE,
      timeUnit: '1s',
      duration: DURATION,
      preAllocatedVUs: Math.min(MAX_VUS, 20),
      maxVUs: MAX_VUS,
    },
  },
  thresholds: {
    checks: ['rate==1'],
    dropped_iterations: ['count==0'],
  },
};

export function setup() {
  const subscribers = PATTERNS.map((pattern) => subscribe(pattern, { wildcard: true }));
  for (let i = 0; i < NOISE; i++) subscribe(`noise.${RUN}.${i}.*`, { wildcard: true });
  return { subscribers };
}

export function produce() {
  const subject = `k6wild.${RUN}.${Math.floor(Math.random() * SUBJECTS)}.x`;
  const res = post('/api/publish', { subject, data: 'wild' }, 'publish');
  if (check(res, { 'publish to patterns answered 200': (r) => r.status === 200 })) published.add(1);
}

// One VU per pattern: long-polls it until the publishers are done and it
// has been empty for a whole wait.
export function consume(data) {
  const subscriber = data.subscribers[__VU - 1];
  const end = Date.now() + (parseDurationSeconds(DURATION) + 2) * 1000;
  while (true) {
    const res = longPollFetch(subscriber, WAIT_MS, 1000, 'fetch');
    const body = jsonBody(res);
    const ok = check(res, {
      'fetch answered 200': (r) => r.status === 200,
      'subjects parallel to data': () => body && Array.isArray(body.data) &&
        Array.isArray(body.subjects) && body.subjects.length === body.data.length &&
        body.subjects.every((s) => s.startsWith(`k6wild.${RUN}.`) && s.endsWith('.x')),
    });
    if (!ok) return;
    received.add(body.data.length);
    if (body.data.length === 0 && Date.now() > end) return;
  }
}

export function teardown(data) {
  for (const subscriber of data.subscribers) {
    const res = post('/api/info', { subject: subscriber.subject, id: subscriber.id }, 'info');
    const body = jsonBody(res);
    check(res, { 'every pattern drained': () => res.status === 200 && body && body.pending === 0 });
  }
}
