"""Runs one FTP transfer with Python's ftplib, anonymously, in a chosen data-connection mode.

usage: ftplib_client.py [--tls CAFILE] HOST PORT pasv|epsv|port|eprt get|put|list REMOTE [LOCAL]

With --tls it is ftplib.FTP_TLS: AUTH TLS before the login, then PROT P, the
server's certificate checked against CAFILE and HOST.

Every command sent and every reply received is echoed to stderr, so tests can
check which data-connection commands were really used.
"""

import ftplib
import ssl
import sys

MODES = ("pasv", "epsv", "port", "eprt")
ACTIONS = ("get", "put", "list")
TIMEOUT_SECONDS = 30


class TracingFTP(ftplib.FTP_TLS):
    """ftplib.FTP (FTP_TLS until AUTH TLS is sent) that uses EPSV/EPRT on IPv4 when asked, and traces the control channel."""

    def __init__(self, mode, context=None):
        super().__init__(timeout=TIMEOUT_SECONDS, context=context)
        self.mode = mode

    def login(self, user="", passwd="", acct="", secure=False):
        # Plain FTP unless TLS is asked for: FTP_TLS.login would send AUTH TLS first.
        return super().login(user, passwd, acct, secure)

    def putcmd(self, line):
        shown = "PASS ****" if line.upper().startswith("PASS ") else line
        print("--> " + shown, file=sys.stderr, flush=True)
        super().putcmd(line)

    def getresp(self):
        try:
            resp = super().getresp()
        except ftplib.Error as err:
            print("<-- " + str(err), file=sys.stderr, flush=True)
            raise
        print("<-- " + resp, file=sys.stderr, flush=True)
        return resp

    def makepasv(self):
        if self.mode == "epsv":
            return ftplib.parse229(self.sendcmd("EPSV"), self.sock.getpeername())
        return super().makepasv()

    def sendport(self, host, port):
        # ftplib.makeport calls sendport for IPv4; EPRT is only its IPv6 path.
        if self.mode == "eprt":
            return self.sendeprt(host, port)
        return super().sendport(host, port)


def main(argv):
    cafile = None
    if len(argv) > 2 and argv[1] == "--tls":
        cafile = argv[2]
        argv = argv[:1] + argv[3:]
    if len(argv) not in (6, 7) or argv[3] not in MODES or argv[4] not in ACTIONS:
        print(__doc__, file=sys.stderr)
        return 2
    host, port, mode, action, remote = argv[1], int(argv[2]), argv[3], argv[4], argv[5]
    local = argv[6] if len(argv) == 7 else None
    if action in ("get", "put") and local is None:
        print("get and put need a LOCAL path", file=sys.stderr)
        return 2

    ftp = TracingFTP(mode, None if cafile is None else ssl.create_default_context(cafile=cafile))
    try:
        ftp.connect(host, port)
        ftp.login("anonymous", "ftplib@example.com", secure=cafile is not None)
        if cafile is not None:
            ftp.prot_p()
        ftp.set_pasv(mode in ("pasv", "epsv"))
        if action == "get":
            with open(local, "wb") as out:
                ftp.retrbinary("RETR " + remote, out.write)
        elif action == "put":
            with open(local, "rb") as src:
                ftp.storbinary("STOR " + remote, src)
        else:
            ftp.retrlines("LIST " + remote if remote else "LIST", print)
        ftp.quit()
    except (ftplib.all_errors + (ValueError,)) as err:
        print("ftplib_client: %s: %s" % (type(err).__name__, err), file=sys.stderr)
        ftp.close()
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
