"""The admin page: server-rendered HTML from the package's own templates, one stylesheet and
one script (package data, no CDN, no build step), behind basic auth, CSRF tokens and a
same-origin check. The HTTP handlers are in daemon/handlers/admin.py."""
