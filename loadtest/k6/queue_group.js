// A queue group of consumers (api-extensions.md §6): several members share
// one queue, and each message goes to exactly one of them.
//
// Each consumer VU joins the group (no acks) on its first iteration, then
// loops: a long-poll fetch (wait_ms, max_messages), then a receipt of the
// message numbers it got (see group_run.js). Publisher VUs publish MESSAGES
// messages in all, numbered 0 .. MESSAGES-1, at about RATE a second.
//
// The run fails (k6 exits non-zero) unless every check passes: every answer
// is 200, the consumers received MESSAGES messages in all, every message
// reached exactly one consumer once by the receipts, and at the end the
// group holds nothing.
//
// Run (k6 from https://k6.io; not packaged by Debian):
//   k6 run loadtest/k6/queue_group.js
//   k6 run -e CONSUMERS=20 -e MESSAGES=50000 -e RATE=5000 loadtest/k6/queue_group.js
//
// Environment (k6 -e NAME=value, or the process environment):
//   BASE_URL      broker address (default http://127.0.0.1:8082)
//   SUBJECT       subject prefix; each run adds a suffix of its own (default group.k6)
//   CONSUMERS     consumer VUs, one group member each (default 10)
//   PUBLISHERS    publisher VUs (default 4)
//   MESSAGES      messages published in all (default 10000)
//   RATE          publishes a second, about (default 1000)
//   WAIT_MS       each fetch's wait_ms (default 2000)
//   MAX_MESSAGES  each fetch's max_messages (default 50)
import { Counter } from 'k6/metrics';
import { positiveInteger, subscribe } from './gophermq.js';
import {
  checkGroupRun, fetchBatch, groupRunOptions, publishNumbered, setupGroupRun, writeReceipt,
} from './group_run.js';

const SUBJECT = __ENV.SUBJECT || 'group.k6';
const CONSUMERS = positiveInteger('CONSUMERS', 10);
const PUBLISHERS = positiveInteger('PUBLISHERS', 4);
const MESSAGES = positiveInteger('MESSAGES', 10000);
const RATE = positiveInteger('RATE', 1000);
const WAIT_MS = positiveInteger('WAIT_MS', 2000);
const MAX_MESSAGES = positiveInteger('MAX_MESSAGES', 50);
const MEMBER_FIELDS = { group: 'consumers' };

const received = new Counter('received_messages');

export const options = groupRunOptions({
  memberExec: 'consume',
  members: CONSUMERS,
  publishers: PUBLISHERS,
  messages: MESSAGES,
  rate: RATE,
  waitMs: WAIT_MS,
  extraSeconds: 0,
  thresholds: { received_messages: [`count==${MESSAGES}`] },
});

export function setup() {
  return setupGroupRun(SUBJECT, MEMBER_FIELDS);
}

// Per consumer VU: its member id.
let member = null;

export function consume(data) {
  if (member === null) member = subscribe(data.subject, MEMBER_FIELDS);
  const body = fetchBatch(member, WAIT_MS, MAX_MESSAGES, false);
  if (body === null) return;
  received.add(body.data.length);
  writeReceipt(data.receipts, body.data);
}

export function produce(data) {
  publishNumbered(data, PUBLISHERS, RATE);
}

export function teardown(data) {
  checkGroupRun(data, MESSAGES);
}
