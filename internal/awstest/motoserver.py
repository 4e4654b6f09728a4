"""Runs moto's AWS emulator, serving one request at a time.

moto_server serves requests on many threads, and its DynamoDB applies a
transaction item by item: when a condition fails it puts back a copy of the
whole table taken before the transaction began, undoing every other
request's writes made meanwhile. Real DynamoDB never does that. Served one
at a time, each request is atomic, and the emulator keeps DynamoDB's
guarantees for one transaction (it is then stricter than DynamoDB, whose
transactions run concurrently: see docs/dynamodb.md).

Usage: python3 motoserver.py HOST PORT
"""

import os
import sys

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    os.environ.setdefault("MOTO_PORT", str(port))
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(host, port, app, threaded=False)


if __name__ == "__main__":
    main()
