"""A WSGI web app that tracks a page view per request, with a subject per request.

Run: python examples/wsgi_app.py

Uses only the standard library's ``wsgiref``; the same code works in any WSGI server
(gunicorn, uWSGI, mod_wsgi) and in Flask or Django views. Two rules for web apps:

* Create the tracker once per process, with an ``AsyncEmitter``
  (``EmitterConfiguration(asynchronous=True)``), so requests never wait for the collector.
* Never mutate the tracker's subject per request (requests run concurrently). Build a new
  ``Subject`` for each request and pass it as the event's ``event_subject``.

The script serves the app on 127.0.0.1 (a free port), sends it a few requests as three
different users, shuts the tracker down and prints what the collector received. The last
line printed is a JSON summary that the repository's tests check.
"""

from __future__ import annotations

import json
import threading
import urllib.request
from typing import Any, Callable, Dict, Iterable, List
from wsgiref.simple_server import WSGIRequestHandler, make_server
from wsgiref.util import request_uri

from snowplow_tracker import EmitterConfiguration, PageView, Snowplow, Subject, Tracker
from snowplow_tracker.collector import LocalCollector

StartResponse = Callable[..., Any]


def make_app(tracker: Tracker) -> Callable[[Dict[str, Any], StartResponse], Iterable[bytes]]:
    """Build the WSGI application around a tracker created once, at start-up."""

    def app(environ: Dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        # One Subject per request: it describes this user and this client only.
        subject = Subject().set_platform("web")
        subject.set_ip_address(environ.get("REMOTE_ADDR", ""))
        subject.set_useragent(environ.get("HTTP_USER_AGENT", ""))
        user_id = environ.get("HTTP_X_USER_ID")
        if user_id:
            subject.set_user_id(user_id)

        tracker.track(
            PageView(
                page_url=request_uri(environ),
                referrer=environ.get("HTTP_REFERER"),
                event_subject=subject,
            )
        )  # returns at once: the AsyncEmitter sends in the background
        start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8")])
        return [b"hello\n"]

    return app


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Keep the demo's output short."""


def main() -> None:
    with LocalCollector() as collector:
        tracker = Snowplow.create_tracker(
            namespace="web",
            endpoint=collector.endpoint,
            app_id="wsgi-demo",
            emitter_config=EmitterConfiguration(asynchronous=True, batch_size=10),
        )
        server = make_server("127.0.0.1", 0, make_app(tracker), handler_class=QuietHandler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        base = f"http://127.0.0.1:{server.server_port}"

        visits = [("alice", "/"), ("bob", "/pricing"), ("carol", "/docs?page=2"), ("alice", "/")]
        for user, path in visits:
            request = urllib.request.Request(
                base + path, headers={"X-User-Id": user, "User-Agent": f"demo-browser/{user}"}
            )
            with urllib.request.urlopen(request, timeout=5) as response:
                response.read()

        server.shutdown()
        server.server_close()
        # At process exit the emitter would drain by itself; in a server, call shutdown()
        # from the server's exit hook so nothing waits for the interpreter to exit.
        Snowplow.shutdown(timeout=5)

        collector.wait_for(len(visits), timeout=5)
        seen: List[Dict[str, Any]] = []
        for good in collector.good():
            event = good["event"]
            seen.append(
                {
                    "user_id": event["user_id"],
                    "page_url": event["page_url"],
                    "useragent": event["useragent"],
                }
            )
            print(f"  {event['user_id']:<6} {event['page_url']:<45} ua={event['useragent']}")
        result = {
            "example": "wsgi_app",
            **collector.summary(),
            "events": seen,
            "platforms": sorted({good["event"]["platform"] for good in collector.good()}),
        }
        Snowplow.reset()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
