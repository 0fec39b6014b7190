// uws-echo.cpp - uWebSockets echo server for bench/run-peers: the smallest
// idiomatic one (its examples/EchoServer.cpp, less what an echo benchmark
// must not have): plain TCP, compression off, 16 MiB payload and
// backpressure limits, no idle timeout and so no automatic pings.
//
//   uws-echo PORT        listens on 127.0.0.1:PORT
//
// Built by bench/build-uws against uWebSockets v20.79.0 and its pinned
// uSockets (see bench/README.md).
#include <cstdio>
#include <cstdlib>

#include "App.h"

int main(int argc, char **argv)
{
    struct PerSocketData {};
    int port = argc > 1 ? std::atoi(argv[1]) : 9001;

    uWS::App()
        .ws<PerSocketData>("/*", {
            .compression = uWS::DISABLED,
            .maxPayloadLength = 16 * 1024 * 1024,
            .idleTimeout = 0,
            .maxBackpressure = 16 * 1024 * 1024,
            .closeOnBackpressureLimit = false,
            .resetIdleTimeoutOnSend = false,
            .sendPingsAutomatically = false,
            .message = [](auto *ws, std::string_view message, uWS::OpCode opCode) {
                ws->send(message, opCode);
            },
        })
        .listen("127.0.0.1", port, [port](auto *listen_socket) {
            if (listen_socket) {
                std::printf("uws-echo: listening on 127.0.0.1:%d\n", port);
                std::fflush(stdout);
            } else {
                std::fprintf(stderr, "uws-echo: cannot listen on 127.0.0.1:%d\n", port);
                std::exit(1);
            }
        })
        .run();
    return 0;
}
