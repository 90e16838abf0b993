"""A host program that embeds SwiftChat: its own users, signed into the chat without a second login.

    python examples/host_app.py            # then open http://127.0.0.1:8000/
    python examples/host_app.py --port 0   # any free ports; the first line says which

A small internal tool (here: the standard library's http.server on one
port) runs SwiftChat in the same process with serve(), and shows the chat
page inside its own page in an iframe. It knows who its user is (here, one
fixed user; in a real tool, whoever its own login says), so it asks
SwiftChat for a token of a new session with token_for() and hands it to
the chat page in the URL's fragment (#token=...), which a browser never
sends to any server; the page takes it and removes it from the address bar.
--frame-ancestors (serve(frame_ancestors=...)) lets this page, and no other,
show the chat page in a frame.
"""

import argparse
import html
import http.server
import os
import sys

# Run from a clone without installing anything: swiftchat.py is one folder up.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import swiftchat  # noqa: E402

HOST_USER = "host_user"  # the tool's own idea of who is using it


def host_page(chat_url, token):
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Our tool</title></head>
<body>
<h1>Our tool</h1>
<p>The team's chat, signed in as {html.escape(HOST_USER)}:</p>
<iframe title="Chat" src="{html.escape(chat_url)}#token={html.escape(token)}"
        width="900" height="600"></iframe>
</body></html>""".encode("utf-8")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8000, help="the host tool's port")
    parser.add_argument("--db", default=":memory:")
    args = parser.parse_args()
    tool = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), http.server.BaseHTTPRequestHandler)
    origin = f"http://127.0.0.1:{tool.server_port}"
    with swiftchat.serve(http_port=0 if args.port == 0 else 8080, ws_port=0 if args.port == 0 else 8081,
                         db=args.db, frame_ancestors=[origin]) as chat:
        user = chat.user(username=HOST_USER) or chat.create_user(HOST_USER, os.urandom(16).hex())
        chat_url = f"http://127.0.0.1:{chat.http_port}/"

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                body = host_page(chat_url, chat.token_for(user["id"]))  # a session per page view
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        tool.RequestHandlerClass = Handler
        print(f"Our tool on {origin}/ (chat on {chat_url})", flush=True)
        try:
            tool.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            tool.server_close()


if __name__ == "__main__":
    main()
