// What the k6 scripts share: the broker's address; subscribe, publish and
// fetch, each checked on its status and on the shape of its body; and
// reading whole numbers and durations from the environment.
import http from 'k6/http';
import { check, fail } from 'k6';

export const BASE_URL = (__ENV.BASE_URL || 'http://127.0.0.1:8082').replace(/\/+$/, '');

const PARAMS = { headers: { 'Content-Type': 'application/json' } };

// The body as JSON, or null when it is not JSON.
export function jsonBody(response) {
  try {
    return JSON.parse(response.body);
  } catch (e) {
    return null;
  }
}

// A POST of `body` as JSON, tagged `name` in k6's metrics.
export function post(path, body, name) {
  return http.post(`${BASE_URL}${path}`, JSON.stringify(body),
    Object.assign({ tags: { name } }, PARAMS));
}

// Creates a subscriber, failing the whole run when that does not work (a
// run without one would only measure 404s).
// `fields`, when given, are more members of the body ({ group: 'g' }).
export function subscribe(subject, fields) {
  const res = post('/api/subscribe', Object.assign({ subject }, fields || {}), 'subscribe');
  const body = jsonBody(res);
  if (res.status !== 200 || !body || typeof body.id !== 'string' || body.subject !== subject) {
    fail(`subscribe to ${subject} at ${BASE_URL} failed: status ${res.status}, body ${res.body}`);
  }
  return { id: body.id, subject };
}

export function publish(subscriber, payload) {
  const res = post('/api/publish', { subject: subscriber.subject, data: payload }, 'publish');
  check(res, {
    'publish: status is 200': (r) => r.status === 200,
    'publish: body is {"status":"ok"}': (r) => {
      const body = jsonBody(r);
      return body !== null && body.status === 'ok';
    },
  });
}

export function fetch(subscriber, payload) {
  const res = post('/api/fetch', { subject: subscriber.subject, id: subscriber.id }, 'fetch');
  check(res, {
    'fetch: status is 200': (r) => r.status === 200,
    // Concurrent iterations share the subscriber: a fetch may find the queue
    // drained already (data empty), but what it returns is always what was
    // published, for this id and subject.
    'fetch: body is {data: [...], id, subject}': (r) => {
      const body = jsonBody(r);
      return body !== null && Array.isArray(body.data) &&
        body.data.every((message) => message === payload) &&
        body.id === subscriber.id && body.subject === subscriber.subject;
    },
  });
}

// A long-poll fetch of `subscriber`'s messages (wait_ms, max_messages),
// tagged `name` ('long-poll fetch' unless given); the response, unchecked.
export function longPollFetch(subscriber, waitMs, maxMessages, name = 'long-poll fetch') {
  return post('/api/fetch',
    { subject: subscriber.subject, id: subscriber.id, wait_ms: waitMs, max_messages: maxMessages },
    name);
}

// The scenarios of a run with long-polling consumers and paced publishers:
// `consumers` VUs running exec 'consume' from the start, past the
// publishers' end by one wait (`waitMs`) so that the last messages arrive,
// and `rate` iterations a second of exec 'produce' for `duration` from
// `startTime`, on at most `maxVus` VUs.
export function consumerAndPublisherScenarios({ consumers, rate, duration, waitMs, maxVus, startTime }) {
  const waitSeconds = Math.ceil(waitMs / 1000);
  return {
    consumers: {
      executor: 'constant-vus',
      exec: 'consume',
      vus: consumers,
      duration: `${parseDurationSeconds(duration) + 2 + waitSeconds}s`,
      gracefulStop: `${waitSeconds + 5}s`,
    },
    publishers: {
      executor: 'constant-arrival-rate',
      exec: 'produce',
      startTime,
      rate,
      timeUnit: '1s',
      duration,
      preAllocatedVUs: Math.min(maxVus, 50),
      maxVUs: maxVus,
    },
  };
}

// The whole number >= atLeast (default 0) in environment variable `name`,
// or `fallback` when it is unset or empty.
export function wholeNumber(name, fallback, atLeast = 0) {
  const text = __ENV[name];
  if (text === undefined || text === '') return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < atLeast) {
    throw new Error(`${name} must be a whole number >= ${atLeast}, got "${text}"`);
  }
  return value;
}

export function positiveInteger(name, fallback) {
  return wholeNumber(name, fallback, 1);
}

// "1m30s" -> 90 (k6 durations, as STAGES takes them elsewhere), rounded up.
export function parseDurationSeconds(text, name) {
  const units = { ms: 0.001, s: 1, m: 60, h: 3600 };
  let seconds = 0;
  const pattern = /(\d+(?:\.\d+)?)(ms|s|m|h)/g;
  let matched = '';
  for (let part = pattern.exec(text); part !== null; part = pattern.exec(text)) {
    seconds += Number(part[1]) * units[part[2]];
    matched += part[0];
  }
  if (matched !== text || seconds <= 0) {
    throw new Error(`${name || 'DURATION'}: "${text}" is not a duration`);
  }
  return Math.ceil(seconds);
}
