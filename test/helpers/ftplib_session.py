"""Runs a list of FTP operations in one ftplib session, in a chosen data-connection mode.

usage: ftplib_session.py HOST PORT pasv|epsv|port|eprt USER   (password in $FTP_PASSWORD,
       operations as a JSON array on stdin)

Operations: {"kind": "get"|"put", "remote", "local", "ascii"?, "resume"?, "append"?},
{"kind": "list", "remote"}, {"kind": "mkdir"|"rmdir"|"delete"|"size"|"mdtm", "remote"},
{"kind": "rename", "from", "to"}, {"kind": "chmod", "mode", "remote"}. Every command and
reply is echoed to stderr (PASS masked); listings go to stdout between marker lines.
Exits 1 at the first failed operation.
"""

import ftplib
import json
import os
import sys

from ftplib_client import TracingFTP

MODES = ("pasv", "epsv", "port", "eprt")
# ftplib's default of 8 KiB makes a 64 MiB transfer CPU-bound in Python.
BLOCK_SIZE = 1024 * 1024


def run(ftp, op):
    kind = op["kind"]
    if kind == "get":
        if op.get("ascii"):
            with open(op["local"], "w", encoding="utf-8", newline="\n") as out:
                ftp.retrlines("RETR " + op["remote"], lambda line: out.write(line + "\n"))
            return
        rest = os.path.getsize(op["local"]) if op.get("resume") and os.path.exists(op["local"]) else None
        with open(op["local"], "ab" if rest else "wb") as out:
            ftp.retrbinary("RETR " + op["remote"], out.write, blocksize=BLOCK_SIZE, rest=rest)
    elif kind == "put":
        verb = "APPE " if op.get("append") else "STOR "
        if op.get("ascii"):
            with open(op["local"], "rb") as src:
                ftp.storlines(verb + op["remote"], src)
            return
        rest = None
        if op.get("resume"):
            ftp.voidcmd("TYPE I")
            rest = ftp.size(op["remote"])
        with open(op["local"], "rb") as src:
            if rest:
                src.seek(rest)
            ftp.storbinary(verb + op["remote"], src, blocksize=BLOCK_SIZE, rest=rest)
    elif kind == "list":
        print("=== LIST " + op["remote"])
        ftp.retrlines("LIST " + op["remote"], print)
        print("=== END")
    elif kind == "mkdir":
        ftp.mkd(op["remote"])
    elif kind == "rmdir":
        ftp.rmd(op["remote"])
    elif kind == "delete":
        ftp.delete(op["remote"])
    elif kind == "rename":
        ftp.rename(op["from"], op["to"])
    elif kind == "chmod":
        ftp.voidcmd("SITE CHMOD %s %s" % (op["mode"], op["remote"]))
    elif kind == "size":
        ftp.voidcmd("TYPE I")
        ftp.size(op["remote"])
    elif kind == "mdtm":
        ftp.sendcmd("MDTM " + op["remote"])
    else:
        raise ValueError("unknown operation " + kind)


def main(argv):
    if len(argv) != 5 or argv[3] not in MODES:
        print(__doc__, file=sys.stderr)
        return 2
    host, port, mode, user = argv[1], int(argv[2]), argv[3], argv[4]
    ops = json.load(sys.stdin)
    ftp = TracingFTP(mode)
    try:
        ftp.connect(host, port)
        ftp.login(user, os.environ.get("FTP_PASSWORD", ""))
        ftp.set_pasv(mode in ("pasv", "epsv"))
        for op in ops:
            run(ftp, op)
        ftp.quit()
    except (ftplib.all_errors + (ValueError,)) as err:
        print("ftplib_session: %s: %s" % (type(err).__name__, err), file=sys.stderr)
        ftp.close()
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
