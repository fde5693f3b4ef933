"""The demo: a live-looking HLS stream, a frameable player page and the reference page
that lists open events and plays them (``routes.py``), served by the gateway itself in
demo mode (and with ``DEMO_PAGE=true``)."""
