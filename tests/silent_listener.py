"""Run by the Ray tests inside their network namespace: a TCP server on
127.0.0.1:PORT that accepts connections and never answers. Prints
``listening``, then ``accepted`` for each connection."""
import socket
import sys
import time


def main() -> None:
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(('127.0.0.1', int(sys.argv[1])))
    server.listen(16)
    print('listening', flush=True)
    held = []
    while True:
        connection, _ = server.accept()
        held.append(connection)  # kept open, never answered
        print('accepted', flush=True)
        time.sleep(0.01)


if __name__ == '__main__':
    main()
