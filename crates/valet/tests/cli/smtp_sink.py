"""A real SMTP server for Valet's CLI tests: every message it accepts is written
to DIRECTORY as one .eml file (written under a temporary name, then renamed, so
a reader never sees half a message).

    python3 smtp_sink.py PORT DIRECTORY

Prints READY once it listens on 127.0.0.1:PORT; runs until killed.
"""

import os
import sys
import time
import uuid

from aiosmtpd.controller import Controller


class Sink:
    def __init__(self, directory):
        self.directory = directory

    async def handle_DATA(self, server, session, envelope):
        content = envelope.original_content or envelope.content
        if isinstance(content, str):
            content = content.encode()
        name = f"{time.time_ns()}-{uuid.uuid4().hex}"
        temporary = os.path.join(self.directory, name + ".tmp")
        with open(temporary, "wb") as out:
            out.write(b"X-Envelope-To: " + ", ".join(envelope.rcpt_tos).encode() + b"\r\n")
            out.write(content)
        os.replace(temporary, os.path.join(self.directory, name + ".eml"))
        return "250 OK"


def main():
    port, directory = int(sys.argv[1]), sys.argv[2]
    controller = Controller(Sink(directory), hostname="127.0.0.1", port=port)
    controller.start()
    print("READY", flush=True)
    try:
        while True:
            time.sleep(3600)
    finally:
        controller.stop()


main()
