#!/usr/bin/env python3
"""A tiny metrics endpoint for the demo: request counters of payment-api in
production (2.7% errors) and staging (0.3% errors), growing with time so that
Prometheus' rate() sees real traffic. It also stands in for the PagerDuty
REST API v2 and the Jira Cloud / Jira Service Management APIs, answering the
operator's pagerduty and jira connectors with those APIs' documented shapes
(tests/fixtures/providers/): no incident on payment-api; the production change
ticket CHG-1042 still awaits approval, the staging one CHG-1041 is approved.
Loopback only."""
import http.server
import json
import sys
import time

START = time.time()
SERVICES = {"production": 0.027, "staging": 0.003}


def ticket(key, status):
    return {"id": key.split("-")[1], "key": key,
            "fields": {"status": {"name": status}, "updated": "2026-05-03T09:10:00.000+0000"}}


def approvals(decision):
    return {"size": 1, "start": 0, "limit": 50, "isLastPage": True, "values": [{
        "id": "1", "name": "Change manager approval", "finalDecision": decision,
        "approvers": [{"approver": {"displayName": "Alice Approver"}, "approverDecision": decision}]}]}


PROVIDERS = {
    "/services/PIJ90N7": {"service": {"id": "PIJ90N7", "type": "service", "name": "payment-api", "summary": "payment-api"}},
    "/incidents": {"incidents": [], "limit": 100, "offset": 0, "total": None, "more": False},
    "/rest/api/3/search/jql": {"issues": [ticket("CHG-1042", "Awaiting approval")], "isLast": True},
    "/rest/servicedeskapi/request/CHG-1042/approval": approvals("pending"),
    "/rest/api/3/issue/CHG-1041": ticket("CHG-1041", "Approved"),
    "/rest/servicedeskapi/request/CHG-1041/approval": approvals("approved"),
}


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's naming)
        path = self.path.split("?", 1)[0]
        if path in PROVIDERS:
            if not self.headers.get("Authorization"):
                self.send_json(401, {"error": {"message": "Invalid Credentials", "code": 2006}})
                return
            self.send_json(200, PROVIDERS[path])
            return
        if self.path != "/metrics":
            self.send_error(404)
            return
        elapsed = time.time() - START
        lines = ["# HELP http_requests_total Requests served.", "# TYPE http_requests_total counter"]
        for env, error_ratio in SERVICES.items():
            total = 1000 + 100.0 * elapsed
            errors = total * error_ratio
            lines.append(f'http_requests_total{{service="payment-api",environment="{env}",code="500"}} {errors:.3f}')
            lines.append(f'http_requests_total{{service="payment-api",environment="{env}",code="200"}} {total - errors:.3f}')
        body = ("\n".join(lines) + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

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
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 9101
    http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
