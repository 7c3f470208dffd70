"""Evaluate JavaScript in a WebKitGTK page (Safari's engine), for tests/browsers.py.

Runs in Debian's own Python (/usr/bin/python3, with python3-gi and gir1.2-webkit2-4.1) under
xvfb-run, not in the project's venv. Reads one JSON-encoded expression a line on stdin and
writes {"value": the string it gives} or {"error": ...} a line on stdout, until stdin closes.
"""

import json
import sys

import gi

gi.require_version("Gtk", "3.0")
gi.require_version("WebKit2", "4.1")
from gi.repository import GLib, Gtk, WebKit2


def main():
    loop = GLib.MainLoop()
    window = Gtk.OffscreenWindow()
    view = WebKit2.WebView()
    window.add(view)
    window.show_all()

    def loaded(_view, event):
        if event == WebKit2.LoadEvent.FINISHED:
            loop.quit()

    view.connect("load-changed", loaded)
    view.load_html("<html><body></body></html>", "http://localhost/")
    loop.run()

    for line in sys.stdin:
        answer = {}

        def done(view, result, _data, answer=answer):
            try:
                answer["value"] = view.evaluate_javascript_finish(result).to_string()
            except GLib.Error as e:
                answer["error"] = str(e)
            loop.quit()

        view.evaluate_javascript(json.loads(line), -1, None, None, None, done, None)
        loop.run()
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
