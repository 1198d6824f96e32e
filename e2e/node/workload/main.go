// Command workload is the small HTTP service the end-to-end suite and the
// demo roll out: a release whose behaviour is fixed by its image (the
// environment the image sets), so that a "bad release" is a different
// digest, as in real life.
//
//	WORKLOAD_RELEASE       the release it reports (/ and /metrics)
//	WORKLOAD_MODE          healthy (default) | unready (never passes /readyz)
//	                       | crash (exits 1 after WORKLOAD_CRASH_AFTER)
//	WORKLOAD_CRASH_AFTER   Go duration, default 3s
//	WORKLOAD_ERROR_RATE    share of requests counted as 5xx in /metrics (0..1)
//	WORKLOAD_ADDR          listen address, default :8080
//
// Endpoints: / (release and host name), /healthz, /readyz, /metrics
// (Prometheus text: http_requests_total{code} grows with every scrape so
// that rate() over it gives WORKLOAD_ERROR_RATE).
package main

import (
	"fmt"
	"log"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"
)

func main() {
	release := env("WORKLOAD_RELEASE", "unknown")
	mode := env("WORKLOAD_MODE", "healthy")
	addr := env("WORKLOAD_ADDR", ":8080")
	errorRate, err := strconv.ParseFloat(env("WORKLOAD_ERROR_RATE", "0"), 64)
	if err != nil || errorRate < 0 || errorRate > 1 {
		log.Fatalf("WORKLOAD_ERROR_RATE must be a number from 0 to 1, got %q", os.Getenv("WORKLOAD_ERROR_RATE"))
	}
	switch mode {
	case "healthy", "unready":
	case "crash":
		after, err := time.ParseDuration(env("WORKLOAD_CRASH_AFTER", "3s"))
		if err != nil {
			log.Fatalf("WORKLOAD_CRASH_AFTER: %v", err)
		}
		go func() {
			time.Sleep(after)
			log.Printf("release %s: crashing on purpose (WORKLOAD_MODE=crash)", release)
			os.Exit(1)
		}()
	default:
		log.Fatalf("WORKLOAD_MODE must be healthy, unready or crash, got %q", mode)
	}
	host, _ := os.Hostname()
	var mu sync.Mutex
	var ok, failed float64

	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "release %s on %s\n", release, host)
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		if mode != "healthy" {
			http.Error(w, "not ready (WORKLOAD_MODE="+mode+")", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		// 1000 requests per scrape, split by the configured error rate.
		failed += 1000 * errorRate
		ok += 1000 * (1 - errorRate)
		o, f := ok, failed
		mu.Unlock()
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		fmt.Fprintf(w, "# TYPE http_requests_total counter\n")
		fmt.Fprintf(w, "http_requests_total{code=\"200\",release=%q} %g\n", release, o)
		fmt.Fprintf(w, "http_requests_total{code=\"500\",release=%q} %g\n", release, f)
		fmt.Fprintf(w, "# TYPE workload_info gauge\nworkload_info{release=%q,mode=%q} 1\n", release, mode)
	})
	log.Printf("release %s (%s) listening on %s", release, mode, addr)
	log.Fatal(http.ListenAndServe(addr, mux))
}

func env(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}
