#!/usr/bin/env python3
"""A tiny metrics endpoint for the demo: request counters of payment-api in
production (2.7% errors) and staging (0.3% errors), growing with time so that
Prometheus' rate() sees real traffic. Loopback only."""
import http.server
import sys
import time

START = time.time()
SERVICES = {"production": 0.027, "staging": 0.003}


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's naming)
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

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 9101
    http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
