#!/bin/sh
# Post one line to a SwiftChat room from a shell script or a CI job, with curl.
#
#   SWIFTCHAT_USER=ci-bot SWIFTCHAT_PASSWORD='ci-password' SWIFTCHAT_ROOM=room_1f0c2a9b \
#       sh examples/notify.sh "Build 42 passed"
#
# SWIFTCHAT_URL defaults to http://127.0.0.1:8080. The user must be a member
# of the room (POST /api/v1/rooms/join once). One line: a newline or tab in
# the message would need more escaping than this script does. A refusal
# (wrong password, no such room, not a member) prints the server's reason on
# one line and exits 1.
set -eu
API="${SWIFTCHAT_URL:-http://127.0.0.1:8080}/api/v1"

# A variable the script needs, checked before anything is sent: set -u alone
# would stop with the shell's own words and a line number.
need() {
    eval "[ -n \"\${$1:-}\" ]" || { echo "notify.sh: set $1" >&2; exit 1; }
}
need SWIFTCHAT_USER
need SWIFTCHAT_PASSWORD
need SWIFTCHAT_ROOM
[ $# -ge 1 ] || { echo 'notify.sh: say what to post: sh notify.sh "Build 42 passed"' >&2; exit 1; }

# A JSON string: backslashes and double quotes escaped.
json_string() {
    printf '"%s"' "$(printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g')"
}

# POST a JSON body; print the answer, or the error envelope's reason and exit 1.
post() {
    path=$1
    shift
    answer=$(curl -s -w '\n%{http_code}' -X POST "$API$path" -H "Content-Type: application/json" "$@") \
        || { echo "notify.sh: cannot reach $API" >&2; exit 1; }
    status=$(printf '%s' "$answer" | tail -n 1)
    body=$(printf '%s' "$answer" | sed '$d')
    case "$status" in
        2??) printf '%s' "$body" ;;
        *) echo "notify.sh: $(printf '%s' "$body" | sed 's/.*"error":"\([^"]*\)".*/\1/') (HTTP $status)" >&2
           exit 1 ;;
    esac
}

LOGIN=$(post /auth/login -d "{\"username\": $(json_string "$SWIFTCHAT_USER"), \"password\": $(json_string "$SWIFTCHAT_PASSWORD")}")
TOKEN=$(printf '%s' "$LOGIN" | sed 's/.*"token":"\([^"]*\)".*/\1/')
post /messages -H "Authorization: Bearer $TOKEN" \
    -d "{\"room_id\": $(json_string "$SWIFTCHAT_ROOM"), \"content\": $(json_string "$1")}"
echo
