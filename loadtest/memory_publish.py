#!/usr/bin/env python3
"""Publishes N messages to one subject as fast as one connection allows.

Used by `tools/loadtest memory`: the requests go out HTTP/1.1-pipelined, in
batches (default 64), and every answer is read and checked, so that when this
exits 0 the broker has stored exactly N messages. Any answer other than 200 is
an error (exit 1): a 404 means the subject had no subscriber, a 429 that
max-pending or max-pending-bytes were too small for the run.

    memory_publish.py --port 8082 --subject load.memory --count 200000 --payload-bytes 16

With --ready-requests N it first sends N pipelined `GET /ready` (each must be
answered 204): a warm-up that stores nothing but cycles the broker's receive
buffer pool, whose pages are faulted in only as the kernel first fills each
buffer, so that the pool is not counted as memory of the messages.
"""

import argparse
import socket
import sys
import time


def build_ready_request(host: str) -> bytes:
    return f"GET /ready HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()


def build_request(host: str, subject: str, payload_bytes: int) -> bytes:
    body = b'{"subject":"%s","data":"%s"}' % (subject.encode(), b"x" * payload_bytes)
    head = (
        "POST /api/publish HTTP/1.1\r\n"
        f"Host: {host}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        "\r\n"
    ).encode()
    return head + body


class ResponseReader:
    """Reads HTTP/1.1 responses (with Content-Length) off a socket, in order."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.buffer = bytearray()
        self.offset = 0

    def _fill(self) -> None:
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise ConnectionError("the broker closed the connection")
        if self.offset > (1 << 20):  # drop what was consumed, now and then
            del self.buffer[: self.offset]
            self.offset = 0
        self.buffer += chunk

    def next_status(self) -> int:
        """Consumes one response; returns its status code."""
        while True:
            end = self.buffer.find(b"\r\n\r\n", self.offset)
            if end >= 0:
                break
            self._fill()
        head = bytes(self.buffer[self.offset : end]).decode("latin-1")
        lines = head.split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())
        body_end = end + 4 + length
        while len(self.buffer) < body_end:
            self._fill()
        self.offset = body_end
        return status


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--subject", default="load.memory")
    parser.add_argument("--count", type=int, default=200_000)
    parser.add_argument("--payload-bytes", type=int, default=16)
    parser.add_argument("--ready-requests", type=int, default=0, help="warm-up GET /ready first")
    parser.add_argument("--batch", type=int, default=64, help="requests per pipelined write")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per socket operation")
    args = parser.parse_args()

    request = build_request(args.host, args.subject, args.payload_bytes)
    sock = socket.create_connection((args.host, args.port), timeout=args.timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    reader = ResponseReader(sock)

    failures: dict[int, int] = {}

    def pipeline(request: bytes, count: int, expected: int) -> None:
        sent = 0
        while sent < count:
            batch = min(args.batch, count - sent)
            sock.sendall(request * batch)
            for _ in range(batch):
                status = reader.next_status()
                if status != expected:
                    failures[status] = failures.get(status, 0) + 1
            sent += batch

    pipeline(build_ready_request(args.host), args.ready_requests, 204)
    started = time.monotonic()
    pipeline(request, args.count, 200)
    sent = args.count
    elapsed = max(time.monotonic() - started, 1e-9)
    sock.close()

    print(f"published {sent} messages in {elapsed:.2f}s ({sent / elapsed:.0f}/s)", file=sys.stderr)
    if failures:
        detail = ", ".join(f"{count}x {status}" for status, count in sorted(failures.items()))
        print(f"memory_publish: unexpected answers: {detail}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
