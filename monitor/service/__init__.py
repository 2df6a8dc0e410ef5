"""Running as a service: systemd notification, the progress watchdog, SIGHUP reload and
the HTTP endpoint (/metrics, /healthz)."""
