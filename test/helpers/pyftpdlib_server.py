"""An anonymous pyftpdlib FTP server for the tests.

usage: pyftpdlib_server.py HOST PORT ROOT [PASV_MIN PASV_MAX]

Anonymous users may list and download everything under ROOT and upload
into ROOT/incoming. PORT 0 picks a free port. Once listening, one line
"listening HOST PORT" is printed on stdout; the protocol log goes to stderr.
"""

import logging
import os
import sys

from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import ActiveDTP, FTPHandler
from pyftpdlib.servers import FTPServer


class HandedOverActiveDTP(ActiveDTP):
    """ActiveDTP that forgets its file descriptor once it is unregistered.

    pyftpdlib (1.5.7, Debian 12) hands the connected data socket of a
    PORT/EPRT transfer to a DTPHandler but keeps the fd number, and closes
    the ActiveDTP later (at the next PORT/PASV, or when the session ends):
    that unregisters the number again, and by then the kernel may have given
    it to another connection, which is silently never served again. Under
    concurrent sessions a control connection then hangs. This is
    giampaolo/pyftpdlib pull request 657; the fix is the same.
    """

    def del_channel(self, map=None):
        super().del_channel(map)
        self._fileno = None


def main(argv):
    if len(argv) not in (4, 6):
        print(__doc__, file=sys.stderr)
        return 2
    host, port, root = argv[1], int(argv[2]), os.path.realpath(argv[3])
    incoming = os.path.join(root, "incoming")
    os.makedirs(incoming, exist_ok=True)

    logging.basicConfig(stream=sys.stderr, level=logging.DEBUG, format="%(asctime)s %(message)s")

    authorizer = DummyAuthorizer()
    authorizer.add_anonymous(root, perm="elr")
    authorizer.override_perm("anonymous", incoming, perm="elradfmw", recursive=True)

    handler = FTPHandler
    handler.active_dtp = HandedOverActiveDTP
    handler.authorizer = authorizer
    handler.banner = "ftpfwd test pyftpdlib ready."
    # Same-address checks (permit_foreign_addresses, permit_privileged_ports)
    # stay at their defaults: off.
    if len(argv) == 6:
        handler.passive_ports = range(int(argv[4]), int(argv[5]) + 1)

    server = FTPServer((host, port), handler)
    server.max_cons = 64
    server.max_cons_per_ip = 64
    bound_host, bound_port = server.socket.getsockname()[:2]
    print("listening %s %d" % (bound_host, bound_port), flush=True)
    try:
        server.serve_forever(handle_exit=True)
    finally:
        server.close_all()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
