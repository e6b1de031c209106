// What ack_workers.js and queue_group.js share: their two scenarios (member
// VUs that fetch, publisher VUs that publish numbered messages), the batch
// fetch, and the check, across VUs, that every message was taken exactly
// once.
//
// k6 VUs share no memory, so each consumer VU writes down what it took on
// the broker itself: after it has taken a batch (fetched it from a plain
// queue group; fetched and acked it in ack mode) it publishes one receipt,
// the batch's message numbers joined by commas, to an audit subject whose
// one plain subscriber setup() created. teardown() drains that subscriber
// and checks that each message number 0 .. MESSAGES-1 (the publishers'
// exec.scenario.iterationInTest) appears in exactly one receipt. Receipts
// are ordinary messages: they cost the broker a publish each, which the
// figures of these scenarios include.
import { check, sleep } from 'k6';
import exec from 'k6/execution';
import { jsonBody, longPollFetch, post, subscribe } from './gophermq.js';

// The options of a run: `members` VUs running `memberExec` for as long as
// publishing may take plus `extraSeconds`, and `publishers` VUs publishing
// `messages` messages in all (from 2 s on: every member has joined by
// then). Publishing takes about messages / rate seconds; it may take twice
// that and 10 s more.
export function groupRunOptions({ memberExec, members, publishers, messages, rate, waitMs,
  extraSeconds, thresholds }) {
  const publishSeconds = Math.ceil(messages / rate) * 2 + 10;
  const waitSeconds = Math.ceil(waitMs / 1000);
  return {
    scenarios: {
      members: {
        executor: 'constant-vus',
        exec: memberExec,
        vus: members,
        duration: `${2 + publishSeconds + extraSeconds + waitSeconds + 2}s`,
        gracefulStop: `${waitSeconds + 5}s`,
      },
      publishers: {
        executor: 'shared-iterations',
        exec: 'produce',
        startTime: '2s',
        vus: publishers,
        iterations: messages,
        maxDuration: `${publishSeconds}s`,
      },
    },
    thresholds: Object.assign({ checks: ['rate==1'] }, thresholds),
  };
}

// A member's long-poll fetch, checked; its answer when it brought messages
// with `seqs` (and, with `deliveries` true, `deliveries`) parallel to
// `data`, else null.
export function fetchBatch(member, waitMs, maxMessages, deliveries) {
  const res = longPollFetch(member, waitMs, maxMessages, 'fetch');
  const body = jsonBody(res);
  const linedUp = body !== null && Array.isArray(body.data) && Array.isArray(body.seqs) &&
    body.seqs.length === body.data.length &&
    (!deliveries ||
      (Array.isArray(body.deliveries) && body.deliveries.length === body.data.length));
  check(res, {
    'fetch: status is 200': (r) => r.status === 200,
    'fetch: seqs (and deliveries) parallel to data': () => linedUp,
  });
  return res.status === 200 && linedUp && body.data.length > 0 ? body : null;
}

// setup() of both scenarios: a subject of this run's own (a group keeps
// the options its first member gave, and a queue left over from another
// run would hold other numbers), the receipts' subscriber, and a member
// that never fetches (it takes nothing): the group exists before the first
// publish, and its info tells at the end what the group still holds.
export function setupGroupRun(prefix, memberFields) {
  const subject = `${prefix}.${Date.now()}`;
  return {
    subject,
    receipts: subscribe(`${subject}.receipts`),
    observer: subscribe(subject, memberFields),
  };
}

// A publisher VU's iteration: message number exec.scenario.iterationInTest
// (0 .. MESSAGES-1 in a shared-iterations scenario), then a pause, so that
// `publishers` VUs publish about `rate` a second in all.
export function publishNumbered(data, publishers, rate) {
  const res = post('/api/publish', { subject: data.subject,
    data: String(exec.scenario.iterationInTest) }, 'publish');
  check(res, { 'publish: status is 200': (r) => r.status === 200 });
  const rest = publishers / rate - res.timings.duration / 1000;
  if (rest > 0) sleep(rest);
}

// teardown() of both scenarios.
export function checkGroupRun(data, messages) {
  checkReceipts(data.receipts, messages);
  checkGroupEmpty(data.observer);
}

// From a consumer VU: one receipt for the message numbers it has taken.
export function writeReceipt(receipts, numbers) {
  const res = post('/api/publish', { subject: receipts.subject, data: numbers.join(',') },
    'receipt');
  check(res, { 'receipt: publish is 200': (r) => r.status === 200 });
}

// In teardown(): each of 0 .. messages-1 taken once, no other number taken.
// Returns whether that holds; a failed check (and, where k6 has it,
// exec.test.fail) fails the run.
export function checkReceipts(receipts, messages) {
  const times = new Uint32Array(messages);
  let unknown = 0;
  while (true) {
    const res = post('/api/fetch', { subject: receipts.subject, id: receipts.id,
      max_messages: 10000 }, 'receipt fetch');
    const body = jsonBody(res);
    if (res.status !== 200 || body === null || !Array.isArray(body.data)) {
      throw new Error(`the receipts could not be read: status ${res.status}, body ${res.body}`);
    }
    if (body.data.length === 0) break;
    for (const receipt of body.data) {
      for (const text of receipt.split(',')) {
        const number = Number(text);
        if (Number.isInteger(number) && number >= 0 && number < messages) {
          times[number] += 1;
        } else {
          unknown += 1;
        }
      }
    }
  }
  let missing = 0;
  let twice = 0;
  for (let n = 0; n < messages; n++) {
    if (times[n] === 0) missing += 1;
    if (times[n] > 1) twice += 1;
  }
  const summary = `${messages} messages: ${missing} never taken, ${twice} taken more than once, ` +
    `${unknown} unknown numbers in the receipts`;
  console.log(`receipts: ${summary}`);
  const ok = check(null, {
    'every message taken exactly once (receipts)': () =>
      missing === 0 && twice === 0 && unknown === 0,
  });
  if (!ok && exec.test && typeof exec.test.fail === 'function') exec.test.fail(summary);
  return ok;
}

// In teardown(): what the group's queue still holds, from the info of a
// member (one setup() created and that never fetches): nothing pending,
// nothing in flight.
export function checkGroupEmpty(member) {
  const res = post('/api/info', { subject: member.subject, id: member.id }, 'info');
  const body = jsonBody(res);
  const ok = check(res, {
    'info: status is 200': (r) => r.status === 200,
    'the group holds nothing at the end (pending 0, inflight 0)': () =>
      body !== null && body.pending === 0 && body.inflight === 0,
  });
  if (!ok) {
    console.log(`the group's queue at the end: ${res.body}`);
    if (exec.test && typeof exec.test.fail === 'function') exec.test.fail('the group is not empty');
  }
  return ok;
}
