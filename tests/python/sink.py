"""A scripted receiving SMTP server for the outbound tests: it listens
on a loopback address, speaks enough ESMTP for a real client, keeps each
message exactly as it came (after the dot-unstuffing the protocol
defines), and can be told to refuse (4xx, 5xx), to drop the connection,
or to say nothing at all (a tarpit)."""

import socket
import threading
import time


class Sink:
    def __init__(self, host: str, port: int = 0, mode: str = "accept",
                 extensions=("PIPELINING", "8BITMIME", "SIZE 10485760")):
        # mode: accept | tempfail (451 to RCPT) | reject (550 to RCPT) |
        # greet421 | drop (close after MAIL) | tarpit (no greeting) |
        # slow (2 s before the reply to the final dot) | slowfail (2 s,
        # then 451 to RCPT) | flood (after 354,
        # replies without end, up to 256 MiB, while we send)
        self.mode = mode
        self.extensions = list(extensions)
        self.messages = []  # (mail_from, [rcpts], data bytes)
        self.connections = 0
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(64)
        self.host, self.port = self.sock.getsockname()[:2]
        self.stopping = False
        self.lock = threading.Lock()
        self.clients = []
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
                self.clients.append(conn)
            threading.Thread(target=self.session, args=(conn,), daemon=True).start()

    def session(self, conn):
        conn.settimeout(60)
        f = conn.makefile("rb")

        def say(line: str):
            conn.sendall(line.encode() + b"\r\n")

        try:
            if self.mode == "tarpit":
                f.readline()  # until the client gives up
                return
            if self.mode == "greet421":
                say("421 4.3.2 too busy, try later")
                return
            say("220 sink.test ESMTP")
            mail_from, rcpts = None, []
            while True:
                line = f.readline()
                if not line:
                    return
                cmd = line.decode("latin-1").rstrip("\r\n")
                verb = cmd.split(" ", 1)[0].upper()
                if verb == "EHLO":
                    lines = ["sink.test"] + self.extensions
                    for l in lines[:-1]:
                        say("250-" + l)
                    say("250 " + lines[-1])
                elif verb == "HELO":
                    say("250 sink.test")
                elif verb == "MAIL":
                    if self.mode == "drop":
                        return
                    mail_from = cmd[10:].split(">")[0].lstrip("<")
                    rcpts = []
                    say("250 2.1.0 ok")
                elif verb == "RCPT":
                    if self.mode == "slowfail":
                        time.sleep(2)
                        say("451 4.7.1 greylisted, try again later")
                    elif self.mode == "tempfail":
                        say("451 4.7.1 greylisted, try again later")
                    elif self.mode == "reject":
                        say("550 5.1.1 no such user here")
                    else:
                        rcpts.append(cmd[8:].split(">")[0].lstrip("<"))
                        say("250 2.1.5 ok")
                elif verb == "DATA":
                    if not rcpts:
                        say("554 5.5.1 no valid recipients")
                        continue
                    say("354 go ahead")
                    if self.mode == "flood":
                        noise = b"250 noise\r\n" * 10000
                        for _ in range(2400):
                            conn.sendall(noise)
                        return
                    data = []
                    while True:
                        l = f.readline()
                        if not l or l == b".\r\n":
                            break
                        data.append(l[1:] if l.startswith(b".") else l)
                    if self.mode == "slow":
                        time.sleep(2)
                    with self.lock:
                        self.messages.append((mail_from, rcpts, b"".join(data)))
                    say("250 2.0.0 queued as S%d" % len(self.messages))
                elif verb == "RSET":
                    mail_from, rcpts = None, []
                    say("250 2.0.0 ok")
                elif verb == "QUIT":
                    say("221 2.0.0 bye")
                    return
                else:
                    say("502 5.5.2 not implemented")
        except OSError:
            pass
        finally:
            conn.close()

    def stop(self):
        self.stopping = True
        try:
            # Wakes the accepting thread, which holds the socket open.
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        with self.lock:
            for c in self.clients:
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                c.close()
