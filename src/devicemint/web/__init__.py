"""The web portal and public explorer: server-rendered pages (Jinja2 + htmx, no build step) over
the same domains as the API, served by `devicemint serve` beside it."""
