#!/usr/bin/env bash
# Uploads one file to an FTP server that only an SSH bastion can reach, for
# cron: ftpfwd goes to the background (-f) once its tunnel is up, curl
# uploads through it under a temporary name and renames the file when it is
# complete, and the tunnel is stopped through its PID file. A failed attempt
# is retried with a growing pause; failures that a retry cannot fix (bad
# options, unknown host key, authentication) are not. A trap stops the
# tunnel and curl and removes the work directory however the script ends.
#
# Usage: upload-with-curl.sh LOCAL_FILE [REMOTE_DIR]
#   REMOTE_DIR is relative to the FTP login directory (default: the login
#   directory itself); missing directories are created.
#
# Environment:
#   FTPFWD_SSH     SSH destination: [user@]host, ssh://[user@]host[:port] or a
#                  Host alias from ssh_config (required)
#   FTPFWD_OPTS    more ftpfwd options, split on spaces, e.g.
#                  "-F /etc/ftpfwd/ssh_config" or "-p 2222 -i /path/key"
#   FTP_HOST       the FTP server, as the bastion resolves it (default: localhost)
#   FTP_PORT       its port (default: 21)
#   FTP_USER       FTP user name (default: anonymous)
#   FTP_PASSWORD   FTP password (default: anonymous@); given to curl in a
#                  private netrc file, never on a command line
#   ATTEMPTS       how many times to try (default: 3)
#   BACKOFF        seconds to wait after the first failed attempt, doubled
#                  after each further one (default: 10)
#   CURL_OPTS      more curl options, split on spaces, e.g. "--limit-rate 2M"
#   FTPFWD         the ftpfwd command (default: ftpfwd from PATH)
#   CURL           the curl command (default: curl)
#
# Exit status: 0 once the file is uploaded; otherwise the status of the last
# failed attempt: ftpfwd's (2-9, see `ftpfwd --help`) or curl's.
set -euo pipefail

me=${0##*/}
log() { printf '%s %s: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$me" "$*" >&2; }

if [[ $# -lt 1 || $# -gt 2 ]]; then
  echo "usage: $me LOCAL_FILE [REMOTE_DIR]" >&2
  exit 2
fi
file=$1
remote_dir=${2:-}
: "${FTPFWD_SSH:?set FTPFWD_SSH to the SSH destination}"
[[ -f $file && -r $file ]] || { log "cannot read $file"; exit 2; }
attempts=${ATTEMPTS:-3}
backoff=${BACKOFF:-10}
[[ $attempts =~ ^[1-9][0-9]*$ && $backoff =~ ^[0-9]+$ ]] || { log "ATTEMPTS and BACKOFF take whole numbers"; exit 2; }
read -r -a ftpfwd_opts <<< "${FTPFWD_OPTS:-}"
read -r -a curl_opts <<< "${CURL_OPTS:-}"
name=${file##*/}
url_dir=${remote_dir:+${remote_dir%/}/}

# Percent-encodes a URL path: curl sends the path as written.
url_path() {
  local LC_ALL=C text=$1 encoded='' char i
  for ((i = 0; i < ${#text}; i++)); do
    char=${text:i:1}
    case $char in
      [A-Za-z0-9._~/-]) encoded+=$char ;;
      *) printf -v char '%%%02X' "'$char"; encoded+=$char ;;
    esac
  done
  printf '%s' "$encoded"
}

workdir=$(mktemp -d "${TMPDIR:-/tmp}/$me.XXXXXX")
pid_file=$workdir/ftpfwd.pid
curl_pid=

stop_tunnel() {
  local pid
  [[ -s $pid_file ]] || return 0
  pid=$(<"$pid_file")
  kill -TERM "$pid" 2>/dev/null || return 0
  # ftpfwd removes its PID file when it has stopped; wait for that, bounded.
  for _ in {1..100}; do
    [[ -e $pid_file ]] || return 0
    sleep 0.1
  done
  log "ftpfwd (pid $pid) did not stop; killing it"
  kill -KILL "$pid" 2>/dev/null || true
  rm -f -- "$pid_file"
}

cleanup() {
  if [[ -n $curl_pid ]]; then kill -TERM "$curl_pid" 2>/dev/null || true; fi
  stop_tunnel
  rm -rf -- "$workdir"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT
trap 'log "terminated"; exit 143' TERM

umask 077
printf 'machine 127.0.0.1 login %s password %s\n' "${FTP_USER:-anonymous}" "${FTP_PASSWORD:-anonymous@}" > "$workdir/netrc"

# One attempt: tunnel up, upload, tunnel down. Returns the failing status.
upload_once() {
  local port status=0
  # -f returns once ftpfwd listens (or has failed); --print-port puts the
  # port, and nothing else, on stdout.
  port=$("${FTPFWD:-ftpfwd}" -f --print-port --pid-file "$pid_file" -q -o BatchMode=yes "${ftpfwd_opts[@]}" \
    -L "127.0.0.1:0:${FTP_HOST:-localhost}:${FTP_PORT:-21}" "$FTPFWD_SSH") || return $?
  # In the background and waited for, so that a TERM is acted on at once.
  "${CURL:-curl}" --silent --show-error --fail --ftp-create-dirs --max-time 3600 \
    --netrc-file "$workdir/netrc" "${curl_opts[@]}" \
    -T "$file" "ftp://127.0.0.1:$port/$(url_path "$url_dir$name.part")" \
    -Q "-RNFR $name.part" -Q "-RNTO $name" &
  curl_pid=$!
  wait "$curl_pid" || status=$?
  curl_pid=
  stop_tunnel
  return "$status"
}

status=0
for ((attempt = 1; attempt <= attempts; attempt++)); do
  log "attempt $attempt/$attempts: uploading $file to ${url_dir:-./}$name via $FTPFWD_SSH"
  status=0
  upload_once || status=$?
  if [[ $status -eq 0 ]]; then
    log "uploaded $file"
    exit 0
  fi
  case $status in
    2 | 3 | 6 | 7)
      log "attempt $attempt failed with status $status (ftpfwd: bad options, configuration, host key or authentication); not retrying"
      exit "$status"
      ;;
  esac
  if ((attempt < attempts)); then
    pause=$((backoff << (attempt - 1)))
    log "attempt $attempt failed with status $status; retrying in ${pause}s"
    sleep "$pause"
  fi
done
log "FAILED: $file not uploaded after $attempts attempts (last status $status)"
exit "$status"
