#!/usr/bin/env python3
"""The demo's stand-in for the PagerDuty REST API v2 and the Jira Cloud /
Jira Service Management APIs, answering the operator's pagerduty and jira
connectors with those APIs' documented shapes (the replay fixtures under
tests/fixtures/providers/ name the documentation pages): no incident on the
payment-api service (PIJ90N7); the change ticket CHG-1042 of the release
awaits approval until the file given as APPROVED_FILE exists, then the
change manager's approval is reported.

    demo-providers.py HOST PORT APPROVED_FILE
"""
import http.server
import json
import os
import sys

APPROVED_FILE = sys.argv[3] if len(sys.argv) > 3 else "/nonexistent"


def ticket(key, status):
    return {"id": key.split("-")[1], "key": key,
            "fields": {"status": {"name": status}, "updated": "2026-05-03T09:10:00.000+0000"}}


def approvals(decision):
    return {"size": 1, "start": 0, "limit": 50, "isLastPage": True, "values": [{
        "id": "1", "name": "Change manager approval", "finalDecision": decision,
        "approvers": [{"approver": {"displayName": "Alice Approver"}, "approverDecision": decision}]}]}


def answer(path):
    approved = os.path.exists(APPROVED_FILE)
    return {
        "/services/PIJ90N7": {"service": {"id": "PIJ90N7", "type": "service", "name": "payment-api",
                                          "summary": "payment-api"}},
        "/incidents": {"incidents": [], "limit": 100, "offset": 0, "total": None, "more": False},
        "/rest/api/3/search/jql": {"issues": [ticket("CHG-1042", "Approved" if approved else "Awaiting approval")],
                                   "isLast": True},
        "/rest/servicedeskapi/request/CHG-1042/approval": approvals("approved" if approved else "pending"),
    }.get(path)


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's naming)
        body = answer(self.path.split("?", 1)[0])
        if body is None:
            self.send_json(404, {"error": {"message": "Not Found", "code": 2100}})
        elif not self.headers.get("Authorization"):
            self.send_json(401, {"error": {"message": "Invalid Credentials", "code": 2006}})
        else:
            self.send_json(200, body)

    def send_json(self, status, value):
        body = json.dumps(value).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    http.server.ThreadingHTTPServer((sys.argv[1], int(sys.argv[2])), Handler).serve_forever()
