// What both k6 scripts share: the broker's address, and subscribe, publish
// and fetch, each checked on its status and on the shape of its body.
import http from 'k6/http';
import { check, fail } from 'k6';

export const BASE_URL = (__ENV.BASE_URL || 'http://127.0.0.1:8082').replace(/\/+$/, '');

const PARAMS = { headers: { 'Content-Type': 'application/json' } };

// The body as JSON, or null when it is not JSON.
function jsonBody(response) {
  try {
    return JSON.parse(response.body);
  } catch (e) {
    return null;
  }
}

function post(path, body, name) {
  return http.post(`${BASE_URL}${path}`, JSON.stringify(body),
    Object.assign({ tags: { name } }, PARAMS));
}

// Creates a subscriber, failing the whole run when that does not work (a
// run without one would only measure 404s).
export function subscribe(subject) {
  const res = post('/api/subscribe', { subject }, 'subscribe');
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
