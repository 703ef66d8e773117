"""A TCP relay that can go silent: a dead link that neither side is told about."""

import socket
import threading


class Relay:
    """Forwards loopback connections to ``target``; freeze() silently stops the live ones."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.frozen: set[int] = set()
        self.links: list[tuple[socket.socket, socket.socket]] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def freeze(self) -> None:
        """Every live connection stops carrying bytes, in both directions, without closing."""
        self.frozen.update(id(pair) for pair in self.links)

    def close(self) -> None:
        self.listener.close()
        for client, upstream in self.links:
            client.close()
            upstream.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                client.close()
                continue
            pair = (client, upstream)
            self.links.append(pair)
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(pair, source, sink), daemon=True).start()

    def _pump(
        self,
        pair: tuple[socket.socket, socket.socket],
        source: socket.socket,
        sink: socket.socket,
    ) -> None:
        while True:
            try:
                data = source.recv(65536)
            except OSError:
                return
            if not data:
                return
            if id(pair) not in self.frozen:
                try:
                    sink.sendall(data)
                except OSError:
                    return
