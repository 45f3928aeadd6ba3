"""Serves easy-oauth's mock OpenID Connect provider for portcullis' tests.

Binds 127.0.0.1 on the given port (0: one the system chooses), prints one
JSON line, {"issuer": ..., "port": ...}, once it listens, and serves
`easy_oauth.testing.oauth_mock:app` with uvicorn until its standard input
closes (the test process ended) or it is killed.

Options: --port N, --email ADDRESS (the user's email in ID tokens, set
through the mock's own /set_email).
"""

import argparse
import asyncio
import json
import socket
import sys
import threading
import warnings

# Deprecation notices of the mock's dependencies are not the tests' business.
warnings.filterwarnings("ignore")

import uvicorn  # noqa: E402

from easy_oauth.testing import oauth_mock  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--email", default="test@example.com")
    args = parser.parse_args()

    # The mock keeps its email in a module global, which /set_email sets.
    oauth_mock._mock_email = args.email

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    sock.listen(128)
    port = sock.getsockname()[1]

    config = uvicorn.Config(oauth_mock.app, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)

    def watch_stdin() -> None:
        sys.stdin.read()
        server.should_exit = True

    threading.Thread(target=watch_stdin, daemon=True).start()

    # The socket listens already: connections wait in its backlog until
    # uvicorn accepts them.
    print(json.dumps({"issuer": f"http://127.0.0.1:{port}", "port": port}), flush=True)
    asyncio.run(server.serve(sockets=[sock]))


if __name__ == "__main__":
    main()
