// The original GopherMQ's k6 scenario (loadtest/loadtest.js of the Go
// project), kept to its shape: one subscriber is created in setup(), then
// every iteration of every VU publishes a message and fetches that
// subscriber's queue, with a think time between iterations (a closed model:
// the load is set by the number of VUs, not by a request rate; see
// open_loop.js for a fixed rate).
//
// Fixed from the original:
//   - Its second check tested the publish response again (check(res, ...))
//     instead of the fetch's; here each response has its own checks, on the
//     status and on the body's shape, under distinct names.
//   - Its stages carried `vus`, which k6 ignores inside stages (a stage has
//     `duration` and `target`); the stages are now given as targets.
//   - It redefined k6's built-in `http_reqs` metric and logged every fetch
//     body to the console; both are gone.
//   - setup() now fails the run with a clear message when subscribing fails,
//     instead of returning undefined and making every fetch a 404.
//
// Run (k6 from https://k6.io; not packaged by Debian):
//   k6 run loadtest/k6/loadtest.js
//   k6 run -e BASE_URL=http://10.0.0.5:8082 -e STAGES=30s:200,2m:200,30s:0 loadtest/k6/loadtest.js
//
// Environment (k6 -e NAME=value, or the process environment):
//   BASE_URL   broker address (default http://127.0.0.1:8082)
//   STAGES     ramp as duration:target pairs (default 10s:50,30s:50,10s:0)
//   SUBJECT    subject to use (default load.test)
//   PAYLOAD    the published data string (default ":(", as in the original)
//   SLEEP      think time per iteration in seconds (default 1, as in the
//              original; 0 for none)
//   P99_MS     99th percentile latency bound in ms for the thresholds (default 50)
import { sleep } from 'k6';
import { fetch, publish, subscribe } from './gophermq.js';

const SUBJECT = __ENV.SUBJECT || 'load.test';
const PAYLOAD = __ENV.PAYLOAD !== undefined ? __ENV.PAYLOAD : ':(';
const SLEEP_SECONDS = numberFromEnv('SLEEP', 1);
const P99_MS = numberFromEnv('P99_MS', 50);

function numberFromEnv(name, fallback) {
  const text = __ENV[name];
  if (text === undefined || text === '') return fallback;
  const value = Number(text);
  if (!isFinite(value) || value < 0) {
    throw new Error(`${name} must be a number >= 0, got "${text}"`);
  }
  return value;
}

// "10s:50,30s:50,10s:0" -> [{duration: '10s', target: 50}, ...]
function parseStages(text) {
  return text.split(',').map((part) => {
    const match = /^\s*(\d+(?:\.\d+)?(?:ms|s|m|h)(?:\d+(?:\.\d+)?(?:ms|s|m|h))*)\s*:\s*(\d+)\s*$/.exec(part);
    if (!match) {
      throw new Error(`STAGES: "${part}" is not duration:target (e.g. 30s:50, 1m30s:100)`);
    }
    return { duration: match[1], target: parseInt(match[2], 10) };
  });
}

export const options = {
  stages: parseStages(__ENV.STAGES || '10s:50,30s:50,10s:0'),
  thresholds: {
    // Every check passed: any wrong status or body fails the run.
    checks: ['rate==1'],
    http_req_failed: ['rate<0.01'],
    http_req_duration: [`p(99)<${P99_MS}`],
    // The same bound per endpoint (requests are tagged by name below), so a
    // slow fetch cannot hide behind fast publishes.
    'http_req_duration{name:publish}': [`p(99)<${P99_MS}`],
    'http_req_duration{name:fetch}': [`p(99)<${P99_MS}`],
  },
};

export function setup() {
  // Passed to every iteration of the default function.
  return subscribe(SUBJECT);
}

export default function (subscriber) {
  publish(subscriber, PAYLOAD);
  fetch(subscriber, PAYLOAD);
  if (SLEEP_SECONDS > 0) sleep(SLEEP_SECONDS);
}
