#!/bin/sh
# Post one line to a SwiftChat room from a shell script or a CI job, with curl.
#
#   SWIFTCHAT_USER=ci SWIFTCHAT_PASSWORD='ci-password' SWIFTCHAT_ROOM=room_1f0c2a9b \
#       sh examples/notify.sh "Build 42 passed"
#
# SWIFTCHAT_URL defaults to http://127.0.0.1:8080. The user must be a member
# of the room (POST /api/v1/rooms/join once). One line: a newline or tab in
# the message would need more escaping than this script does.
set -eu
API="${SWIFTCHAT_URL:-http://127.0.0.1:8080}/api/v1"

# A JSON string: backslashes and double quotes escaped.
json_string() {
    printf '"%s"' "$(printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g')"
}

TOKEN=$(curl -sf -X POST "$API/auth/login" \
    -d "{\"username\": $(json_string "$SWIFTCHAT_USER"), \"password\": $(json_string "$SWIFTCHAT_PASSWORD")}" \
    | sed 's/.*"token":"\([^"]*\)".*/\1/')

curl -sf -X POST "$API/messages" -H "Authorization: Bearer $TOKEN" \
    -d "{\"room_id\": $(json_string "$SWIFTCHAT_ROOM"), \"content\": $(json_string "$1")}"
echo
