#!/usr/bin/env python3
"""imds: the EC2 instance metadata service's credentials endpoints (IMDSv2),
and a container agent's (ECS, CodeBuild), on loopback, for kache's credentials
chain (s3/s3_role.c).

Usage: imds.py --control FILE --log FILE [--port N]

Prints "READY <port>" once listening. Serves, as EC2 does:
  PUT /latest/api/token (X-aws-ec2-metadata-token-ttl-seconds: 1..21600) -> a token
  GET /latest/meta-data/iam/security-credentials/        -> the role's name
  GET /latest/meta-data/iam/security-credentials/<role>  -> its keys, JSON
  GET /container/creds (Authorization: the control's "auth", when it has one,
  else 401)                                              -> the keys, JSON
The other GETs need the token (X-aws-ec2-metadata-token), else 401. The control
file, re-read at each request, is JSON:
  {"role": "kache-runner",
   "keys": [{"id": "AKID1", "secret": "s1", "token": "t1", "expires_in": 240}, ...],
   "fail": 0,
   "v2": "hang",  # the token's PUT: "off" answers 405 (a service without
                  # tokens), "hang" never answers (a container behind the
                  # instance's hop limit of 1); absent: a token
   "v1": true}    # GETs without a token answered (IMDS "optional"); absent:
                  # 401 (IMDSv2 required)
The n-th answer for the keys gives keys[n] (the last one from then on), expiring
expires_in seconds after the answer; "fail": N answers with 500 every request
of any kind until N have been so answered since the server started. Each request is logged as "METHOD PATH STATUS",
before its answer is sent.
"""
import argparse
import datetime
import http.server
import json
import sys
import threading
import time

from faultproxy import Server, serve  # the tools' server (beside this file)

PREFIX = "/latest/meta-data/iam/security-credentials/"


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def answer(self, status, body, ctype="text/plain"):
        # logged before the answer leaves: a client that has it finds the line
        st = self.server.st
        with st["lock"], open(st["log"], "a") as f:
            f.write("%s %s %d\n" % (self.command, self.path, status))
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def control(self):
        try:
            with open(self.server.st["control"]) as f:
                return json.load(f)
        except (OSError, ValueError):
            return {}

    def failing(self, ctl):
        st = self.server.st
        with st["lock"]:
            if ctl.get("fail", 0) > st["failed"]:
                st["failed"] += 1
                return True
        return False

    def do_PUT(self):
        ctl = self.control()
        if self.failing(ctl):
            return self.answer(500, "")
        if ctl.get("v2") == "off":
            return self.answer(405, "")
        if ctl.get("v2") == "hang":
            with self.server.st["lock"], open(self.server.st["log"], "a") as f:
                f.write("PUT %s hang\n" % self.path)
            time.sleep(5)
            self.close_connection = True
            return
        ttl = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds", "")
        if self.path != "/latest/api/token" or not ttl.isdigit() or not 1 <= int(ttl) <= 21600:
            return self.answer(400, "")
        self.answer(200, self.server.st["token"])

    def do_GET(self):
        ctl = self.control()
        st = self.server.st
        if self.failing(ctl):
            return self.answer(500, "")
        if self.path == "/container/creds":
            if "auth" in ctl and self.headers.get("Authorization") != ctl["auth"]:
                return self.answer(401, "")
        elif self.headers.get("X-aws-ec2-metadata-token") != st["token"] and not (
                ctl.get("v1") and "X-aws-ec2-metadata-token" not in self.headers):
            return self.answer(401, "")
        role = ctl.get("role", "kache-runner")
        if self.path == PREFIX:
            return self.answer(200, role + "\n")
        if self.path not in (PREFIX + role, "/container/creds") or not ctl.get("keys"):
            return self.answer(404, "")
        with st["lock"]:
            k = ctl["keys"][min(st["served"], len(ctl["keys"]) - 1)]
            st["served"] += 1
        now = datetime.datetime.now(datetime.timezone.utc)
        expires = now + datetime.timedelta(seconds=k.get("expires_in", 21600))
        self.answer(200, json.dumps({
            "Code": "Success", "LastUpdated": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "Type": "AWS-HMAC", "AccessKeyId": k["id"], "SecretAccessKey": k["secret"],
            "Token": k.get("token", ""), "Expiration": expires.strftime("%Y-%m-%dT%H:%M:%SZ")}),
            "application/json")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--control", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--port", type=int, default=0)
    a = ap.parse_args()
    srv = Server(("127.0.0.1", a.port), Handler)
    srv.st = {"control": a.control, "log": a.log, "lock": threading.Lock(), "served": 0,
              "failed": 0, "token": "imds-session-token-Xk29"}
    return serve(srv)


if __name__ == "__main__":
    sys.exit(main())
