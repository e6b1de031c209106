// An ack-mode worker pool (api-extensions.md §5, §6): the members of one
// queue group in ack mode take paced, numbered messages; some of them
// crash now and then, and what they held comes back to the others.
//
// Each worker VU joins the group on its first iteration, then loops: a
// long-poll fetch (wait_ms, max_messages), then an ack of the batch (by its
// `seqs`, or `through` its last seq), then a receipt of the batch's message
// numbers (see group_run.js). A worker whose VU id is a multiple of
// CRASH_ONE_IN "crashes" on every CRASH_EVERY-th batch: it drops the batch
// unacked and pauses, so the batch comes back after ACK_WAIT_MS to some
// worker with deliveries 2 or more. Publisher VUs publish MESSAGES messages
// in all, numbered 0 .. MESSAGES-1, at about RATE a second.
//
// The run fails (k6 exits non-zero) unless every check passes: every
// answer is 200, each ack acks its whole batch, the "acked" counts
// add up to MESSAGES, every message is taken (acked by a worker that
// processed it) exactly once by the receipts, at the end the group holds
// nothing (pending and in flight 0), and, with crashes, messages were
// redelivered.
//
// An ack `through` N settles what its worker holds up to N, never another
// worker's messages, so either way of acking works with crashes.
//
// Run (k6 from https://k6.io; not packaged by Debian):
//   k6 run loadtest/k6/ack_workers.js
//   k6 run -e WORKERS=20 -e MESSAGES=50000 -e RATE=5000 loadtest/k6/ack_workers.js
//   k6 run -e ACK=through loadtest/k6/ack_workers.js
//
// Environment (k6 -e NAME=value, or the process environment):
//   BASE_URL      broker address (default http://127.0.0.1:8082)
//   SUBJECT       subject prefix; each run adds a suffix of its own (default acks.k6)
//   WORKERS       worker VUs, one group member each (default 10)
//   PUBLISHERS    publisher VUs (default 4)
//   MESSAGES      messages published in all (default 10000)
//   RATE          publishes a second, about (default 1000)
//   WAIT_MS       each fetch's wait_ms (default 2000)
//   MAX_MESSAGES  each fetch's max_messages (default 50)
//   ACK           seqs or through (default seqs)
//   ACK_WAIT_MS   the group's ack_wait_ms (default 2000)
//   CRASH_ONE_IN  workers whose VU id is a multiple of this crash (default 4; 0: none)
//   CRASH_EVERY   a crashing worker drops every this-many-th batch (default 5)
//   CRASH_PAUSE_MS  how long a crashed worker stays away (default 200)
import { check, sleep } from 'k6';
import exec from 'k6/execution';
import { Counter } from 'k6/metrics';
import { jsonBody, positiveInteger, post, subscribe, wholeNumber } from './gophermq.js';
import {
  checkGroupRun, fetchBatch, groupRunOptions, publishNumbered, setupGroupRun, writeReceipt,
} from './group_run.js';

const SUBJECT = __ENV.SUBJECT || 'acks.k6';
const WORKERS = positiveInteger('WORKERS', 10);
const PUBLISHERS = positiveInteger('PUBLISHERS', 4);
const MESSAGES = positiveInteger('MESSAGES', 10000);
const RATE = positiveInteger('RATE', 1000);
const WAIT_MS = positiveInteger('WAIT_MS', 2000);
const MAX_MESSAGES = positiveInteger('MAX_MESSAGES', 50);
const ACK = __ENV.ACK || 'seqs';
const ACK_WAIT_MS = positiveInteger('ACK_WAIT_MS', 2000);
const CRASH_ONE_IN = wholeNumber('CRASH_ONE_IN', 4);
const CRASH_EVERY = positiveInteger('CRASH_EVERY', 5);
const CRASH_PAUSE_MS = wholeNumber('CRASH_PAUSE_MS', 200);
if (ACK !== 'seqs' && ACK !== 'through') {
  throw new Error(`ACK must be seqs or through, got "${ACK}"`);
}

// The group's options, the same from every member (a member that names
// other values is 409 "group options differ").
const MEMBER_FIELDS = {
  group: 'workers',
  ack_wait_ms: ACK_WAIT_MS,
  max_ack_pending: Math.max(1000, 2 * WORKERS * MAX_MESSAGES),
};

const ackedMessages = new Counter('acked_messages');
const redelivered = new Counter('redelivered_messages');
const crashedBatches = new Counter('crashed_batches');

export const options = groupRunOptions({
  memberExec: 'work',
  members: WORKERS,
  publishers: PUBLISHERS,
  messages: MESSAGES,
  rate: RATE,
  waitMs: WAIT_MS,
  // Until a crashed batch has had time to come back a few times.
  extraSeconds: CRASH_ONE_IN > 0 ? Math.ceil((4 * ACK_WAIT_MS) / 1000) : 0,
  thresholds: {
    acked_messages: [`count==${MESSAGES}`],
    redelivered_messages: [CRASH_ONE_IN > 0 ? 'count>0' : 'count==0'],
  },
});

export function setup() {
  return setupGroupRun(SUBJECT, MEMBER_FIELDS);
}

// Per worker VU: its member id and how many batches it has had.
let member = null;
let batches = 0;

export function work(data) {
  if (member === null) member = subscribe(data.subject, MEMBER_FIELDS);
  const body = fetchBatch(member, WAIT_MS, MAX_MESSAGES, true);
  if (body === null) return;
  redelivered.add(body.deliveries.filter((count) => count > 1).length);

  batches += 1;
  if (CRASH_ONE_IN > 0 && exec.vu.idInTest % CRASH_ONE_IN === 0 && batches % CRASH_EVERY === 0) {
    // A crash: the batch is never acked; it comes back after ack_wait_ms.
    // The worker restarts as a new member (its old id still holds the
    // batch, which an ack through by the new one must not settle).
    crashedBatches.add(1);
    member = null;
    sleep(CRASH_PAUSE_MS / 1000);
    return;
  }

  const ackBody = { subject: member.subject, id: member.id };
  if (ACK === 'through') {
    ackBody.through = body.seqs[body.seqs.length - 1];
  } else {
    ackBody.seqs = body.seqs;
  }
  const ack = post('/api/ack', ackBody, 'ack');
  const answer = jsonBody(ack);
  const acked = answer !== null && Number.isInteger(answer.acked) ? answer.acked : -1;
  check(ack, {
    'ack: status is 200': (r) => r.status === 200,
    // The whole batch, by seqs or through its last seq (which settles only
    // this worker's messages), unless it stayed out past ack_wait_ms.
    'ack: "acked" is the batch': () => acked === body.seqs.length,
  });
  if (acked > 0) ackedMessages.add(acked);
  if (ack.status === 200) writeReceipt(data.receipts, body.data);
}

export function produce(data) {
  publishNumbered(data, PUBLISHERS, RATE);
}

export function teardown(data) {
  checkGroupRun(data, MESSAGES);
}
