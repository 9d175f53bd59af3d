// pause holds a pod's namespaces open: it sleeps until SIGINT or SIGTERM and, as PID 1 of a pod
// that shares its PID namespace, reaps the zombies re-parented to it. `pause -v` prints its name
// and exits 0 (as the upstream pause does), which makes it a pod that runs to completion too.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

const version = "distroguard-testenv-pause 1"

func main() {
	if len(os.Args) > 1 && os.Args[1] == "-v" {
		fmt.Println(version)
		return
	}
	signals := make(chan os.Signal, 8)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for sig := range signals {
		if sig != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			var status syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
