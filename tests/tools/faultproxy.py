#!/usr/bin/env python3
"""faultproxy: a loopback HTTP reverse proxy that injects S3 faults.

Usage: faultproxy.py --upstream HOST:PORT --control FILE [--port N] [--log FILE]
                     [--tls CERT KEY] [--keys FILE]

With --keys FILE each request's signing key id (the Credential of its SigV4
Authorization) is appended to FILE as "KEYID TOKEN" (TOKEN: its
x-amz-security-token, or "-").

With --tls it answers HTTPS (the certificate and key in PEM) and talks plain
HTTP to the upstream: an https endpoint in front of moto_server.

Prints "READY <port>" once listening. Before every request it re-reads the
JSON control file (missing or empty means pass-through):

  {"mode": "pass|503|slow|hang|truncate|flip|403|skew",   # flip: 3 bits of a 200's body
   "count": N,          # requests to fault, then pass; -1 (default) = all
   "methods": ["GET"],  # only these methods are faulted (default: all)
   "match": "partNumber",  # only targets containing this (default: all)
   "delay": 2.0,        # seconds, for slow and hang
   "code": "RequestTimeTooSkewed",  # S3 error code for 403
   "skew_minutes": 30}  # Date header offset for 403, and for skew (which
                        # passes the answer through with that Date)

A CONNECT (a client that takes it for its https_proxy) is logged and refused
with 502: it opens no tunnel, it shows where the client meant to go.

A new control file content restarts the count. Each request is logged as
"METHOD TARGET STATUS ACTION" to --log. With --stats FILE, the most requests
of each method in flight at once (received, answer not yet sent whole) are
kept there as JSON {"max_inflight": {"GET": n, ...}, "begun": [...]},
with the requests begun so far ("begun": ["METHOD TARGET", ...]), rewritten
(temp+rename) as each request begins; a new control file content starts
them afresh.
"""
import argparse
import email.utils
import http.client
import http.server
import json
import os
import ssl
import sys
import threading
import time

HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade"}


class State:
    def __init__(self, control, log, upstream):
        self.control = control
        self.log = log
        self.upstream = upstream
        self.lock = threading.Lock()
        self.seen = None
        self.used = 0
        self.stats = None
        self.inflight = {}
        self.max_inflight = {}
        self.begun = []
        self.stats_seen = None
        self.keys = None

    def begin(self, method, target):
        """A request arrives: counted in flight, and in the stats file."""
        self.decide_reset()
        with self.lock:
            n = self.inflight[method] = self.inflight.get(method, 0) + 1
            self.max_inflight[method] = max(n, self.max_inflight.get(method, 0))
            self.begun.append("%s %s" % (method, target))
            if self.stats:
                with open(self.stats + ".tmp", "w") as f:
                    json.dump({"max_inflight": self.max_inflight, "begun": self.begun}, f)
                os.replace(self.stats + ".tmp", self.stats)

    def decide_reset(self):
        """The stats start afresh with each new control file content."""
        try:
            with open(self.control) as f:
                text = f.read()
        except OSError:
            text = ""
        with self.lock:
            if text != self.stats_seen:
                self.stats_seen = text
                self.max_inflight, self.begun = {}, []

    def end(self, method):
        with self.lock:
            self.inflight[method] -= 1

    def decide(self, method, target):
        """Returns the fault dict to apply to this request, or None."""
        try:
            with open(self.control) as f:
                text = f.read()
        except OSError:
            text = ""
        with self.lock:
            if text != self.seen:
                self.seen, self.used = text, 0
            ctl = json.loads(text) if text.strip() else {}
            mode = ctl.get("mode", "pass")
            if mode == "pass":
                return None
            if "methods" in ctl and method not in ctl["methods"]:
                return None
            if "match" in ctl and ctl["match"] not in target:
                return None
            count = ctl.get("count", -1)
            if count >= 0 and self.used >= count:
                return None
            self.used += 1
            return ctl

    def record(self, line):
        if self.log:
            with self.lock, open(self.log, "a") as f:
                f.write(line + "\n")


