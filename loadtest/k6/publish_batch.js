// Batch publishers and one long-poll subscriber draining them
// (api-extensions.md §9, §3, §4).
//
// setup() creates one subscriber. Publishers send RATE requests a second
// (an open model), each a POST /api/publish/batch of BATCH messages to that
// subject ({"subject":S,"data":[...]}, or with FORM=messages the
// many-subject form {"messages":[{"subject":S,"data":...},...]}). CONSUMERS
// VUs (default 1) long-poll the subscriber with max_messages MAX_MESSAGES.
// Every batch must be answered 200 as a whole ({"status":"ok"}, or
// "published" equal to BATCH and nothing "failed"); a consumer's answers
// must each number their messages consecutively (seqs), and with one
// consumer every answer must continue where the last ended (a gap is a lost
// message, a repeat a duplicate); in teardown() the subscriber must hold
// nothing: every message published was delivered, exactly once.
//
// Run (k6 from https://k6.io; not packaged by Debian):
//   k6 run loadtest/k6/publish_batch.js
//   k6 run -e BATCH=100 -e RATE=2000 -e DURATION=1m loadtest/k6/publish_batch.js
//
// Environment (k6 -e NAME=value, or the process environment):
//   BASE_URL      broker address (default http://127.0.0.1:8082)
//   BATCH         messages a request (default 10; the broker takes up to
//                 broker.max-batch, 1000 by default)
//   FORM          subject (default) or messages: which body the batch has
//   RATE          batch requests a second, in all (default 500)
//   DURATION      how long the publishers run (default 30s)
//   PAYLOAD_BYTES size of each message (default 16)
//   CONSUMERS     VUs long-polling the one subscriber (default 1)
//   MAX_MESSAGES  each fetch's max_messages (default 1000)
//   WAIT_MS       each fetch's wait_ms (default 2000)
//   MAX_VUS       most VUs the publishers may use to keep the rate (default 200)
import { check } from 'k6';
import { Counter } from 'k6/metrics';
import {
  consumerAndPublisherScenarios, jsonBody, longPollFetch, positiveInteger, post, subscribe,
} from './gophermq.js';

const BATCH = positiveInteger('BATCH', 10);
const FORM = __ENV.FORM || 'subject';
if (FORM !== 'subject' && FORM !== 'messages') {
  throw new Error(`FORM must be subject or messages, got "${FORM}"`);
}
const RATE = positiveInteger('RATE', 500);
const PAYLOAD_BYTES = positiveInteger('PAYLOAD_BYTES', 16);
const CONSUMERS = positiveInteger('CONSUMERS', 1);
const MAX_MESSAGES = positiveInteger('MAX_MESSAGES', 1000);
const WAIT_MS = positiveInteger('WAIT_MS', 2000);
const MAX_VUS = positiveInteger('MAX_VUS', 200);
const DURATION = __ENV.DURATION || '30s';
const SUBJECT = `batch.k6.${Date.now()}`;

const publishedMessages = new Counter('published_messages');
const receivedMessages = new Counter('received_messages');

export const options = {
  // The publishers start 1 s in: the consumers are fetching by then.
  scenarios: consumerAndPublisherScenarios({ consumers: CONSUMERS, rate: RATE, duration: DURATION,
    waitMs: WAIT_MS, maxVus: MAX_VUS, startTime: '1s' }),
  thresholds: {
    checks: ['rate==1'],
    dropped_iterations: ['count==0'],
    'http_req_duration{name:publish batch}': [`p(99)<${positiveInteger('P99_MS', 50)}`],
  },
};

export function setup() {
  return { subscriber: subscribe(SUBJECT) };
}

// Per consumer VU: the sequence number it expects next (with one consumer,
// every answer continues where the last ended; with several, only within
// an answer).
let nextSeq = 0;

export function consume(data) {
  const { subscriber } = data;
  const res = longPollFetch(subscriber, WAIT_MS, MAX_MESSAGES);
  const body = jsonBody(res);
  const seqs = body !== null && Array.isArray(body.seqs) ? body.seqs : null;
  const consecutive = seqs !== null && Array.isArray(body.data) && seqs.length === body.data.length &&
    seqs.every((seq, i) => i === 0 || seq === seqs[0] + i);
  const continues = CONSUMERS > 1 || seqs === null || seqs.length === 0 || nextSeq === 0 ||
    seqs[0] === nextSeq;
  check(res, {
    'long-poll fetch: status is 200': (r) => r.status === 200,
    'long-poll fetch: messages numbered consecutively (seqs)': () => consecutive,
    'long-poll fetch: continues where the last answer ended': () => continues,
  });
  if (seqs !== null && seqs.length > 0) {
    nextSeq = seqs[seqs.length - 1] + 1;
    receivedMessages.add(seqs.length);
  }
}

let batches = 0;

export function produce(data) {
  batches += 1;
  const messages = [];
  for (let i = 0; i < BATCH; i++) {
    // "<vu>-<batch>-<i>", padded to PAYLOAD_BYTES where it is shorter.
    const text = `${__VU}-${batches}-${i}`;
    messages.push(text.length < PAYLOAD_BYTES ? text + 'x'.repeat(PAYLOAD_BYTES - text.length) : text);
  }
  const body = FORM === 'subject'
    ? { subject: data.subscriber.subject, data: messages }
    : { messages: messages.map((message) => ({ subject: data.subscriber.subject, data: message })) };
  const res = post('/api/publish/batch', body, 'publish batch');
  const answer = jsonBody(res);
  const whole = res.status === 200 && answer !== null && (FORM === 'subject'
    ? answer.status === 'ok'
    : Array.isArray(answer.failed) && answer.failed.length === 0 && answer.published === BATCH);
  check(res, { 'publish batch: 200, every message stored': () => whole });
  if (whole) publishedMessages.add(BATCH);
}

// Every message published has been delivered: the subscriber holds none.
export function teardown(data) {
  const res = post('/api/info', { subject: data.subscriber.subject, id: data.subscriber.id }, 'info');
  const body = jsonBody(res);
  check(res, {
    'info: status is 200': (r) => r.status === 200,
    'teardown: nothing left pending (every batch delivered)': () => body !== null && body.pending === 0,
  });
}
