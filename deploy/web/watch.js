// The watch page (index.html): reads broker, subject and id from its own
// address, subscribes when no id is given, streams the subscriber's messages
// (GET /api/stream, encoding=json) into the list, and publishes from its form.
// Messages are untrusted: they reach the page only as textContent.
"use strict";

const page = new URLSearchParams(location.search);
const broker = (page.get("broker") || "").replace(/\/+$/, "");
const subject = page.get("subject") || "";
let id = page.get("id") || "";

const status = document.getElementById("status");
const messages = document.getElementById("messages");

function show(state, text) {
  status.dataset.state = state;
  status.textContent = text;
}

// POSTs a JSON body to the broker; the decoded answer, or an Error carrying
// the broker's message (its errors are {"message": ...}).
async function post(path, body) {
  const response = await fetch(broker + path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(`${response.status} ${answer.message || response.statusText}`);
  return answer;
}

function append(message) {
  const item = document.createElement("li");
  item.dataset.seq = String(message.seq);
  const seq = document.createElement("span");
  seq.className = "seq";
  seq.textContent = String(message.seq);
  const data = document.createElement("span");
  data.className = "data";
  data.textContent = message.data;
  item.append(seq, data);
  messages.append(item);
}

function stream() {
  // encodeURIComponent, not URLSearchParams: the broker reads '+' as a plus.
  const url = `${broker}/api/stream?subject=${encodeURIComponent(subject)}` +
              `&id=${encodeURIComponent(id)}&encoding=json`;
  const source = new EventSource(url);
  source.onopen = () => show("live", `Receiving ${subject} as subscriber ${id}.`);
  source.onmessage = (event) => append(JSON.parse(event.data));
  source.onerror = () => {
    // EventSource reconnects by itself after a dropped stream; it gives up
    // (CLOSED) on an answer that is not a stream: an unknown id (404), or a
    // broker that does not allow this page's origin.
    if (source.readyState === EventSource.CLOSED) {
      show("closed", `The stream of ${subject} was refused or ended: is ${id} still a ` +
                     `subscriber, and is ${location.origin} in the broker's broker.cors-origins?`);
    } else {
      show("reconnecting", "The stream dropped; reconnecting…");
    }
  };
}

async function watch() {
  document.getElementById("broker").value = broker || "http://localhost:8082";
  document.getElementById("subject").value = subject;
  document.getElementById("id").value = id;
  if (!broker || !subject) return;
  if (!id) {
    show("subscribing", `Subscribing to ${subject}…`);
    try {
      id = (await post("/api/subscribe", { subject })).id;
    } catch (error) {
      show("failed", `Subscribing to ${subject} failed: ${error.message}`);
      return;
    }
    // The new id goes into the address, so a reload watches the same subscriber.
    page.set("id", id);
    history.replaceState(null, "", `?${page}`);
    document.getElementById("id").value = id;
  }
  show("connecting", `Connecting to ${broker}…`);
  stream();
}

document.getElementById("publish").addEventListener("submit", async (event) => {
  event.preventDefault();
  const published = document.getElementById("published");
  if (!broker || !subject) {
    published.textContent = "Watch a subject first.";
    return;
  }
  try {
    await post("/api/publish", { subject, data: document.getElementById("data").value });
    published.textContent = "Published.";
    document.getElementById("data").value = "";
  } catch (error) {
    published.textContent = `Not published: ${error.message}`;
  }
});

watch();
