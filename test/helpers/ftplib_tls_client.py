"""One transfer with Python's ftplib.FTP_TLS: AUTH TLS, then PROT P, anonymously.

usage: ftplib_tls_client.py HOST PORT CAFILE pasv|port get|put|list REMOTE [LOCAL]

The certificate of the server (ftpfwd) is checked against CAFILE and HOST.
Commands and replies are echoed to stderr.
"""

import ftplib
import ssl
import sys

TIMEOUT_SECONDS = 30


class TracingFTP(ftplib.FTP_TLS):
    def putcmd(self, line):
        print("--> " + ("PASS ****" if line.upper().startswith("PASS ") else line), file=sys.stderr, flush=True)
        super().putcmd(line)

    def getresp(self):
        resp = super().getresp()
        print("<-- " + resp, file=sys.stderr, flush=True)
        return resp


def main(argv):
    if len(argv) not in (7, 8) or argv[4] not in ("pasv", "port") or argv[5] not in ("get", "put", "list"):
        print(__doc__, file=sys.stderr)
        return 2
    host, port, cafile, mode, action, remote = argv[1], int(argv[2]), argv[3], argv[4], argv[5], argv[6]
    local = argv[7] if len(argv) == 8 else None
    context = ssl.create_default_context(cafile=cafile)
    ftp = TracingFTP(context=context, timeout=TIMEOUT_SECONDS)
    ftp.connect(host, port)
    ftp.login("anonymous", "ftplib@example.com")
    ftp.prot_p()
    ftp.set_pasv(mode == "pasv")
    if action == "get":
        with open(local, "wb") as out:
            ftp.retrbinary("RETR " + remote, out.write)
    elif action == "put":
        with open(local, "rb") as source:
            ftp.storbinary("STOR " + remote, source)
    else:
        lines = []
        ftp.retrlines("LIST " + remote, lines.append)
        print("\n".join(lines))
    ftp.quit()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
