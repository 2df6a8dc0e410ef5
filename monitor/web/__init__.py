"""The built-in web view: a live page served by the daemon's HTTP endpoint, and the
self-contained HTML backtest report.

- ``bars``: the last 24 h of per-minute USD as read from the store (pure).
- ``feeds``: feed health (up or down, last frame age, gaps) from the daemon's metrics (pure).
- ``hub``: server-sent-event fan-out with a bounded queue per client.
- ``live``: the live view's state and the one shared snapshot built per update interval.
- ``http``: the page's routes, static assets and security headers.
- ``report``: ``liqmon backtest --html``.

Charts are plain canvas (live page) and SVG (report) written here: no vendored library,
no CDN, no JavaScript build step.
"""
