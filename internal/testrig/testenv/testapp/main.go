// Command testapp is the program inside the test images: it serves its
// environment over HTTP on :80 and exits on SIGTERM. With UNHEALTHY_AFTER
// set (a duration), its /health answers 500 after that long; with
// EXIT_AFTER, it exits (status 1) after that long.
package main

import (
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "health" {
		resp, err := http.Get("http://127.0.0.1/health")
		if err != nil || resp.StatusCode != 200 {
			os.Exit(1)
		}
		os.Exit(0)
	}
	start := time.Now()
	unhealthyAfter, _ := time.ParseDuration(os.Getenv("UNHEALTHY_AFTER"))
	http.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		env := os.Environ()
		sort.Strings(env)
		for _, e := range env {
			fmt.Fprintln(w, e)
		}
	})
	http.HandleFunc("/health", func(w http.ResponseWriter, _ *http.Request) {
		if unhealthyAfter > 0 && time.Since(start) > unhealthyAfter {
			w.WriteHeader(500)
		}
	})
	go func() { _ = http.ListenAndServe(":80", nil) }()
	if d, _ := time.ParseDuration(os.Getenv("EXIT_AFTER")); d > 0 {
		go func() { time.Sleep(d); os.Exit(1) }()
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
}
