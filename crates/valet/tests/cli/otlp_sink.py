"""An OTLP/HTTP collector stand-in for Valet's CLI tests: every POST to
/v1/traces is answered 200 (an empty ExportTraceServiceResponse) and written to
DIRECTORY as two files, NAME.type (its Content-Type) and NAME.bin (its body),
under temporary names first, so a reader never sees half a request.

    python3 otlp_sink.py PORT DIRECTORY

Prints READY once it listens on 127.0.0.1:PORT; runs until killed. Standard
library only.
"""

import http.server
import os
import sys
import time
import uuid


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        if self.path != "/v1/traces":
            self.send_response(404)
            self.end_headers()
            return
        name = os.path.join(self.server.directory, f"{time.time_ns()}-{uuid.uuid4().hex}")
        for suffix, data in ((".type", (self.headers.get("Content-Type") or "").encode()), (".bin", body)):
            with open(name + suffix + ".tmp", "wb") as out:
                out.write(data)
            os.rename(name + suffix + ".tmp", name + suffix)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def main():
    port, directory = int(sys.argv[1]), sys.argv[2]
    server = http.server.HTTPServer(("127.0.0.1", port), Handler)
    server.directory = directory
    print("READY", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
