"""A TCP proxy in front of a server (the database), that a test can cut or hang at will."""

import socket
import threading
import time


class FaultyLink:
    """Forwards loopback connections to ``target_port``.

    cut(): every connection is closed and new ones are refused, as a database that went away.
    hang(): bytes stop flowing both ways and new connections get no answer, as a hung server.
    heal(): back to normal for new connections (a cut connection stays cut, as it would).
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.state = "up"  # up | cut | hung
        self._links: set[socket.socket] = set()
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def cut(self) -> None:
        """Close every connection and refuse new ones."""
        self.state = "cut"
        with self._lock:
            links, self._links = self._links, set()
        for link in links:
            _close(link)

    def hang(self) -> None:
        """Stop carrying bytes, without closing anything."""
        self.state = "hung"

    def heal(self) -> None:
        """Carry bytes again."""
        self.state = "up"

    def close(self) -> None:
        """Stop listening and close everything."""
        self.listener.close()
        self.cut()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        while self.state == "hung":  # a hung server accepts nothing it answers
            time.sleep(0.05)
        if self.state == "cut":
            _close(client)
            return
        try:
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
        except OSError:
            _close(client)
            return
        with self._lock:
            self._links.update((client, upstream))
        for source, sink in ((client, upstream), (upstream, client)):
            threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        while True:
            try:
                data = source.recv(65536)
            except OSError:
                break
            if not data:
                break
            while self.state == "hung":
                time.sleep(0.05)
            try:
                sink.sendall(data)
            except OSError:
                break
        _close(source)
        _close(sink)


def _close(link: socket.socket) -> None:
    try:
        link.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    link.close()
