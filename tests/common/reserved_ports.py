"""Listening ports for test brokers, reserved across every test process on this machine.

The same scheme as tests/common/reserved_port.h (read there why): ports below the ephemeral
range, each reserved by an exclusive flock on /tmp/skiff-test-ports/<port> that this process
holds until it exits.
"""
import fcntl
import os
import random
import socket

FIRST_PORT = 20000
PORT_COUNT = 12000
LOCK_DIR = "/tmp/skiff-test-ports"

_held = []  # open lock files: closing one would release its port


def _port_is_free(port):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def reserve_ports(n):
    os.makedirs(LOCK_DIR, mode=0o777, exist_ok=True)
    ports = []
    start = random.randrange(PORT_COUNT)
    for i in range(PORT_COUNT):
        if len(ports) == n:
            break
        port = FIRST_PORT + (start + i) % PORT_COUNT
        f = open(os.path.join(LOCK_DIR, str(port)), "a")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.close()
            continue
        _held.append(f)
        if _port_is_free(port):
            ports.append(port)
    if len(ports) < n:
        raise RuntimeError("cannot reserve %d free ports under %s" % (n, LOCK_DIR))
    return ports
