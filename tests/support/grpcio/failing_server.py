"""An independent gRPC server (grpcio, the C-core implementation) for the retry tests.

Serves /echo.v1.Echo/Unary on 127.0.0.1, answering each call with the next answer of
the script given as arguments, then OK:

    OK                     echo the request
    UNAVAILABLE            fail before any response (Trailers-Only)
    UNAVAILABLE@300        the same, with grpc-retry-pushback-ms: 300
    INTERNAL, ...          any status code name

Prints `PORT <n>` first, then one JSON line per call received (its
grpc-previous-rpc-attempts and the time it arrived), and stops when stdin closes.
"""

import json
import sys
import threading
import time
from concurrent import futures

import grpc

script = list(sys.argv[1:])
lock = threading.Lock()


def unary(request, context):
    metadata = dict(context.invocation_metadata())
    with lock:
        answer = script.pop(0) if script else "OK"
    print(
        json.dumps(
            {
                "previous": metadata.get("grpc-previous-rpc-attempts"),
                "at": time.monotonic(),
                "answer": answer,
            }
        ),
        flush=True,
    )
    if answer == "OK":
        # EchoRequest{message} and EchoReply{message} share field 1: echo the bytes.
        return request
    code, _, pushback = answer.partition("@")
    if pushback:
        context.set_trailing_metadata((("grpc-retry-pushback-ms", pushback),))
    context.abort(getattr(grpc.StatusCode, code), "grpcio says " + answer)


def main():
    handler = grpc.method_handlers_generic_handler(
        "echo.v1.Echo",
        {"Unary": grpc.unary_unary_rpc_method_handler(unary)},
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print("PORT", port, flush=True)
    sys.stdin.read()
    server.stop(0)


if __name__ == "__main__":
    main()