def s3_error(code, message):
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>%s</Code>'
            '<Message>%s</Message></Error>' % (code, message)).encode()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def do_any(self):
        self.server.state.begin(self.command, self.path)
        try:
            self.handle_one()
        finally:
            self.server.state.end(self.command)

    def handle_one(self):
        st = self.server.state
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        if st.keys:
            auth = self.headers.get("Authorization") or ""
            key = auth.split("Credential=", 1)[-1].split("/", 1)[0] if "Credential=" in auth else "-"
            with st.lock, open(st.keys, "a") as f:
                f.write("%s %s\n" % (key, self.headers.get("x-amz-security-token") or "-"))
        fault = st.decide(self.command, self.path)
        mode = fault["mode"] if fault else "pass"
        if mode == "503":
            return self.reply(503, s3_error("SlowDown", "Please reduce your request rate."),
                              mode)
        if mode == "403":
            return self.reply_403(fault)
        if mode == "hang":
            st.record("%s %s - hang" % (self.command, self.path))
            time.sleep(fault.get("delay", 600))
            self.close_connection = True
            return
        if mode == "slow":
            time.sleep(fault.get("delay", 2))
        status, headers, rbody = self.forward(body)
        if mode == "truncate" and len(rbody) > 1:
            return self.send_truncated(status, headers, rbody)
        if mode == "flip" and status == 200 and rbody:
            # three bits, at a quarter, the middle and three quarters: one bit
            # alone can leave a zstd frame's content the same (7 of 5271 bit
            # positions of a pack decoded whole and identical), which a reader
            # rightly takes; three such at once are not to be met
            rbody = bytearray(rbody)
            for at in sorted({len(rbody) // 4, len(rbody) // 2, 3 * len(rbody) // 4}):
                rbody[at] ^= 0x01
            rbody = bytes(rbody)
        if mode == "skew":
            when = time.time() + 60 * fault.get("skew_minutes", 0)
            headers = [(k, v) for k, v in headers if k.lower() != "date"]
            headers.append(("Date", email.utils.formatdate(when, usegmt=True)))
        self.send_all(status, headers, rbody, mode)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_any

    def do_CONNECT(self):
        # logged before the answer leaves: a client that has it finds the line
        self.server.state.record("CONNECT %s 502 refused" % self.path)
        self.send_response_only(502)
        self.send_header("Content-Length", "0")
        self.end_headers()
        self.close_connection = True

    def forward(self, body):
        host, port = self.server.state.upstream
        conn = http.client.HTTPConnection(host, port, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
        conn.request(self.command, self.path, body=body, headers=headers)
        resp = conn.getresponse()
        rbody = resp.read()
        rheaders = [(k, v) for k, v in resp.getheaders() if k.lower() not in HOP]
        conn.close()
        return resp.status, rheaders, rbody

    def send_all(self, status, headers, rbody, action):
        self.send_response_only(status)
        for k, v in headers:
            if k.lower() != "content-length" or self.command == "HEAD":
                self.send_header(k, v)
        if self.command != "HEAD":
            self.send_header("Content-Length", str(len(rbody)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(rbody)
        self.server.state.record("%s %s %d %s" % (self.command, self.path, status, action))

    def send_truncated(self, status, headers, rbody):
        self.send_response_only(status)
        for k, v in headers:
            if k.lower() != "content-length":
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(rbody)))
        self.end_headers()
        self.wfile.write(rbody[: len(rbody) // 2])
        self.wfile.flush()
        self.close_connection = True
        self.server.state.record("%s %s %d truncate" % (self.command, self.path, status))

    def reply(self, status, body, action, extra=()):
        self.send_response_only(status)
        self.send_header("Content-Type", "application/xml")
        for k, v in extra:
            self.send_header(k, v)
        self.send_header("Content-Length", str(0 if self.command == "HEAD" else len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.server.state.record("%s %s %d %s" % (self.command, self.path, status, action))

    def reply_403(self, fault):
        code = fault.get("code", "AccessDenied")
        when = time.time() + 60 * fault.get("skew_minutes", 0)
        date = email.utils.formatdate(when, usegmt=True)
        self.reply(403, s3_error(code, "Forced by faultproxy"), "403",
                   [("Date", date)])


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], ssl.SSLError):  # a refused certificate
            super().handle_error(request, client_address)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--control", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--log")
    ap.add_argument("--stats")
    ap.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    ap.add_argument("--keys")
    a = ap.parse_args()
    host, port = a.upstream.rsplit(":", 1)
    srv = Server(("127.0.0.1", a.port), Handler)
    if a.tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(*a.tls)
        # the handshake in the handler's thread, so that a client that
        # refuses the certificate never holds up the accepting loop
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True,
                                     do_handshake_on_connect=False)
    srv.state = State(a.control, a.log, (host, int(port)))
    srv.state.stats = a.stats
    srv.state.keys = a.keys
    return serve(srv)


def serve(srv):
    """Says "READY <port>" and serves until killed (the tools' way)."""
    print("READY %d" % srv.server_address[1], flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
