// Long-poll consumers against paced publishers (api-extensions.md §3, §4).
//
// Each consumer VU subscribes once, on its first iteration, to one of
// SUBJECTS subjects, then fetches in a loop with wait_ms: an answer leaves
// the broker as soon as a message arrives for it. Publishers send RATE
// publishes a second (an open model), round-robin over the subjects,
// starting once the consumers have subscribed. Every answer's `seqs` must
// continue exactly where the consumer's last one ended: a gap is a lost
// message, a repeat a message delivered twice; either fails a check, and
// so the run.
//
// Run (k6 from https://k6.io; not packaged by Debian):
//   k6 run loadtest/k6/long_poll.js
//   k6 run -e CONSUMERS=200 -e SUBJECTS=50 -e RATE=5000 -e DURATION=1m loadtest/k6/long_poll.js
//
// Environment (k6 -e NAME=value, or the process environment):
//   BASE_URL   broker address (default http://127.0.0.1:8082)
//   CONSUMERS  long-polling VUs, one subscriber each (default 20)
//   SUBJECTS   subjects the consumers spread over (default 10)
//   RATE       publishes a second, in all (default 1000)
//   DURATION   how long the publishers run (default 30s)
//   WAIT_MS    each fetch's wait_ms (default 5000)
//   MAX_VUS    most VUs the publishers may use to keep the rate (default 200)
import { check } from 'k6';
import {
  consumerAndPublisherScenarios, jsonBody, longPollFetch, positiveInteger, post, subscribe,
} from './gophermq.js';

const CONSUMERS = positiveInteger('CONSUMERS', 20);
const SUBJECTS = positiveInteger('SUBJECTS', 10);
const RATE = positiveInteger('RATE', 1000);
const WAIT_MS = positiveInteger('WAIT_MS', 5000);
const MAX_VUS = positiveInteger('MAX_VUS', 200);
const DURATION = __ENV.DURATION || '30s';

function subjectName(index) {
  return `longpoll.k6.${index}`;
}

export const options = {
  // The publishers start 2 s in: every consumer has subscribed by then.
  scenarios: consumerAndPublisherScenarios({ consumers: CONSUMERS, rate: RATE, duration: DURATION,
    waitMs: WAIT_MS, maxVus: MAX_VUS, startTime: '2s' }),
  thresholds: {
    checks: ['rate==1'],
    dropped_iterations: ['count==0'],
  },
};

// Per consumer VU: its subscriber and the sequence number it expects next.
let subscriber = null;
let nextSeq = 1;

export function consume() {
  if (subscriber === null) subscriber = subscribe(subjectName(__VU % SUBJECTS));
  const res = longPollFetch(subscriber, WAIT_MS, 100);
  const body = jsonBody(res);
  const seqs = body !== null && Array.isArray(body.seqs) ? body.seqs : null;
  const inOrder = seqs !== null && Array.isArray(body.data) && seqs.length === body.data.length &&
    seqs.every((seq, i) => seq === nextSeq + i);
  check(res, {
    'long-poll fetch: status is 200': (r) => r.status === 200,
    'long-poll fetch: each message once, in order (seqs continue)': () => inOrder,
  });
  if (seqs !== null) nextSeq = seqs.length > 0 ? seqs[seqs.length - 1] + 1 : nextSeq;
}

let published = 0;

export function produce() {
  published += 1;
  const subject = subjectName((__VU + published) % SUBJECTS);
  const res = post('/api/publish', { subject, data: `m${published}` }, 'publish');
  // k6 does not say which VU numbers the consumers get, so a subject may
  // have no consumer: its publishes are 404 and stored nowhere.
  check(res, {
    'publish: status is 200, or 404 on a subject no consumer took': (r) =>
      r.status === 200 || (r.status === 404 && r.body === '{"message":"subscriber not found"}\n'),
  });
}
