// Open-model load: requests arrive at a fixed rate whatever the broker's
// latency (k6's constant-arrival-rate executor), so a slow broker shows up
// as latency and dropped iterations instead of quietly lowering the load, as
// it does in a closed model (loadtest.js).
//
// Two scenarios, one after the other:
//   publish        RATE publishes per second to a subscriber that never
//                  fetches (its queue grows by RATE x DURATION messages:
//                  keep that under the broker's max-pending)
//   publish_fetch  RATE iterations per second, each a publish then a fetch
//                  of the same subscriber (2 x RATE requests per second)
//
// Run (k6 from https://k6.io; not packaged by Debian):
//   k6 run loadtest/k6/open_loop.js
//   k6 run -e RATE=20000 -e DURATION=1m -e PRE_VUS=200 -e MAX_VUS=2000 loadtest/k6/open_loop.js
//
// Environment (k6 -e NAME=value, or the process environment):
//   BASE_URL   broker address (default http://127.0.0.1:8082)
//   RATE       iterations per second per scenario (default 1000)
//   DURATION   length of each scenario, k6 duration syntax (default 30s)
//   PRE_VUS    VUs allocated up front (default 50)
//   MAX_VUS    most VUs k6 may add when the broker slows down (default 500)
//   SCENARIOS  which to run, comma-separated (default publish,publish_fetch)
//   PAYLOAD    the published data string (default 16 x "x")
//   P99_MS     99th percentile latency bound in ms for the thresholds (default 50)
import { fetch, publish, subscribe } from './gophermq.js';

const RATE = integerFromEnv('RATE', 1000, 1);
const DURATION = __ENV.DURATION || '30s';
const PRE_VUS = integerFromEnv('PRE_VUS', 50, 1);
const MAX_VUS = Math.max(PRE_VUS, integerFromEnv('MAX_VUS', 500, 1));
const PAYLOAD = __ENV.PAYLOAD !== undefined ? __ENV.PAYLOAD : 'xxxxxxxxxxxxxxxx';
const P99_MS = integerFromEnv('P99_MS', 50, 1);
const SELECTED = (__ENV.SCENARIOS || 'publish,publish_fetch').split(',').map((s) => s.trim());
// A pause between the scenarios, so the first one's tail does not overlap
// the second one's start.
const GAP_SECONDS = 5;

// Each scenario has its own subject and subscriber.
const SUBJECTS = { publish: 'load.open.publish', publish_fetch: 'load.open.publish_fetch' };

function integerFromEnv(name, fallback, minimum) {
  const text = __ENV[name];
  if (text === undefined || text === '') return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < minimum) {
    throw new Error(`${name} must be a whole number >= ${minimum}, got "${text}"`);
  }
  return value;
}

// k6 duration text ("30s", "1m30s", "500ms", "2h") in seconds, to place the
// second scenario after the first.
function durationSeconds(text) {
  const unit = { ms: 0.001, s: 1, m: 60, h: 3600 };
  const pattern = /(\d+(?:\.\d+)?)(ms|s|m|h)/g;
  let total = 0;
  let consumed = 0;
  let match;
  while ((match = pattern.exec(text)) !== null) {
    if (match.index !== consumed) break;
    total += parseFloat(match[1]) * unit[match[2]];
    consumed = pattern.lastIndex;
  }
  if (consumed !== text.length || consumed === 0) {
    throw new Error(`DURATION: "${text}" is not a k6 duration (e.g. 30s, 1m30s)`);
  }
  return total;
}

function buildScenarios() {
  const known = ['publish', 'publish_fetch'];
  const exec = { publish: 'publishOnly', publish_fetch: 'publishThenFetch' };
  const scenarios = {};
  let start = 0;
  for (const name of SELECTED) {
    if (known.indexOf(name) < 0) {
      throw new Error(`SCENARIOS: unknown "${name}" (known: ${known.join(', ')})`);
    }
    scenarios[name] = {
      executor: 'constant-arrival-rate',
      exec: exec[name],
      rate: RATE,
      timeUnit: '1s',
      duration: DURATION,
      preAllocatedVUs: PRE_VUS,
      maxVUs: MAX_VUS,
      startTime: `${start}s`,
    };
    start += durationSeconds(DURATION) + GAP_SECONDS;
  }
  return scenarios;
}

function buildThresholds() {
  const thresholds = {
    checks: ['rate==1'],
    http_req_failed: ['rate<0.01'],
    http_req_duration: [`p(99)<${P99_MS}`],
    // The rate was not kept (not enough VUs, or the broker too slow): the
    // run did not measure what it claims to.
    dropped_iterations: ['count==0'],
  };
  // Per scenario too (k6 tags every sample with its scenario's name).
  for (const name of SELECTED) {
    thresholds[`http_req_duration{scenario:${name}}`] = [`p(99)<${P99_MS}`];
  }
  return thresholds;
}

export const options = {
  scenarios: buildScenarios(),
  thresholds: buildThresholds(),
};

export function setup() {
  const subscribers = {};
  for (const name of SELECTED) subscribers[name] = subscribe(SUBJECTS[name]);
  return subscribers;
}

export function publishOnly(subscribers) {
  publish(subscribers.publish, PAYLOAD);
}

export function publishThenFetch(subscribers) {
  publish(subscribers.publish_fetch, PAYLOAD);
  fetch(subscribers.publish_fetch, PAYLOAD);
}
