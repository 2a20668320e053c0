#!/usr/bin/env bash
# Mirrors a directory tree from an FTP server that only an SSH bastion can
# reach, with lftp's `mirror`, through ftpfwd. ftpfwd runs lftp inside the
# tunnel and exits with lftp's exit status, so a failure anywhere (SSH,
# FTP login, a file that cannot be read) makes this script exit non-zero
# with a message on stderr.
#
# Usage: mirror-through-bastion.sh REMOTE_DIR LOCAL_DIR
#
# Environment:
#   FTPFWD_SSH     SSH destination: [user@]host, ssh://[user@]host[:port] or a
#                  Host alias from ssh_config (required)
#   FTPFWD_OPTS    more ftpfwd options, split on spaces, e.g.
#                  "-F /etc/ftpfwd/ssh_config" or "-p 2222 -i /path/key"
#   FTP_HOST       the FTP server, as the bastion resolves it (default: localhost)
#   FTP_PORT       its port (default: 21)
#   FTP_USER       FTP user name (default: anonymous)
#   FTP_PASSWORD   FTP password (default: anonymous@); passed to lftp in its
#                  environment, never on a command line
#   FTPFWD         the ftpfwd command (default: ftpfwd from PATH)
#   LFTP           the lftp command (default: lftp)
#
# Exit status: 0 when the mirror is complete; 2-9 when ftpfwd could not set
# up the tunnel (see `ftpfwd --help`); lftp's status when the mirror failed.
set -euo pipefail

me=${0##*/}
if [[ $# -ne 2 ]]; then
  echo "usage: $me REMOTE_DIR LOCAL_DIR" >&2
  exit 2
fi
remote_dir=$1
local_dir=$2
: "${FTPFWD_SSH:?set FTPFWD_SSH to the SSH destination}"
read -r -a ftpfwd_opts <<< "${FTPFWD_OPTS:-}"

# One argument of an lftp command, in double quotes.
lftp_quote() {
  local value=${1//\\/\\\\}
  printf '"%s"' "${value//\"/\\\"}"
}

lftp_script="set cmd:fail-exit yes; set ftp:ssl-allow no; set net:max-retries 2; \
set net:reconnect-interval-base 2; set net:timeout 30; \
mirror --verbose --parallel=2 $(lftp_quote "$remote_dir") $(lftp_quote "$local_dir"); quit"

mkdir -p -- "$local_dir"
export LFTP_PASSWORD=${FTP_PASSWORD:-anonymous@}
status=0
# BatchMode: never wait for a passphrase or password prompt in a script.
"${FTPFWD:-ftpfwd}" "${ftpfwd_opts[@]}" -o BatchMode=yes \
  -L "127.0.0.1:0:${FTP_HOST:-localhost}:${FTP_PORT:-21}" "$FTPFWD_SSH" -- \
  "${LFTP:-lftp}" -u "${FTP_USER:-anonymous}" --env-password -e "$lftp_script" 'ftp://127.0.0.1:{port}' ||
  status=$?

if [[ $status -ne 0 ]]; then
  echo "$me: FAILED (exit status $status): mirror of $remote_dir to $local_dir is incomplete" >&2
  exit "$status"
fi
echo "$me: mirrored $remote_dir to $local_dir" >&2
