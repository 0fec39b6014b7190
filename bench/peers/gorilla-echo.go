// gorilla-echo - the gorilla/websocket peer of the benchmark: the package's
// own echo example (ReadMessage, WriteMessage, one goroutine per connection).
//
//	gorilla-echo [127.0.0.1:PORT]
//
// Built in GOPATH mode against Debian's golang-github-gorilla-websocket-dev:
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o gorilla-echo gorilla-echo.go
package main

import (
	"fmt"
	"net"
	"net/http"
	"os"

	"github.com/gorilla/websocket"
)

var upgrader = websocket.Upgrader{
	ReadBufferSize:  4096,
	WriteBufferSize: 4096,
	CheckOrigin:     func(r *http.Request) bool { return true },
}

func echo(w http.ResponseWriter, r *http.Request) {
	c, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer c.Close()
	c.SetReadLimit(1 << 20)
	for {
		mt, msg, err := c.ReadMessage()
		if err != nil {
			return
		}
		if err := c.WriteMessage(mt, msg); err != nil {
			return
		}
	}
}

func main() {
	addr := "127.0.0.1:9001"
	if len(os.Args) > 1 {
		addr = os.Args[1]
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gorilla-echo:", err)
		os.Exit(1)
	}
	fmt.Printf("listening on ws://%s/\n", ln.Addr())
	if err := http.Serve(ln, http.HandlerFunc(echo)); err != nil {
		fmt.Fprintln(os.Stderr, "gorilla-echo:", err)
		os.Exit(1)
	}
}
